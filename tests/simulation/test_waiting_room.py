"""The waiting room holds every waiting request until it starts or gives up.

A request that will give up at its patience (``timeout_s``) keeps its place in the
waiting room until then, as HAProxy's ``maxqueue`` and NGINX's queue count it. Checked
request by request against a small event simulation written here (a heapq of events,
nothing shared with the engine): the same arrivals and service times (the engine's
draws, recomputed from each request's key), every waiting request counted until it
starts or its give-up event fires."""
from __future__ import annotations

import heapq
from collections import deque

import numpy as np
import pytest

from simulation.engine import Simulation
from simulation.randomness import SERVICE, exponential

from test_blocking_calls import web_db
from topologies import single_queue

NS = 10**9
TIE = 100   # ns: the engine's tie tolerance (simulation.stations.TIE_NS)
DONE, ARRIVE, GIVE_UP = range(3)   # at one instant: a worker frees first, give-ups last


def ns(seconds: float) -> int:
    return int(round(seconds * NS))


def event_model(requests: list[tuple[int, int, int]], workers: int, room: int, patience: int,
                marks: list[int]) -> tuple[dict[int, str], dict[int, int]]:
    """``requests``: (arrival ns, service ns, key). Returns each key's fate (served,
    queue_full, timeout) and the requests waiting at each mark (ns).

    Ties as the engine's: a request that leaves the line (starts, or gives up at its
    arrival + patience) within ``TIE`` ns after an arrival has left it; one that would
    start within ``TIE`` after its patience still starts. Whether a request ahead starts
    within ``TIE`` after an arrival is not known at the arrival, so an arrival stays
    undecided in the line until everyone ahead of it is resolved (started, gone,
    refused), then counts those ahead that left after its arrival (+ ``TIE``)."""
    events = [(a, ARRIVE, i) for i, (a, _, _) in enumerate(requests)]
    heapq.heapify(events)
    free = workers
    line: deque[int] = deque()          # waiting or undecided, in arrival order
    ahead: dict[int, list[int]] = {}
    left: dict[int, int] = {}           # when an admitted request left the line
    fate: dict[int, str] = {}           # by key
    decided: dict[int, bool] = {}       # by index: admitted or refused
    in_line: dict[int, list[int]] = {}
    marks = sorted(marks)

    def admitted(i: int) -> bool:
        if i not in decided:   # undecided: everyone ahead is resolved by now
            a = requests[i][0]
            decided[i] = sum(1 for x in ahead[i] if x in left and left[x] > a + TIE) < room
            if not decided[i]:
                fate[requests[i][2]] = "queue_full"
        return decided[i]

    while events:
        t, kind, i = heapq.heappop(events)
        while marks and marks[0] < t:
            in_line[marks.pop(0)] = list(line)
        if kind == DONE:
            free += 1
        elif kind == ARRIVE:
            ahead[i] = list(line)
            line.append(i)
            heapq.heappush(events, (t + patience + TIE, GIVE_UP, i))
        elif i in line:    # still waiting past its patience: it gives up
            line.remove(i)
            if admitted(i):
                fate[requests[i][2]] = "timeout"
                left[i] = requests[i][0] + patience
        while free and line:
            j = line.popleft()
            if admitted(j):
                free -= 1
                fate[requests[j][2]] = "served"
                left[j] = t
                heapq.heappush(events, (t + requests[j][1], DONE, j))
    waiting = {m: sum(1 for x in xs if x in left and left[x] > m) for m, xs in in_line.items()}
    return fate, waiting


def engine_and_model(doc, until: float, workers: int, room: int, patience: float):
    sim = Simulation(doc)
    sim.trace_every(1, cap=10**7)
    sim.run_until(until)
    net = sim.net
    mean = float(net.st_mean_read[int(net.node_stations[net.node_ids.index("web")][0])])
    requests = []
    engine = {}
    for tr in sim.traces():
        h = tr.hops[0]
        assert h.node == "web"
        svc = ns(float(exponential(np.uint64(tr.key), 0, SERVICE)) * mean)
        if h.start_s is not None and h.end_s is not None and tr.outcome == "answered":
            assert ns(h.end_s) - ns(h.start_s) == svc     # the engine's own draws
        requests.append((ns(h.arrived_s), svc, tr.key))
        if tr.outcome != "in_flight":
            engine[tr.key] = "served" if tr.outcome == "answered" else tr.cause
    marks = [ns(m) for m in range(1, int(until) + 1)]
    fate, waiting = event_model(sorted(requests), workers, room, ns(patience), marks)
    return sim, engine, fate, waiting


@pytest.mark.parametrize("workers, rate, capacity, patience", [(1, 150.0, 100.0, 0.08), (3, 450.0, 300.0, 0.025)])
def test_every_waiting_request_holds_its_place_until_it_starts_or_gives_up(workers, rate, capacity, patience):
    """M/M/c with a waiting room of 8 at 1.5 times its capacity, a patience of about 8
    mean services per worker: both refusals and give-ups are common, and each request
    ends as the event model says."""
    room, until = 8, 30.0
    doc = single_queue(rate, capacity, workers=workers, seed=11, queue_limit=room, timeout_s=patience)
    sim, engine, fate, waiting = engine_and_model(doc, until, workers, room, patience)
    wrong = [k for k, f in engine.items() if fate.get(k) != f]
    assert len(engine) > 0.9 * rate * until and wrong == []
    got = {c: sum(f == c for f in engine.values()) for c in ("served", "queue_full", "timeout")}
    t = sim.totals()
    assert t["served"] == got["served"] and t["failed_by_cause"]["queue_full"] == got["queue_full"]
    assert t["failed_by_cause"]["timeout"] == got["timeout"]
    assert got["queue_full"] > 200 and got["timeout"] > 50   # both ways out matter here
    # the queue shown at each whole second is the event model's line, within the room
    shown = [int(q) for q in sim.metrics.queue["web"]]
    assert len(shown) >= until - 1 and shown == [waiting[ns(m)] for m in range(1, len(shown) + 1)]
    assert max(shown) <= room


def test_the_shown_queue_never_exceeds_the_waiting_rooms():
    """Two replicas of 30 places, 0.3 s patience, four times their capacity: the queue shown
    at every whole second stays within replicas x queue_limit (it was 42-77 when requests
    about to give up waited without a place)."""
    doc = web_db(400.0, blocking=False, workers=1, capacity=50.0, replicas=2,
                 web={"queue_limit": 30, "timeout_s": 0.3}, seed=5, duration=20)
    sim = Simulation(doc)
    sim.run_until(20.0)
    shown = sim.metrics.queue["web"]
    t = sim.totals()
    assert len(shown) >= 19 and t["failed_by_cause"]["timeout"] > 0 and t["failed_by_cause"]["queue_full"] > 0
    assert shown.max() <= 2 * 30 and shown.min() >= 40     # nearly full rooms, never more


def test_every_admission_path_counts_the_places_alike(monkeypatch):
    """Least-connections over 4 servers whose rooms (6) fill and whose patience (30 ms) runs
    out: the balancers' compiled kernel, its Python and the CPython version
    (least_choice_py.py) give the same numbers, and so does the stations' own admission
    (rounds and one by one) readmitting the same requests."""
    from simulation import admission_numpy, exact_balance
    from simulation.least_choice import choose_and_admit as k
    from test_least_choice import _stressed

    class Ready:   # the kernel's Python, as if it were the loaded kernel
        compiled = True
        __call__ = staticmethod(k.py)

    class NotReady:
        compiled = False

    k(*k.sample())

    def run(mode: str) -> tuple:
        with monkeypatch.context() as m:
            if mode == "kernel.py":
                m.setattr(exact_balance, "choose_and_admit", Ready())
            elif mode == "lists":
                m.setattr(exact_balance, "choose_and_admit", NotReady())
            elif mode in ("rounds", "one_by_one"):   # the stations admit (numpy), not the kernel
                m.setattr(exact_balance, "READMIT", True)
                m.setattr(admission_numpy, "SCALAR_PER_ROUND", 10**9 if mode == "one_by_one" else 0)
            sim = Simulation(_stressed())
            if mode in ("rounds", "one_by_one"):
                sim.stations.compiled = False
            sim.advance(3.0)
            t = sim.totals()
            return t["served"], t["failed_by_cause"]["queue_full"], t["failed_by_cause"]["timeout"], t["mean_ms"]

    ref = run("default")
    assert ref[1] > 100 and ref[2] > 100
    for mode in ("kernel.py", "lists", "rounds", "one_by_one"):
        assert run(mode) == ref, mode
