"""Three tiers of blocking servers (web → API → service → database, all sync), decided by
the discrete-event pass (simulation/second_tier.py, kernel balanced_events.py): a request
holds a worker at every tier it reached until it leaves the network.

Every request's outcome and end must be an independent event model's (``chain_model``),
with tiny waiting rooms and patience and deterministic services, behind round robin,
least connections and power of two; failures at each tier keep every request and hold
accounted for. A light chain answers in the sum of its stations' mean services (nothing
waits), a saturated one at the rate its bottleneck's held time allows.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.document import Document, NodeData
from simulation.engine import Simulation

from topologies import add_event
from wallclock import within


def chain(seed: int, rate: float, *, workers: tuple = (2, 2, 2), replicas: tuple = (2, 2, 1),
          capacity: tuple = (120.0, 200.0, 300.0), limits: tuple = (20, 5, 5), timeouts: tuple = (1.0, 0.3, 0.2),
          db_conns: int = 3, db_cap: float = 600.0, deterministic: bool = False, read_ratio: float = 1.0,
          algorithm: str = "round_robin", duration: float = 6.0, stop: float = 4.0) -> Document:
    """users → lb (``algorithm``) → web → api → svc → db, the three servers blocking."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 300, "read_ratio": read_ratio,
                                                   "pattern": {"type": "steps", "times_s": [stop], "factors": [0.0]}}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm, "capacity_rps": 1e6}))
    d.add_edge("users", "lb")
    prev = "lb"
    for name, w, r, c, q, t in zip(("web", "api", "svc"), workers, replicas, capacity, limits, timeouts):
        d.add_node(NodeData(name, "server", params={"capacity_rps": c, "workers": w, "replicas": r,
                                                    "blocking_calls": True, "queue_limit": q, "timeout_s": t,
                                                    "service": "deterministic" if deterministic else "exponential"}))
        d.add_edge(prev, name)
        prev = name
    d.add_node(NodeData("db", "database", params={"connections": db_conns, "read_capacity_rps": db_cap,
                                                  "write_capacity_rps": db_cap / 2, "queue_limit": 50,
                                                  "timeout_s": 0.5}))
    d.add_edge("svc", "db")
    d.set_settings(seed=seed, duration_s=duration)
    return d


def test_three_tiers_are_decided_by_the_pass():
    sim = Simulation(chain(1, 100.0))
    assert sim._ev_chain is not None and len(sim._ev_chain) == 2 and sim._ev_des and not sim._one_tick


TIERS = ("web", "api", "svc")


def chain_model(sim: Simulation, doc: Document) -> dict:
    """An independent event model of ``chain``'s topology (reads only, no failures): what
    each request does at each tier, from the instant it reaches the web tier and the
    replicas the engine sent it to (the round robin and the servers' splits are not
    modelled; the engine's traces give them), with the engine's counter-based service
    draws recomputed from its key. A replica is FIFO with its workers: a request that
    finds none free waits if fewer than ``queue_limit`` wait, else it is refused; it gives
    up at its arrival + ``timeout_s``. A request holds the worker of every tier it started
    at until it leaves the network (answered by the database, refused or given up
    anywhere). The database is FIFO with its connections and waiting room. The
    balancer's health checks take a web worker for their cost. At one instant: give-ups,
    then freed workers, then arrivals downstream, then arrivals at the web tier.
    Returns per key (outcome, cause, end in ns) of the requests the engine finished."""
    from simulation.randomness import SERVICE, exponential

    net = sim.net
    GIVE_UP, FREE, DOWN, ARRIVE = range(4)
    ns = lambda x: int(round(x * 1e9))   # noqa: E731
    names = TIERS + ("db",)
    par = [doc.params(n) for n in names]
    workers = [int(p["workers"]) if n != "db" else int(p["connections"]) for n, p in zip(names, par)]
    limit = [int(p["queue_limit"]) for p in par]
    patience = [ns(float(p["timeout_s"])) for p in par]
    busy = [dict() for _ in names]     # replica -> workers busy
    queue = [dict() for _ in names]    # replica -> [request]
    ev: list = []
    reqs: dict = {}

    import heapq
    for tr in sim.traces():
        hops = {h.node: (i, h) for i, h in enumerate(tr.hops)}
        if "web" not in hops:
            continue
        k = np.uint64(tr.key)
        r = {"key": tr.key, "rep": [], "svc": [], "held": [], "state": "new", "end": None, "cause": None}
        for n in names:
            i, h = hops.get(n, (None, None))
            if h is None:
                r["rep"].append(0)
                r["svc"].append(0)
                continue
            st = int(net.node_stations[net.node_ids.index(n)][h.replica])
            mean = float(net.st_mean_read[st])
            r["rep"].append(h.replica)
            r["svc"].append(ns(mean if net.st_deterministic[st] else float(exponential(k, i, SERVICE)) * mean))
        reqs[tr.key] = r
        heapq.heappush(ev, (ns(hops["web"][1].arrived_s), ARRIVE, tr.key, 0))
    checks = 0
    for b in sim.balancers:
        for t in b.health.anchor + np.arange(int(np.ceil((6.0 - b.health.anchor) / b.health.interval)) + 1) \
                * b.health.interval:
            if 0 <= t < 6.0:
                for rep in range(len(b.bal.backends)):
                    checks -= 1
                    reqs[checks] = {"key": checks, "rep": [rep], "svc": [ns(b.bal.check_cost_s)], "held": [],
                                    "state": "check", "end": None, "cause": None}
                    heapq.heappush(ev, (ns(t), ARRIVE, checks, 0))

    def leave(r, t, cause):
        if r["end"] is None:
            r["end"], r["cause"] = t, cause
        held, r["held"] = r["held"], []
        for g, rep in held:
            busy[g][rep] -= 1
            q = queue[g].setdefault(rep, [])
            while q:
                nxt = reqs[q.pop(0)]
                if nxt["state"] == ("wait", g):
                    start(nxt, t, g)
                    break

    def start(r, t, g):
        rep = r["rep"][g]
        busy[g][rep] = busy[g].get(rep, 0) + 1
        r["held"].append((g, rep))
        r["state"] = ("run", g)
        heapq.heappush(ev, (t + r["svc"][g], FREE if r["state"] == "check" or g == 3 else DOWN, r["key"], g))

    while ev:
        t, kind, key, g = heapq.heappop(ev)
        r = reqs[key]
        if kind == GIVE_UP:
            if r["state"] == ("wait", g):
                queue[g][r["rep"][g]].remove(key)
                r["state"] = "gone"
                leave(r, t, "timeout")
        elif kind == FREE or (kind == DOWN and key < 0):   # answered by the database, or a check done
            leave(r, t, None)
        else:   # arrives at tier g (ARRIVE: the web tier; DOWN: the next one after g)
            g = 0 if kind == ARRIVE else g + 1
            rep = r["rep"][g]
            if busy[g].get(rep, 0) < workers[g]:
                start(r, t, g)
                if key < 0:
                    r["state"] = "check"
            elif len(queue[g].setdefault(rep, [])) < limit[g]:
                queue[g][rep].append(key)
                r["state"] = ("wait", g)
                heapq.heappush(ev, (t + patience[g], GIVE_UP, key, g))
            else:
                r["state"] = "gone"
                leave(r, t, "queue_full")
    return {k: ("answered" if r["cause"] is None else "failed", r["cause"], r["end"]) for k, r in reqs.items()
            if k >= 0}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(1, 10_000), rate=st.sampled_from([40.0, 120.0, 300.0]),
       workers=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)),
       replicas=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
       limits=st.tuples(st.sampled_from([0, 3, 50]), st.sampled_from([0, 2, 20]), st.sampled_from([0, 2, 20])),
       timeouts=st.tuples(st.sampled_from([0.05, 1.0]), st.sampled_from([0.03, 0.5]), st.sampled_from([0.02, 0.5])),
       db_conns=st.integers(1, 3), deterministic=st.booleans(),
       algorithm=st.sampled_from(["round_robin", "least_connections", "power_of_two"]))
def test_three_tiers_match_an_independent_event_model_request_by_request(
        seed, rate, workers, replicas, limits, timeouts, db_conns, deterministic, algorithm):
    against_the_chain_model(chain(seed, rate, workers=workers, replicas=replicas, limits=limits, timeouts=timeouts,
                                  db_conns=db_conns, deterministic=deterministic, algorithm=algorithm))


@pytest.mark.parametrize("algorithm", ["round_robin", "least_connections"])
def test_requests_waiting_at_two_tiers_in_turn_match_the_model(algorithm):
    """The service tier saturates: requests wait at the API's queue, start there, then
    wait at the service's (a journey's place in one queue, then in the next)."""
    against_the_chain_model(chain(5, 300.0, workers=(4, 3, 1), replicas=(2, 1, 1), limits=(50, 2, 2),
                                  timeouts=(1.0, 0.2, 0.05), db_conns=1, algorithm=algorithm))


def against_the_chain_model(doc: Document) -> None:
    sim = Simulation(doc)
    sim.trace_every(1, cap=10**7)
    with within(120, "a chain of three blocking tiers"):
        sim.run_until(6.0)
    assert sim._ev_des and sim._ev_windows > 0 and sim._held_lost == 0 and sim.in_flight == 0
    want = chain_model(sim, doc)
    got = {tr.key: (tr.outcome, tr.cause, round(tr.end_s * 1e9)) for tr in sim.traces() if tr.key in want}
    wrong = {k: (got[k], want[k]) for k in want if got[k][:2] != want[k][:2] or abs(got[k][2] - want[k][2]) > 1}
    assert not wrong, list(wrong.items())[:5]
    assert len(want) > 50


@pytest.mark.parametrize("failures", [(("svc", 0, 1.0, 2.0),), (("api", 0, 0.8, 1.5), ("db", None, 2.5, 3.0)),
                                      (("web", 0, 1.2, 2.4),)])
def test_three_tiers_with_failures_keep_every_request_and_hold(failures):
    """Failures at each tier: every request ends (answered or failed with a cause), no held
    worker is lost, and each release the pass predicted is the engine's (else an error)."""
    doc = chain(4, 250.0, workers=(2, 2, 1), limits=(5, 2, 2), timeouts=(0.3, 0.1, 0.1))
    for node, replica, down, up in failures:
        add_event(doc, down, "fail", node, replica)
        add_event(doc, up, "recover", node, replica)
    sim = Simulation(doc)
    sim.run_until(6.0)
    t = sim.totals()
    assert sim._held_lost == 0 and sim._ev_windows > 0 and sim.in_flight == 0
    assert t["arrived"] == t["served"] + t["failed"] and t["failed_by_cause"]["backend_down"] + \
        t["failed_by_cause"]["node_failed"] > 0


def test_a_light_chain_answers_in_the_sum_of_its_services():
    """Far from saturation nothing waits: the mean response is the sum of the mean
    services (web 1/60 s, API 1/100 s, service 1/300 s, query 1/200 s per worker)."""
    doc = chain(3, 20.0, workers=(2, 2, 1), replicas=(4, 4, 4), capacity=(120.0, 200.0, 300.0),
                limits=(100, 100, 100), timeouts=(10.0, 10.0, 10.0), db_conns=20, db_cap=4000.0, duration=300.0,
                stop=300.0)
    sim = Simulation(doc)
    sim.run_until(305.0)
    assert sim._ev_windows > 0 and sim._ev_fallbacks == 0
    want = 2 / 120 + 2 / 200 + 1 / 300 + 20 / 4000
    assert sim.totals()["mean_ms"] / 1000 == pytest.approx(want, rel=0.04)


def test_a_saturated_chain_holds_no_more_than_its_workers():
    """The service tier (one worker) is the bottleneck: its worker is held for its own
    work and its query (1/100 s + 3/600 s), so the chain serves 1 / 0.015 s = 66.7
    requests per second; every tier in front holds workers while the requests wait
    there, so the web and API tiers stay busy though their own work is light."""
    doc = chain(5, 400.0, workers=(4, 4, 1), replicas=(1, 1, 1), capacity=(2000.0, 2000.0, 100.0),
                limits=(20, 20, 20), timeouts=(2.0, 2.0, 2.0), duration=20.0, stop=20.0)
    sim = Simulation(doc)
    sim.run_until(20.0)
    util = {n: float(np.mean(np.asarray(sim.metrics.util[n])[5:])) for n in ("web", "api", "svc")}
    served = sim.totals()["served"] / 20.0
    assert util["svc"] > 0.95 and served == pytest.approx(1 / (1 / 100 + 3 / 600), rel=0.06)
    assert util["api"] > 0.9 and util["web"] > 0.9   # held while the service tier works and queues
