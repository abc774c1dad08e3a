"""A load balancer downstream of blocking servers (web → balancer → API → database),
followed by the event window (simulation/choice_hops.py), gives the sweeps' numbers,
request by request, and an independent event model's.

The sweeps are the engine's general path: every request's outcome and end, the totals
and the per-second series must be the same on both paths, with failures of the API's
replicas (health checks then take them out and put them back: the balancer's candidates
change between windows), of the web tier and of the database, tiny waiting rooms and
patience, 304s, writes and deterministic services.
"""
from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.document import Document, NodeData
from simulation.engine import Simulation

from test_blocking_events import assert_same, run
from topologies import add_event


def lb_between(seed: int, rate: float, algorithm: str, *, web_workers: int = 2, web_replicas: int = 2,
               api_workers: int = 2, api_replicas: int = 2, api_limit: int = 50, api_timeout: float = 1.0,
               api_capacity: float = 300.0, second_api: bool = True, deterministic: bool = False,
               etag: bool = False, read_ratio: float = 1.0, interval: float = 0.5, check_ms: float = 2.0,
               web_limit: int = 40, web_timeout: float = 2.0, sessions: str = "cookie", duration: float = 8.0,
               stop: float = 5.0, sticky: bool = False) -> Document:
    """Users → round robin → ``web`` (blocking, sessions in cookies) → ``lb2`` (``algorithm``) → ``api``
    (``api_replicas``) and, with ``second_api``, ``api2`` (one replica, half the
    capacity: weighted round robin then differs) → one database; the API keeps its sessions
    as ``sessions`` says. Arrivals stop at ``stop``."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 200, "read_ratio": read_ratio,
                                                   "items": 40, "pattern": {"type": "steps", "times_s": [stop],
                                                                            "factors": [0.0]}}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={
        "capacity_rps": 60.0 * web_workers, "workers": web_workers, "replicas": web_replicas, "blocking_calls": True,
        "queue_limit": web_limit, "timeout_s": web_timeout, "sessions": "cookie",
        "service": "deterministic" if deterministic else "exponential",
        "etag": etag, "cache_max_age_s": 0.2 if etag else 0.0}))
    d.add_node(NodeData("lb2", "load_balancer", params={"algorithm": algorithm, "capacity_rps": 1e6,
                                                        "health_interval_s": interval, "health_check_cost_ms": check_ms,
                                                        "affinity": "sticky" if sticky else "none"}))
    d.add_node(NodeData("api", "server", params={"capacity_rps": api_capacity, "workers": api_workers,
                                                 "replicas": api_replicas, "queue_limit": api_limit,
                                                 "timeout_s": api_timeout, "sessions": sessions}))
    d.add_node(NodeData("db", "database", params={"connections": 4, "read_capacity_rps": 2000.0,
                                                  "write_capacity_rps": 800.0, "queue_limit": 100, "timeout_s": 1.0}))
    for a, b in (("users", "lb"), ("lb", "web"), ("web", "lb2"), ("lb2", "api"), ("api", "db")):
        d.add_edge(a, b)
    if second_api:
        d.add_node(NodeData("api2", "server", params={"capacity_rps": api_capacity / 2, "workers": api_workers,
                                                      "queue_limit": api_limit, "timeout_s": api_timeout,
                                                      "sessions": sessions}))
        d.add_edge("lb2", "api2")
        d.add_edge("api2", "db")
    d.set_settings(seed=seed, duration_s=duration)
    return d


ALGORITHMS = ["round_robin", "weighted_round_robin", "random", "consistent_hash"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), algorithm=st.sampled_from(ALGORITHMS), rate=st.sampled_from([40.0, 150.0, 400.0]),
       web_workers=st.integers(1, 3), web_replicas=st.integers(1, 2), api_workers=st.integers(1, 3),
       api_replicas=st.integers(1, 3), api_limit=st.sampled_from([0, 2, 50]),
       api_timeout=st.sampled_from([0.02, 0.3, 2.0]), api_capacity=st.sampled_from([60.0, 300.0, 3000.0]),
       second_api=st.booleans(), deterministic=st.booleans(), etag=st.booleans(),
       read_ratio=st.sampled_from([1.0, 0.7]), interval=st.sampled_from([0.25, 1.0]),
       web_limit=st.sampled_from([0, 5, 400]), sessions=st.sampled_from(["cookie", "database", "local"]),
       sticky=st.booleans(),
       failures=st.sampled_from([(), (("api", 0, 1.0, 3.2),), (("api", 1, 0.6, 4.0), ("api2", None, 2.0, 2.7)),
                                 (("db", None, 1.0, 1.6),), (("web", 0, 0.7, 2.2), ("api", 0, 2.5, 5.0))]))
def test_random_tiers_with_a_balancer_downstream_are_the_sweeps_request_by_request(
        monkeypatch, seed, algorithm, rate, web_workers, web_replicas, api_workers, api_replicas, api_limit,
        api_timeout, api_capacity, second_api, deterministic, etag, read_ratio, interval, web_limit, sessions,
        sticky, failures):
    doc = lb_between(seed, rate, algorithm, web_workers=web_workers, web_replicas=web_replicas,
                     api_workers=api_workers, api_replicas=api_replicas, api_limit=api_limit, api_timeout=api_timeout,
                     api_capacity=api_capacity, second_api=second_api, deterministic=deterministic, etag=etag,
                     read_ratio=read_ratio, interval=interval, web_limit=web_limit, sessions=sessions, sticky=sticky)
    for node, replica, down, up in failures:
        if node == "api2" and not second_api:
            continue
        if node == "api" and replica is not None and replica >= api_replicas:
            replica = 0
        add_event(doc, down, "fail", node, replica)
        add_event(doc, up, "recover", node, replica)
    fast = assert_same(doc, 8.0, monkeypatch)
    assert fast._ev_fallbacks < fast._ev_windows


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_window_takes_the_balancer_downstream_and_is_much_faster(monkeypatch, algorithm):
    """The shape is decided event by event (not the sweeps: one sweep per request), and a
    saturated API with full waiting rooms and health checks changes nothing."""
    doc = lb_between(3, 500.0, algorithm, api_workers=1, api_replicas=2, api_limit=3, api_timeout=0.2,
                     api_capacity=150.0, interval=0.25, check_ms=5.0, duration=6.0, stop=5.0)
    add_event(doc, 1.0, "fail", "api", 1)
    add_event(doc, 3.0, "recover", "api", 1)
    fast = assert_same(doc, 6.0, monkeypatch)
    assert fast._ev_fallbacks == 0
    t = fast.totals()
    assert t["failed_by_cause"]["queue_full"] > 100 and t["served"] > 500


def api_of_users(sim: Simulation) -> dict[int, set]:
    """The API replicas each user's requests went to."""
    went: dict[int, set] = {}
    for tr in sim.traces():
        api = [(h.node, h.replica) for h in tr.hops if h.node in ("api", "api2")]
        if api:
            went.setdefault(tr.user, set()).add(api[0])
    return went


@pytest.mark.parametrize("algorithm", ALGORITHMS + ["least_connections"])
def test_a_sticky_balancer_downstream_pins_each_user_in_the_window(monkeypatch, algorithm):
    """Sticky cookies downstream of blocking servers: the event window follows them. Each
    user's requests all reach the API replica its first one reached (no failure: no
    redispatch), the numbers are the sweeps', and round robin spreads the users over
    the three replicas by turns (the counts differ by at most one)."""
    doc = lb_between(5, 150.0, algorithm, sticky=True, duration=4.0, stop=3.5)
    fast = run(doc, 4.0, True, monkeypatch) if algorithm == "least_connections" else assert_same(doc, 4.0, monkeypatch)
    assert fast._ev_depth is not None and fast._ev_windows > 0 and fast._ev_fallbacks < fast._ev_windows
    t = fast.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"] and t["served"] > 300
    went = api_of_users(fast)
    assert len(went) > 150 and all(len(v) == 1 for v in went.values())
    if algorithm == "round_robin":
        per = np.bincount([["api", "api2"].index(n) * 2 + r for (n, r), in went.values()], minlength=3)
        assert per.max() - per.min() <= 1


def test_a_failed_replica_loses_its_sticky_users_to_the_others(monkeypatch):
    """HAProxy's redispatch: when the health checks take the pinned replica out, its users
    are dispatched again and pinned to the new one; the others keep theirs."""
    doc = lb_between(9, 150.0, "round_robin", sticky=True, duration=6.0, stop=4.5, interval=0.25)
    add_event(doc, 2.0, "fail", "api", 0)
    fast = assert_same(doc, 6.0, monkeypatch)
    assert fast._ev_windows > 0
    before, after = {}, {}
    for tr in fast.traces():
        api = [(h.node, h.replica, h.arrived_s) for h in tr.hops if h.node in ("api", "api2")]
        if api and (api[0][2] < 2.0 or api[0][2] > 3.5):   # before the failure; once the checks took it out
            (before if api[0][2] < 2.0 else after).setdefault(tr.user, set()).add(api[0][:2])
    moved = [u for u, v in before.items() if v == {("api", 0)} and u in after]
    kept = [u for u, v in before.items() if ("api", 0) not in v and u in after]
    assert moved and kept
    assert all(("api", 0) not in after[u] and len(after[u]) == 1 for u in moved)
    assert all(after[u] == before[u] for u in kept)


@pytest.mark.parametrize("change", ["shared_cookies", "second_tier"])
def test_shapes_the_window_does_not_follow_take_the_sweeps(monkeypatch, change):
    """Two sticky balancers sharing their users' cookies (the engine sets them balancer by
    balancer); a second tier of blocking servers behind the balancer is another pass's."""
    doc = lb_between(5, 150.0, "round_robin", sticky=True, duration=3.0, stop=2.5)
    if change == "second_tier":
        doc.set_params("lb2", {"affinity": "none"})
        doc.set_params("api", {"blocking_calls": True})
        doc.set_params("api2", {"blocking_calls": True})
    else:   # a second sticky balancer in front of the same API: one cookie per user for both
        doc.add_node(NodeData("lb3", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6,
                                                              "affinity": "sticky"}))
        for a, b in (("web", "lb3"), ("lb3", "api"), ("lb3", "api2")):
            doc.add_edge(a, b)
    sim = run(doc, 3.0, True, monkeypatch)   # the window on, but these take the sweeps
    assert sim._ev_depth is None and sim._ev_windows == 0
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"] and t["served"] > 300
    if change == "shared_cookies":   # each user's requests after its first go where the first went
        went = api_of_users(sim)
        assert went and all(len(v) == 1 for v in went.values())


def model(seed: int, rate: float, until: float, algorithm: str) -> tuple[float, list[int]]:
    """An independent event model of ``lb_between``'s shape without failures, checks or
    limits: Poisson arrivals; round robin over the web replicas, each with ``W`` workers
    and a FIFO queue; a request holds its web worker through its own exponential service
    and its call: the API replica the balancer gives it (round robin in the order the
    requests leave the web tier; weighted: 2 : 1 for api and api2's halved capacity;
    least connections: the fewest requests in progress there, ties at random), a FIFO
    station of its workers, then the database (FIFO, 4 connections).
    Returns the mean response (s) and the requests each API replica served."""
    rng = np.random.default_rng(seed)
    web_n, web_w, web_mean = 2, 2, 2 / 120.0
    api_w, api_mean = 2, [2 / 300.0, 2 / 300.0, 2 / 150.0]   # api 0, 1; api2
    db_k, db_mean = 4, 4 / 2000.0   # 2,000 reads/s over 4 connections
    least = algorithm == "least_connections"   # the fewest requests in progress (waiting or served) at that instant
    weights = [2, 2, 1] if algorithm == "weighted_round_robin" else [1, 1, 1]   # ∝ capacity
    seq, cur = [], [0, 0, 0]
    for _ in range(sum(weights)):   # NGINX's smooth weighted round robin
        cur = [c + w for c, w in zip(cur, weights)]
        best = cur.index(max(cur))
        seq.append(best)
        cur[best] -= sum(weights)
    counts = [0, 0, 0]
    ev: list = []
    t, k = 0.0, 0
    while True:
        t += rng.exponential(1 / rate)
        if t >= until:
            break
        heapq.heappush(ev, (t, 0, k, k % web_n))   # (time, kind, request, where)
        k += 1
    web_free = [[0.0] * web_w for _ in range(web_n)]
    web_q = [[] for _ in range(web_n)]
    api_q = [[] for _ in range(3)]
    api_busy = [0] * 3
    db_q: list = []
    db_busy = 0
    born, web_of, web_slot = {}, {}, {}
    lat = []
    rr = 0

    def start_web(i, t, w):
        web_free[w][web_slot[i]] = math.inf
        heapq.heappush(ev, (t + rng.exponential(web_mean), 1, i, w))

    while ev:
        t, kind, i, where = heapq.heappop(ev)
        if kind == 0:   # arrives at web replica ``where``
            born[i], web_of[i] = t, where
            free = [s for s in range(web_w) if web_free[where][s] != math.inf]
            if free:
                web_slot[i] = free[0]
                start_web(i, t, where)
            else:
                web_q[where].append(i)
        elif kind == 1:   # its web service ends: the balancer gives it an API replica
            if least:
                load = [api_busy[q] + len(api_q[q]) for q in range(3)]
                tied = [q for q in range(3) if load[q] == min(load)]
                a = tied[int(rng.integers(len(tied)))]
            else:
                a = seq[rr % len(seq)]
                rr += 1
            counts[a] += 1
            if api_busy[a] < api_w:
                api_busy[a] += 1
                heapq.heappush(ev, (t + rng.exponential(api_mean[a]), 2, i, a))
            else:
                api_q[a].append(i)
        elif kind == 2:   # API ends: on to the database
            if api_q[where]:
                heapq.heappush(ev, (t + rng.exponential(api_mean[where]), 2, api_q[where].pop(0), where))
            else:
                api_busy[where] -= 1
            if db_busy < db_k:
                db_busy += 1
                heapq.heappush(ev, (t + rng.exponential(db_mean), 3, i, 0))
            else:
                db_q.append(i)
        else:   # the query ends: answered, its web worker is free
            if db_q:
                heapq.heappush(ev, (t + rng.exponential(db_mean), 3, db_q.pop(0), 0))
            else:
                db_busy -= 1
            lat.append(t - born[i])
            w = web_of[i]
            web_free[w][web_slot[i]] = t
            if web_q[w]:
                j = web_q[w].pop(0)
                web_slot[j] = web_slot[i]
                start_web(j, t, w)
    return float(np.mean(lat)), counts


@pytest.mark.parametrize("algorithm", ["round_robin", "weighted_round_robin", "least_connections"])
def test_the_mean_response_and_the_split_are_the_event_models(algorithm):
    """At ~75 % load of the web tier's held workers the engine's mean response is the
    independent model's (within the error of the runs), and the balancer splits the
    requests over the API replicas as its sequence says."""
    rate, until = 110.0, 300.0
    doc = lb_between(11, rate, algorithm, api_limit=100_000, api_timeout=3600.0, web_limit=100_000,
                     web_timeout=3600.0, check_ms=0.0, duration=until, stop=until)
    sim = Simulation(doc)
    sim.run_until(until + 5.0)
    assert sim._ev_windows > 0 and sim._ev_fallbacks == 0
    t = sim.totals()
    assert t["failed"] == 0
    means = [model(s, rate, until, algorithm) for s in (1, 2, 3)]
    ref = float(np.mean([m[0] for m in means]))
    assert t["mean_ms"] / 1000 == pytest.approx(ref, rel=0.06)
    flows = sim.metrics.flow
    api, api2 = float(flows[("lb2", "api")].sum()), float(flows[("lb2", "api2")].sum())
    counts = np.sum([m[1] for m in means], axis=0)
    assert api2 / (api + api2) == pytest.approx(counts[2] / counts.sum(), abs=0.005 if algorithm != "least_connections"
                                                else 0.01)


AWARE = ["least_connections", "least_response_time", "power_of_two"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(1, 10_000), algorithm=st.sampled_from(AWARE), rate=st.sampled_from([60.0, 250.0]),
       api_workers=st.integers(1, 2), api_replicas=st.integers(1, 3), api_limit=st.sampled_from([0, 3, 50]),
       api_timeout=st.sampled_from([0.03, 1.0]), deterministic=st.booleans(), etag=st.booleans(),
       read_ratio=st.sampled_from([1.0, 0.7]), sticky=st.booleans(),
       failures=st.sampled_from([(), (("api", 0, 1.0, 3.2),), (("web", 0, 0.7, 2.2), ("api2", None, 2.5, 4.0))]))
def test_load_aware_balancers_downstream_choose_the_same_whatever_the_tick_and_the_steps(
        seed, algorithm, rate, api_workers, api_replicas, api_limit, api_timeout, deterministic, etag, read_ratio,
        sticky, failures):
    """Least connections, least response time and power of two downstream of blocking
    servers choose at the instant each request leaves the balancer, with the requests in
    progress then (sticky: for a user without a valid cookie): the engine's own choice
    (exact_balance.py) and the event window's kernel agree on every held worker's release
    (else a SimulationError), and nothing depends on the tick or on the app's steps."""
    def sim_of(tick: float) -> Simulation:
        doc = lb_between(seed, rate, algorithm, api_workers=api_workers, api_replicas=api_replicas,
                         api_limit=api_limit, api_timeout=api_timeout, deterministic=deterministic, etag=etag,
                         read_ratio=read_ratio, duration=6.0, stop=4.0, sticky=sticky)
        doc.set_settings(tick_ms=tick)
        for node, replica, down, up in failures:
            replica = None if replica is None else min(replica, api_replicas - 1) if node == "api" else replica
            add_event(doc, down, "fail", node, replica)
            add_event(doc, up, "recover", node, replica)
        return Simulation(doc)

    whole = sim_of(10.0)
    whole.run_until(6.0)
    assert whole._ev_windows > 0 and whole._held_lost == 0 and not whole._one_tick
    fine = sim_of(1.0)
    for _ in range(60):
        fine.advance(0.1)
    assert fine.totals() == whole.totals()
    assert whole.totals()["served"] > 0


def test_least_connections_downstream_spares_the_slower_replica():
    """The lesson's point: behind blocking web servers, least connections sends the
    half-capacity API replica fewer requests than round robin's third, and the mean
    response falls."""
    def run_with(algorithm: str) -> Simulation:
        sim = Simulation(lb_between(7, 110.0, algorithm, api_limit=100_000, api_timeout=3600.0,
                                    web_limit=100_000, web_timeout=3600.0, check_ms=0.0, duration=120.0, stop=120.0))
        sim.run_until(125.0)
        return sim

    rr, lc = run_with("round_robin"), run_with("least_connections")
    share = {}
    for name, sim in (("rr", rr), ("lc", lc)):
        f = sim.metrics.flow
        share[name] = float(f[("lb2", "api2")].sum()) / float(f[("lb2", "api")].sum() + f[("lb2", "api2")].sum())
    assert share["rr"] == pytest.approx(1 / 3, abs=0.002)
    assert share["lc"] < 0.3
    assert lc.totals()["mean_ms"] < rr.totals()["mean_ms"]


def test_an_unwired_balancers_health_checks_reach_the_api_in_the_window(monkeypatch):
    """A balancer dropped in front of the API but not yet fed by anything: no request
    leaves it, only its health checks (every 0.1 s, 5 ms each) take API workers. The
    window still follows the balancer in use downstream, and every request ends as in
    the sweeps."""
    doc = lb_between(5, 150.0, "round_robin", duration=4.0, stop=3.0, check_ms=5.0, interval=0.25)
    doc.add_node(NodeData("lb_unwired", "load_balancer", params={"algorithm": "least_connections",
                                                                 "health_interval_s": 0.1,
                                                                 "health_check_cost_ms": 5.0}))
    doc.add_edge("lb_unwired", "api")
    fast = assert_same(doc, 4.0, monkeypatch)
    assert fast._ev_depth is not None and len(fast._ev_choice) == 1 and not fast._one_tick


@pytest.mark.parametrize("algorithm", ["round_robin", "random", "least_connections"])
def test_a_sticky_balancer_downstream_gives_the_same_numbers_however_the_run_is_stepped(algorithm):
    """The users' cookies live between windows (the kernel pins on a copy; the engine sets
    them): the app's steps change nothing."""
    from test_trust import assert_same_however_sliced
    assert_same_however_sliced(lb_between(5, 150.0, algorithm, sticky=True, duration=6.0, stop=5.0), 6.0)
