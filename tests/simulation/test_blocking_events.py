"""Blocking tiers decided event by event (simulation/blocking_window.py) give the sweeps'
numbers, request by request, and the theory's.

The sweeps (blocking.py) are checked against an independent event model in
test_blocking_reference.py, which runs on both paths; here random tiers with what the
reference does not model (304s, sessions in the database and in the servers' memory,
writes, deterministic service, several web nodes, failures of web replicas and of the
database, tiny waiting rooms and patience) must give identical results on both paths:
every request's outcome and end, the totals and the per-second series. The arrivals stop
before the end, so that both have decided every request: at a window's end the two may
leave different requests undecided (the event window decides more of them; both then
decide them the same way).
"""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import dumps, loads

from random_topologies import random_topology
from test_blocking_calls import web_db
from topologies import add_event
from wallclock import within


def run(doc: Document, until: float, events: bool, monkeypatch) -> Simulation:
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1" if events else "0")
    sim = Simulation(doc)
    sim.trace_every(1, cap=10**7)
    sim.run_until(until)
    assert sim._held_lost == 0
    return sim


def outcomes(sim: Simulation) -> dict:
    return {tr.key: (tr.outcome, tr.cause, None if tr.end_s is None else round(tr.end_s * 1e9)) for tr in sim.traces()}


def assert_same(doc: Document, until: float, monkeypatch, drained: bool = True, decided: bool = True) -> Simulation:
    fast = run(doc, until, True, monkeypatch)
    slow = run(doc, until, False, monkeypatch)
    # the event window decided windows (``decided``), or at least tried: a window it gives up
    # on (a tie at one instant that only the engine's order decides) is the sweeps'; with
    # deterministic service at a replicated database and long windows, every window may be
    assert (fast._ev_windows > 0 if decided else fast._ev_windows + fast._ev_fallbacks > 0)
    assert slow._ev_windows == 0
    if drained:
        assert fast.in_flight == 0 and slow.in_flight == 0
    # every request ends the same way at the same time (before 2026-11-30 a request the sweeps
    # had not decided when its blocking server failed was lost there, though it had been refused
    # or had given up before the failure: blocking.py's _decide_before_failure)
    assert outcomes(fast) == outcomes(slow)
    assert fast.totals() == slow.totals()
    for name in ("throughput", "errors", "p50", "p99", "queue", "in_system"):
        a, b = getattr(fast.metrics, name, None), getattr(slow.metrics, name, None)
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=f"{name}[{k}]")
    # utilization: the same busy time, to the nanosecond (before 2026-11-30 the sweeps lost the
    # first nanosecond of service of a request they decided one nanosecond late: the horizon
    # moves 1 ns past its start, blocking.STEP_S; now booked, blocking._book_before)
    for node, u in slow.metrics.util.items():
        np.testing.assert_array_equal(np.asarray(fast.metrics.util[node]), np.asarray(u), err_msg=f"util[{node}]")
    return fast


def tier(seed: int, rate: float, *, webs: int, replicas: int, workers: int, conns: int, db_cap: float,
         web_limit: int, web_timeout: float, db_limit: int, db_timeout: float, deterministic: bool,
         sessions: str, etag: bool, read_ratio: float, duration: float, downstream: str = "db",
         mixed: bool = False) -> Document:
    """Client → round robin → ``webs`` blocking web nodes → ``downstream``: one database
    ("db"), two (each web node splits its queries: "two_dbs"), a server that does not
    block and calls the database ("api"), a cache in front of the database ("cache"), or
    a database with two read replicas, a proxy and failover ("replicated"), three shards
    by item with a read replica each ("sharded"; "cross": 30 % of the queries go to every
    shard), or three databases holding a table each, a quarter of the requests joining two
    of them ("tables"), or two primaries and a read replica ("multi"). ``mixed``: the second web
    node does not block."""
    d = Document()
    tables = {"table_mix": {"a": 0.5, "b": 0.3, "c": 0.2}, "join_share": 0.25, "join_tables": ["a", "b"]} \
        if downstream == "tables" else {"cross_shard_share": 0.3} if downstream == "cross" else {}
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 300, "read_ratio": read_ratio,
                                                   "items": 50, "pattern": {"type": "steps", "times_s": [3.0],
                                                                            "factors": [0.0]}, **tables}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
    d.add_edge("users", "lb")
    replicated = ({"read_replicas": 2, "failover_s": 0.4, "monitor_interval_s": 0.25} if downstream == "replicated"
                  else {"shards": 3, "read_replicas": 1} if downstream in ("sharded", "cross")
                  else {"primaries": 2, "read_replicas": 1, "replication_lag_ms": 50.0,
                        "monitor_interval_s": 0.25} if downstream == "multi"
                  else {"tables": ["a"], "read_replicas": 1} if downstream == "tables" else {})
    d.add_node(NodeData("db", "database", params={"connections": conns, "read_capacity_rps": db_cap,
                                                  "write_capacity_rps": db_cap / 2, "queue_limit": db_limit,
                                                  "timeout_s": db_timeout, **replicated}))
    if downstream == "two_dbs":
        d.add_node(NodeData("db2", "database", params={"connections": 2, "read_capacity_rps": 200.0,
                                                       "write_capacity_rps": 100.0, "queue_limit": 3,
                                                       "timeout_s": 0.1}))
    if downstream == "tables":   # three databases, one table each; a quarter of the requests join a and b
        for name, table in (("db2", "b"), ("db3", "c")):
            d.add_node(NodeData(name, "database", params={"connections": 2, "read_capacity_rps": 200.0,
                                                          "write_capacity_rps": 100.0, "queue_limit": 3,
                                                          "timeout_s": 0.1, "tables": [table]}))
    if downstream in ("api", "autoscaled"):
        scale = {"autoscale": True, "min_replicas": 1, "max_replicas": 4, "scale_interval_s": 1.0,
                 "scale_down_delay_s": 1.0, "boot_time_s": 0.5, "target_utilization": 0.3} \
            if downstream == "autoscaled" else {}
        d.add_node(NodeData("api", "server", params={"capacity_rps": 300.0, "workers": 2, "replicas": 2,
                                                     "queue_limit": 20, "timeout_s": 0.3, "sessions": sessions,
                                                     **scale}))
        d.add_edge("api", "db")
    if downstream == "cache":
        d.add_node(NodeData("cache", "cache", params={"capacity_items": 20, "ttl_s": 0.5, "connections": 2, "capacity_rps": 2000.0}))
        d.add_edge("cache", "db")
    for k in range(webs):
        d.add_node(NodeData(f"web{k}", "server", params={
            "capacity_rps": 40.0 * workers, "workers": workers, "replicas": replicas,
            "blocking_calls": not (mixed and k == 1),
            "queue_limit": web_limit, "timeout_s": web_timeout,
            "sessions": "cookie" if ((downstream in ("api", "autoscaled") and sessions != "cookie")
                                     or (mixed and k == 1 and sessions == "local")) else sessions,
            "service": "deterministic" if deterministic and k == 0 else "exponential",
            "etag": etag, "cache_max_age_s": 0.2 if etag else 0.0}))
        d.add_edge("lb", f"web{k}")
        d.add_edge(f"web{k}", "api" if downstream == "autoscaled" else downstream if downstream in ("api", "cache")
                   else "db")
        if downstream in ("two_dbs", "tables"):
            d.add_edge(f"web{k}", "db2")
        if downstream == "tables":
            d.add_edge(f"web{k}", "db3")
    d.set_settings(seed=seed, duration_s=duration)
    return d


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), rate=st.sampled_from([60.0, 200.0, 500.0]), webs=st.integers(1, 2),
       replicas=st.integers(1, 3), workers=st.integers(1, 3), conns=st.integers(1, 4),
       db_cap=st.sampled_from([80.0, 300.0, 2000.0]), web_limit=st.sampled_from([0, 3, 40, 4000]),
       web_timeout=st.sampled_from([0.05, 0.5, 2.0]), db_limit=st.sampled_from([0, 2, 50]),
       db_timeout=st.sampled_from([0.02, 0.2, 1.0]), deterministic=st.booleans(),
       sessions=st.sampled_from(["cookie", "local", "database"]), etag=st.booleans(),
       read_ratio=st.sampled_from([1.0, 0.7]), mixed=st.booleans(),
       downstream=st.sampled_from(["db", "two_dbs", "api", "autoscaled", "cache", "replicated", "sharded", "cross",
                                   "tables", "multi"]),
       failures=st.sampled_from([(), (("db", 1.0, 1.6),), (("web0", 0.7, 2.2),), (("db", 2.5, 2.6), ("web0", 0.3, 1.1))]))
def test_random_tiers_decided_event_by_event_are_the_sweeps_request_by_request(
        monkeypatch, seed, rate, webs, replicas, workers, conns, db_cap, web_limit, web_timeout, db_limit, db_timeout,
        deterministic, sessions, etag, read_ratio, mixed, downstream, failures):
    doc = tier(seed, rate, webs=webs, replicas=replicas, workers=workers, conns=conns, db_cap=db_cap,
               web_limit=web_limit, web_timeout=web_timeout, db_limit=db_limit, db_timeout=db_timeout,
               deterministic=deterministic, sessions=sessions, etag=etag, read_ratio=read_ratio, duration=8,
               downstream=downstream, mixed=mixed)
    for node, down, up in failures:
        add_event(doc, down, "fail", node, 0 if node.startswith("web") else None)
        add_event(doc, up, "recover", node, 0 if node.startswith("web") else None)
    assert_same(doc, 8.0, monkeypatch, decided=False)   # (e.g. deterministic service at two primaries: all ties)


def test_the_second_before_a_failure_shows_its_own_utilization(monkeypatch):
    """A second stays open while a request that arrived in it is undecided at a blocking
    server, past the failure of the database at its end: its row still shows the
    database's busy time in it over the capacity then (not 0 %, as with the state after
    the failure), on both paths; recounted from the requests' traces."""
    doc = tier(1, 500.0, webs=1, replicas=1, workers=1, conns=1, db_cap=80.0, web_limit=3, web_timeout=0.05,
               db_limit=0, db_timeout=0.02, deterministic=False, sessions="cookie", etag=False, read_ratio=1.0,
               duration=8, downstream="db")
    add_event(doc, 2.0, "fail", "db")
    add_event(doc, 2.6, "recover", "db")
    for events in (True, False):
        sim = run(doc, 4.0, events, monkeypatch)
        busy = sum(max(0.0, min(h.end_s, 2.0) - min(max(h.start_s, 1.0), 2.0)) for tr in sim.traces()
                   for h in tr.hops if h.node == "db" and h.start_s is not None and h.end_s is not None)
        util = np.asarray(sim.metrics.util["db"])
        assert busy > 0.1 and util[1] == pytest.approx(busy, abs=1e-6)   # one connection: busy s per s
        assert list(np.asarray(sim.metrics.replicas_up["db"])[:2]) == [1, 1]


def test_a_long_saturated_run_sliced_in_steps_is_the_sweeps(monkeypatch):
    """Undecided requests carried from window to window, the app's small steps, and a
    database that is the bottleneck (its waiting room full, the web tier's filling)."""
    doc = web_db(300.0, blocking=True, workers=2, capacity=200.0, replicas=2, db_connections=2, db_capacity=220.0,
                 web={"queue_limit": 30, "timeout_s": 1.0}, db={"queue_limit": 5, "timeout_s": 0.3}, duration=30)
    doc.set_params("users", {"pattern": {"type": "steps", "times_s": [27.0], "factors": [0.0]}})
    fast = assert_same(doc, 30.0, monkeypatch)
    assert fast.totals()["failed_by_cause"]["queue_full"] > 1000
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1")
    stepped = Simulation(doc)
    for _ in range(300):
        stepped.advance(0.1)
    assert stepped.totals() == fast.totals()


def test_a_blocking_tier_is_the_pollaczek_khinchine_queue_of_its_held_time():
    """S5 of the benchmarks: Poisson 900 req/s over 4 one-worker blocking servers (300 req/s
    each, exponential) that each call a database with connections enough (0.5 ms queries).
    A worker is held for its own service plus the query: an M/G/1 queue per server with
    S = X + 0.5 ms, X ~ Exp(1/300 s). Pollaczek–Khinchine: W = λE[S²] / (2(1 − ρ)) + E[S]."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 900.0, "users": 10_000, "read_ratio": 1.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 300.0, "workers": 1, "replicas": 4,
                                                 "blocking_calls": True, "queue_limit": 100_000, "timeout_s": 3600}))
    d.add_node(NodeData("db", "database", params={"connections": 100, "read_capacity_rps": 200_000.0,
                                                  "queue_limit": 100_000, "timeout_s": 3600}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "random", "capacity_rps": 1e9}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=5, duration_s=120.0)
    sim = Simulation(d)
    sim.run_until(120.0)
    assert sim._ev_windows >= 10 and sim._ev_fallbacks == 0
    lam, mx, q = 900.0 / 4, 1 / 300.0, 100 / 200_000.0   # per server; the database: 100 connections at 200,000/s
    es, es2 = mx + q, 2 * mx ** 2 + 2 * mx * q + q ** 2
    rho = lam * es
    w = lam * es2 / (2 * (1 - rho)) + es
    t = sim.totals()
    assert t["failed"] == 0
    assert t["mean_ms"] == pytest.approx(w * 1000, rel=0.04)   # ~108,000 requests at 87 % load


def test_which_tiers_are_decided_event_by_event():
    """Servers that call several databases, servers that do not block in between or beside, caches
    (with windows of a whole second at most: a cache's hits follow its state second by
    second), databases with read replicas and shards are journeys the event window
    follows, queries across shards and a second tier of blocking servers too (the latter in
    balanced_window.py's pass, with sessions in the first tier's memory or an async
    server beside it), and a balancer downstream (choice_hops.py), sticky too; two sticky
    balancers downstream sharing their users' cookies are left to the sweeps."""
    def shape(extra) -> Simulation:
        doc = web_db(50.0, blocking=True, workers=1, duration=5)
        extra(doc)
        return Simulation(doc)

    def second_db(d):
        d.add_node(NodeData("db2", "database", params={}))
        d.add_edge("web", "db2")

    def api(d):
        d.remove_edge("web", "db")
        d.add_node(NodeData("api", "server", params={"replicas": 3}))
        d.add_edge("web", "api")
        d.add_edge("api", "db")

    def cache(d):
        d.remove_edge("web", "db")
        d.add_node(NodeData("cache", "cache", params={}))
        d.add_edge("web", "cache")
        d.add_edge("cache", "db")

    def replicas(d):
        d.set_params("db", {"read_replicas": 2})

    def primaries(d):
        d.set_params("db", {"primaries": 2})

    def shards(d):
        d.set_params("db", {"shards": 4})

    def cross_shard(d):
        shards(d)
        d.set_params("users", {"cross_shard_share": 0.1})

    def tables(d):
        d.set_params("users", {"table_mix": {"a": 0.6, "b": 0.4}, "join_share": 0.2, "join_tables": ["a", "b"]})
        d.set_params("db", {"tables": ["a"]})
        d.add_node(NodeData("db2", "database", params={"tables": ["b"]}))
        d.add_edge("web", "db2")

    def chain(d):
        api(d)
        d.set_params("api", {"blocking_calls": True})

    def balancer(d):
        api(d)
        d.remove_edge("web", "api")
        d.add_node(NodeData("lb2", "load_balancer", params={}))
        d.add_edge("web", "lb2")
        d.add_edge("lb2", "api")

    def beside(d):   # a server that does not block next to the blocking one, behind one balancer
        d.add_node(NodeData("lb", "load_balancer", params={}))
        d.remove_edge("users", "web")
        d.add_edge("users", "lb")
        d.add_edge("lb", "web")
        d.add_node(NodeData("async", "server", params={}))
        d.add_edge("lb", "async")
        d.add_edge("async", "db")

    assert shape(lambda d: None)._ev_depth == 1
    assert shape(beside)._ev_depth == 1
    assert shape(second_db)._ev_depth == 1
    assert shape(api)._ev_depth == 2
    assert shape(cache)._ev_depth == 2 and shape(cache)._ev_caches
    assert shape(replicas)._ev_depth == 1
    assert shape(shards)._ev_depth == 1
    assert shape(primaries)._ev_depth == 1   # windows no longer than the lag (a write reaches the others after it)
    assert shape(cross_shard)._ev_depth == 1   # the parts at the other shards go with the query
    assert shape(tables)._ev_depth == 2   # a join's second query after its first
    assert shape(chain)._ev_depth == 2 and shape(chain)._ev_chain is not None   # balanced_window.py's pass
    assert shape(chain)._ev_des and not shape(api)._ev_des
    assert shape(balancer)._ev_depth == 3 and shape(balancer)._ev_choice == [0]   # lb2 → api → db

    def aware(d):
        balancer(d)
        d.set_params("lb2", {"algorithm": "least_connections"})

    def sticky(d):
        balancer(d)
        d.set_params("lb2", {"affinity": "sticky"})

    def shared_cookies(d):
        sticky(d)
        d.add_node(NodeData("lb3", "load_balancer", params={"affinity": "sticky"}))
        for a, b in (("web", "lb3"), ("lb3", "api")):
            d.add_edge(a, b)

    def chain_sessions(d):
        chain(d)
        d.set_params("web", {"sessions": "local"})

    def chain_beside(d):
        beside(d)
        chain(d)

    def chain_beside_aware(d):   # the journey after the web tier would hang on the balancer's choice
        chain_beside(d)
        d.set_params("lb", {"algorithm": "least_connections"})

    assert shape(aware)._ev_depth == 3 and not shape(aware)._one_tick
    assert shape(sticky)._ev_depth == 3 and shape(sticky)._ev_choice == [0]
    assert shape(shared_cookies)._ev_depth is None
    assert shape(chain_sessions)._ev_chain is not None and shape(chain_beside)._ev_chain is not None
    assert shape(chain_beside_aware)._ev_depth is None


def test_arrivals_at_one_instant_at_the_database_are_taken_in_the_same_order(monkeypatch):
    """Deterministic service and a database failure: the failure frees every held worker at
    once, the waiting requests all start then and reach the database together, again and
    again. Such ties are taken in the order of the requests' keys on both paths."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 300.0, "users": 100, "read_ratio": 1.0,
                                                   "pattern": {"type": "steps", "times_s": [3.0], "factors": [0.0]}}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 400.0, "workers": 4, "replicas": 2,
                                                 "blocking_calls": True, "service": "deterministic",
                                                 "queue_limit": 1000, "timeout_s": 5.0}))
    d.add_node(NodeData("db", "database", params={"connections": 2, "read_capacity_rps": 150.0,
                                                  "service": "deterministic", "queue_limit": 100, "timeout_s": 5.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e9}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    d.add_edge("web", "db")
    add_event(d, 1.0, "fail", "db")
    add_event(d, 1.5, "recover", "db")
    d.set_settings(seed=1, duration_s=12.0)
    fast = assert_same(d, 12.0, monkeypatch)
    assert fast._ev_fallbacks == 0
    at_db = [h.arrived_s for tr in fast.traces() for h in tr.hops if h.node == "db"]
    assert len(at_db) - len(set(at_db)) > 50   # many arrivals shared their instant with another


def test_a_waiting_room_beyond_the_ring_with_a_short_patience_runs_to_the_end(monkeypatch):
    """More than 4,096 places (the room is then estimated from the wait: stations.py) and a
    patience shorter than the database's answers: a request's fate at the web server waits
    for a release only the database decides. The event window decides it, every request
    ends, and the counts add up (the sweeps: test_blocking_sweeps_ring.py)."""
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1")
    doc = tier(1, 60.0, webs=1, replicas=1, workers=1, conns=1, db_cap=80.0, web_limit=10_000, web_timeout=0.05,
               db_limit=0, db_timeout=0.02, deterministic=False, sessions="cookie", etag=False, read_ratio=1.0,
               duration=8)
    sim = Simulation(doc)
    sim.run_until(8.0)
    t = sim.totals()
    assert t["in_flight"] == 0 and t["arrived"] == t["served"] + t["failed"] > 150
    assert t["failed_by_cause"]["timeout"] > 0 and t["served"] > 0


def _eligible_random_files(n: int) -> list[int]:
    """The first ``n`` seeds of random_topologies whose blocking tier the event window
    decides, without a load-aware balancer in front of it: such a balancer counts the
    requests at each blocking server, and the sweeps leave more of them undecided at a
    window's end, so its choices may differ (docs/engine.md)."""
    seeds = []
    for seed in range(2000):
        doc = random_topology(seed, duration_s=8.0)
        algos = {doc.params(x)["algorithm"] for x in doc.node_ids() if doc.kind(x) == "load_balancer"}
        if algos & {"least_connections", "least_response_time", "power_of_two"}:
            continue
        if Simulation(doc)._ev_depth is not None:
            seeds.append(seed)
            if len(seeds) == n:
                break
    return seeds


@pytest.mark.parametrize("seed", _eligible_random_files(10))
def test_random_files_with_random_failures_end_every_request_as_the_sweeps_do(monkeypatch, seed):
    """Random files (random_topologies.py: autoscaling, caches, replicas, sessions, 304s,
    scheduled failures of anything) whose blocking tier is decided event by event: every
    request both paths have finished ends the same way at the same nanosecond, and only
    requests that arrived in the last seconds may be finished on one path only (the event
    window leaves fewer undecided). One exception, the sweeps' (docs/engine.md): a request
    they had not decided yet when its blocking server failed is lost there (node_failed),
    though its refusal or give-up came before the failure, as the event window has it.
    Nothing hangs."""
    doc = loads(dumps(random_topology(seed, duration_s=8.0)))
    with within(240, f"random_topology({seed})"):
        fast = run(doc, 8.0, True, monkeypatch)
        slow = run(doc, 8.0, False, monkeypatch)
    a, b = outcomes(fast), outcomes(slow)
    both = [k for k in a if a[k][0] != "in_flight" and b[k][0] != "in_flight"]
    differ = [k for k in both if a[k] != b[k]]
    assert all(b[k][1] == "node_failed" and a[k][1] in ("queue_full", "timeout") and a[k][2] <= b[k][2]
               for k in differ), [(a[k], b[k]) for k in differ][:5]
    births = {tr.key: tr.birth_s for tr in fast.traces()}
    one_only = [k for k in a if (a[k][0] == "in_flight") != (b[k][0] == "in_flight")]
    assert all(births[k] > 8.0 - 3.0 for k in one_only)
    assert len(one_only) <= 0.02 * len(a) + 20


@pytest.mark.parametrize("seed, rate, fail", [(1, 200.0, None), (2, 500.0, ("db2", 1.0, 1.8)), (3, 500.0, ("db", 0.8, 2.0)),
                                              (4, 60.0, None)])
def test_tables_and_joins_decided_event_by_event_are_the_sweeps_request_by_request(monkeypatch, seed, rate, fail):
    """Partitioning by table (table_routing.py): each request goes to the database that
    holds its table; a join's second query goes to the other database when its first one
    answers, and the blocking worker is held until then. Its journey downstream is drawn
    in advance like any other: the same outcomes, request by request, as the sweeps."""
    doc = tier(seed, rate, webs=2, replicas=2, workers=2, conns=2, db_cap=300.0, web_limit=5, web_timeout=0.5,
               db_limit=3, db_timeout=0.2, deterministic=False, sessions="cookie", etag=False, read_ratio=0.8,
               duration=8, downstream="tables")
    if fail is not None:
        add_event(doc, fail[1], "fail", fail[0])
        add_event(doc, fail[2], "recover", fail[0])
    fast = assert_same(doc, 8.0, monkeypatch)
    t = fast.totals()
    assert t["served_by_table"]["a+b"] > 20



@pytest.mark.parametrize("seed, rate, fail", [(1, 200.0, None), (2, 500.0, ("db", 1.0, 1.8)), (3, 60.0, None)])
def test_cross_shard_queries_decided_event_by_event_are_the_sweeps_request_by_request(monkeypatch, seed, rate, fail):
    """A cross-shard query (sharding.py) goes to every shard: its parts are admitted with
    it, it answers with the slowest and fails at once if one is refused. Its journey
    carries the parts: the same outcomes, request by request, as the sweeps."""
    doc = tier(seed, rate, webs=1, replicas=2, workers=2, conns=2, db_cap=400.0, web_limit=5, web_timeout=0.5,
               db_limit=3, db_timeout=0.2, deterministic=False, sessions="cookie", etag=False, read_ratio=0.8,
               duration=8, downstream="cross")
    if fail is not None:
        add_event(doc, fail[1], "fail", fail[0])
        add_event(doc, fail[2], "recover", fail[0])
    fast = assert_same(doc, 8.0, monkeypatch)
    assert fast.totals()["served"] > 100


@pytest.mark.parametrize("seed, rate", [(1, 200.0), (2, 500.0), (5, 80.0)])
def test_joins_whose_tables_are_sharded_decided_event_by_event_are_the_sweeps_request_by_request(
        monkeypatch, seed, rate):
    """A join across two databases, the first sharded with cross-shard queries: the join's
    second query goes to one database and has no parts of its own. Before 2026-11-30 the
    event window gave it phantom parts at the first database's shards (so a worker was
    "released at another time than predicted" and the run stopped; found by fuzzing)."""
    doc = tier(seed, rate, webs=2, replicas=2, workers=2, conns=2, db_cap=300.0, web_limit=5, web_timeout=0.5,
               db_limit=3, db_timeout=0.2, deterministic=False, sessions="cookie", etag=False, read_ratio=0.6,
               duration=8, downstream="tables")
    doc.set_params("db", {"shards": 3, "read_replicas": 0})
    doc.set_params("users", {"cross_shard_share": 0.3, "join_tables": ["b", "a"]})
    fast = assert_same(doc, 8.0, monkeypatch)
    t = fast.totals()
    joins = sum(v for k, v in t["served_by_table"].items() if "+" in k)
    assert joins > 20 and t["served_by_table"]["a"] > 20


@pytest.mark.parametrize("seed, rate, fail", [(1, 200.0, None), (2, 500.0, ("db", 1.0, 1.8)), (4, 120.0, None)])
def test_several_primaries_decided_event_by_event_are_the_sweeps_request_by_request(monkeypatch, seed, rate, fail):
    """Two primaries and a read replica: each write goes to a primary by its hash and its
    apply jobs start at the read replica when it commits; the other primary gets it after
    the lag, beyond the window (windows are no longer than the lag). The same outcomes,
    request by request, as the sweeps; conflicts and stale reads counted alike."""
    doc = tier(seed, rate, webs=1, replicas=2, workers=2, conns=2, db_cap=400.0, web_limit=5, web_timeout=0.5,
               db_limit=3, db_timeout=0.2, deterministic=False, sessions="cookie", etag=False, read_ratio=0.6,
               duration=8, downstream="multi")
    doc.set_params("users", {"items": 5})   # writes to few items: conflicts between the primaries
    if fail is not None:
        add_event(doc, fail[1], "fail", fail[0], 1)
        add_event(doc, fail[2], "recover", fail[0], 1)
    fast = assert_same(doc, 8.0, monkeypatch)
    assert fast.totals()["served"] > 100 and fast.totals()["write_conflicts"] > 0


def test_an_autoscaled_server_downstream_decided_event_by_event_is_the_sweeps_request_by_request(monkeypatch):
    """Blocking web servers calling an autoscaled API tier: the autoscaler adds and removes
    replicas only between windows (engine.py), so within a window the journeys' routes
    are fixed. The same outcomes, request by request, as the sweeps; the tier does scale."""
    doc = tier(3, 500.0, webs=1, replicas=3, workers=3, conns=3, db_cap=2000.0, web_limit=40, web_timeout=2.0,
               db_limit=50, db_timeout=1.0, deterministic=False, sessions="cookie", etag=False, read_ratio=0.9,
               duration=8, downstream="autoscaled")
    doc.set_params("users", {"pattern": {"type": "steps", "times_s": [6.0], "factors": [0.0]}})
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1")
    sim = Simulation(doc)
    assert sim._ev_depth is not None
    counts = set()
    for k in range(1, 17):
        sim.run_until(k * 0.5)
        counts.add(sim.node_states()["api"].replicas)
    assert len(counts) > 1, counts   # the autoscaler changed the API tier while the window decided it
    fast = assert_same(doc, 8.0, monkeypatch)
    assert fast.totals()["served"] > 1000


def test_nodes_no_request_reaches_change_nothing(monkeypatch):
    """A class drops servers on the canvas and connects them only onward (to the database)
    before wiring them in: one with sync workers, one async, and a least-connections
    balancer in front of the unwired sync one. No request reaches them, so the sync tier in
    use is still decided event by event (not the sweeps, not in one-tick windows), and
    every request ends exactly as in the same file without them."""
    def doc(unwired: bool) -> Document:
        d = web_db(300.0, blocking=True, workers=2, replicas=3, db_connections=2, db_capacity=500.0, duration=4.0)
        if unwired:
            d.add_node(NodeData("later", "server", params={"blocking_calls": True, "replicas": 2}))
            d.add_node(NodeData("spare", "server", params={"sessions": "local"}))
            d.add_node(NodeData("lb_later", "load_balancer", params={"algorithm": "least_connections"}))
            for a, b in (("later", "db"), ("spare", "db"), ("lb_later", "later")):
                d.add_edge(a, b)
        return d

    plain, wired = run(doc(False), 4.0, True, monkeypatch), run(doc(True), 4.0, True, monkeypatch)
    assert wired._ev_depth is not None and not wired._one_tick and not wired.stations.hold[
        wired.net.node_stations[wired.net.node_ids.index("later")]].any()
    assert outcomes(wired) == outcomes(plain) and wired.totals()["served"] > 800
    assert wired.totals()["failed_by_cause"] == plain.totals()["failed_by_cause"]
