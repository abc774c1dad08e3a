"""Two tiers of blocking servers (web → api → database, both sync) decided in the sweeps.

With ``SCALELAB_BLOCKING_EVENTS=0`` every blocking tier is decided in the sweeps
(simulation/blocking.py). On such a chain they lost the web workers of requests being
admitted at the API (``_held_lost`` in the thousands, response times far too low). Here
each request must end as in ``balanced_reference.BalancedTier`` with a second ``Tier``, an
independent event model (the balancer's choices are the engine's: ``fixed``), and, with
the API or the database failing, as in the discrete-event pass that decides such chains
by default (balanced_window.py + second_tier.py), checked against the same model in
test_balanced_blocking.py."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.document import Document, NodeData
from simulation.engine import Simulation

from balanced_reference import against_the_model
from topologies import add_event

NS = 10**9


@pytest.fixture(autouse=True)
def sweeps(monkeypatch):
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "0")


def ns(seconds: float) -> int:
    return int(round(seconds * NS))


def chain(algorithm: str, rate: float, *, replicas: int = 2, workers: int = 3, limit: int = 8,
          patience: float = 0.3, api: dict, connections: int = 3, db_rps: float = 180.0, seed: int = 1,
          duration: float = 10.0) -> Document:
    """users → balancer → web (blocking) → api (blocking) → database (room for all)."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 5000, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm, "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 80.0 * workers, "workers": workers,
                                                 "replicas": replicas, "blocking_calls": True,
                                                 "queue_limit": limit, "timeout_s": patience}))
    d.add_node(NodeData("api", "server", params={"blocking_calls": True, **api}))
    d.add_node(NodeData("db", "database", params={"connections": connections, "read_capacity_rps": db_rps,
                                                  "queue_limit": 100_000, "timeout_s": 3600}))
    for a, b in (("users", "lb"), ("lb", "web"), ("web", "api"), ("api", "db")):
        d.add_edge(a, b)
    d.set_settings(seed=seed, duration_s=duration)
    return d


def run(doc: Document, until: float) -> Simulation:
    """The engine, in the sweeps: no event window, no discrete-event pass, no held worker lost."""
    sim = Simulation(doc)
    assert sim._holding and not sim._ev_des and sim._ev_depth is None   # the path this file is about
    sim.trace_every(1, cap=10**7)
    sim.run_until(until)
    assert sim._ev_windows == 0 and sim._held_lost == 0
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    return sim


def compare(doc: Document, until: float) -> tuple[Simulation, list, dict]:
    """Run the sweeps and the reference; the requests they disagree on, and the reference's
    outcomes by cause (of the requests the engine finished by ``until``)."""
    sim = run(doc, until)
    wrong, causes = against_the_model(sim, doc, until, "fixed")
    return sim, wrong, causes


API_BOTTLENECK = {"capacity_rps": 120.0, "workers": 1, "replicas": 2, "queue_limit": 3, "timeout_s": 0.1}
DB_BOTTLENECK = {"capacity_rps": 600.0, "workers": 2, "replicas": 2, "queue_limit": 4, "timeout_s": 0.1}


@pytest.mark.parametrize("algorithm", ["round_robin", "random"])
@pytest.mark.parametrize("bottleneck", ["api", "db"])
def test_a_chain_in_the_sweeps_matches_the_event_model(algorithm, bottleneck):
    """170 requests/s; the API tier (2 × 1 worker, each held for its 8 ms and its query)
    or the database (3 connections at 33/s each) is the bottleneck: workers of both tiers
    are held, queues fill, refuse and time out. Before the fix: held_lost > 0, and
    requests answered too early."""
    api = API_BOTTLENECK if bottleneck == "api" else DB_BOTTLENECK
    doc = chain(algorithm, 170.0, api=api, seed=3, db_rps=180.0 if bottleneck == "api" else 100.0, duration=8.0)
    sim, wrong, causes = compare(doc, 8.0)
    assert wrong == []
    assert causes["answered"] > 500 and causes["queue_full"] > 50 and causes["timeout"] > 10, causes
    at_api = [tr for tr in sim.traces() if tr.outcome == "failed" and tr.hops[-1].node == "api"]
    assert len(at_api) > (20 if bottleneck == "api" else 3)   # refused or timed out there, holding a web worker


def test_the_reproducer_gives_the_discrete_event_pass_numbers(monkeypatch):
    """The chain of the bug report: served 2897, mean 85 ms, 2971 held workers lost in the
    sweeps; the pass: 2841 served, 201 ms. Now the sweeps give the pass's numbers."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 150, "users": 5000, "read_ratio": 0.9}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 400, "workers": 4, "replicas": 2,
                                                 "blocking_calls": True, "queue_limit": 20, "timeout_s": 1.0}))
    d.add_node(NodeData("api", "server", params={"capacity_rps": 300, "workers": 3, "replicas": 2,
                                                 "blocking_calls": True, "queue_limit": 10, "timeout_s": 0.5}))
    d.add_node(NodeData("db", "database", params={"connections": 4, "read_capacity_rps": 200,
                                                  "write_capacity_rps": 100}))
    for a, b in (("users", "lb"), ("lb", "web"), ("web", "api"), ("api", "db")):
        d.add_edge(a, b)
    d.set_settings(seed=1, duration_s=8)
    assert_same_as_the_pass(d, 8.0, monkeypatch)


def assert_same_as_the_pass(doc: Document, until: float, monkeypatch, clicks=()) -> dict:
    """The sweeps and the discrete-event pass end every request the same way at the same
    nanosecond (± 1 for rounding); ``clicks``: (time, fail|recover, node, replica) done
    between two calls of run_until, as a user clicks. (Before 2026-11-30 a request the
    sweeps had not decided yet when its server failed was lost there, node_failed at the
    click, though it had been refused before: blocking.py's _decide_before_failure.)"""
    out = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", flag)
        sim = Simulation(doc)
        assert sim._ev_des == (flag == "1")
        sim.trace_every(1, cap=10**7)
        for t, what, node, replica in clicks:
            sim.run_until(t)
            (sim.fail if what == "fail" else sim.recover)(node, replica)
        sim.run_until(until)
        assert sim._held_lost == 0
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
        out[flag] = (t, {tr.key: (tr.outcome, tr.cause, ns(tr.end_s)) for tr in sim.traces()
                         if tr.outcome != "in_flight"})
    (t0, ends0), (t1, ends1) = out["0"], out["1"]
    both = ends0.keys() & ends1.keys()
    wrong = [(k, ends0[k], ends1[k]) for k in both
             if ends0[k][:2] != ends1[k][:2] or abs(ends0[k][2] - ends1[k][2]) > 1]
    assert wrong == []
    assert t0["served"] == t1["served"]
    assert len(both) > 0.95 * max(len(ends0), len(ends1))   # only the last instants' in flight differ
    assert abs(t0["mean_ms"] - t1["mean_ms"]) < 0.02 * t1["mean_ms"]
    return t0


@pytest.mark.parametrize("failing", ["api", "db"])
def test_a_chain_with_failures_ends_every_request_as_the_discrete_event_pass(failing, monkeypatch):
    """An API replica, or the database, fails and recovers (scheduled), and a web replica
    fails and recovers (clicked): requests holding workers of both tiers are lost with the
    failed node; the workers they held are freed, nothing is lost from the table."""
    doc = chain("round_robin", 170.0, api=API_BOTTLENECK, seed=11, duration=10.0)
    if failing == "api":
        add_event(doc, 2.0, "fail", "api", 0)
        add_event(doc, 4.0, "recover", "api", 0)
    else:
        add_event(doc, 2.0, "fail", "db")
        add_event(doc, 3.5, "recover", "db")
    t = assert_same_as_the_pass(doc, 8.0, monkeypatch, clicks=((5.0, "fail", "web", 1), (6.0, "recover", "web", 1)))
    causes = t["failed_by_cause"]
    assert causes["backend_down"] > 100 and causes["node_failed"] > 0 and t["served"] > 400, t


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), rate=st.sampled_from([60.0, 170.0, 400.0]),
       algorithm=st.sampled_from(["round_robin", "random"]), replicas=st.integers(1, 3), workers=st.integers(1, 3),
       limit=st.sampled_from([0, 2, 8]), patience=st.sampled_from([0.05, 0.3, 5.0]), api_replicas=st.integers(1, 3),
       api_workers=st.integers(1, 2), api_limit=st.sampled_from([0, 3, 20]),
       api_patience=st.sampled_from([0.05, 0.3, 5.0]), connections=st.integers(1, 4))
def test_random_chains_in_the_sweeps_match_the_event_model(seed, rate, algorithm, replicas, workers, limit, patience,
                                                          api_replicas, api_workers, api_limit, api_patience,
                                                          connections):
    api = {"capacity_rps": 150.0 * api_workers, "workers": api_workers, "replicas": api_replicas,
           "queue_limit": api_limit, "timeout_s": api_patience}
    doc = chain(algorithm, rate, replicas=replicas, workers=workers, limit=limit, patience=patience, api=api,
                connections=connections, db_rps=60.0 * connections, seed=seed, duration=4.0)
    sim, wrong, causes = compare(doc, 4.0)
    assert wrong == []


def test_a_worker_freeing_within_the_tie_margin_makes_room_in_the_model_too():
    # CI's hypothesis run found a request arriving 87 ns before the web worker it needed was
    # freed, with no waiting room: the engine admits it (a start at most 100 ns after the
    # arrival counts as no wait, stations.py), the reference model refused it; the model now
    # applies the same margin (balanced_reference.py)
    api = {"capacity_rps": 150.0, "workers": 1, "replicas": 1, "queue_limit": 0, "timeout_s": 0.05}
    doc = chain("round_robin", 60.0, replicas=1, workers=1, limit=0, patience=0.05, api=api, connections=1,
                db_rps=60.0, seed=1975, duration=4.0)
    sim, wrong, causes = compare(doc, 4.0)
    assert wrong == [] and causes["queue_full"] > 20 and causes["answered"] > 50


def test_an_api_tier_keeping_sessions_in_the_database_ends_every_request_as_the_pass(monkeypatch):
    """Found by fuzzing (random_topology(1168, tiers=True)): sync web servers → sync API
    servers that keep sessions in the database → the database, all writes. A request still
    waiting at the API when a window began had its journey drawn without the session read
    its admission there asks of the database: the pass predicted its worker's release 4 ms
    early and the run stopped with "a worker was released at another time than predicted"."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 150.0, "read_ratio": 0.0, "users": 3000}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 20.0, "workers": 4, "replicas": 3, "queue_limit": 0,
                                                 "timeout_s": 0.1, "blocking_calls": True}))
    d.add_node(NodeData("api", "server", params={"capacity_rps": 800.0, "workers": 2, "replicas": 3,
                                                 "blocking_calls": True, "sessions": "database"}))
    d.add_node(NodeData("db", "database", params={"connections": 8, "read_capacity_rps": 2000.0,
                                                  "write_capacity_rps": 100.0, "queue_limit": 50}))
    for a, b in (("users", "web"), ("web", "api"), ("api", "db")):
        d.add_edge(a, b)
    d.set_settings(seed=1168, duration_s=12.0)
    t = assert_same_as_the_pass(d, 12.0, monkeypatch)
    assert t["served"] > 300 and t["failed_by_cause"]["queue_full"] > 100
