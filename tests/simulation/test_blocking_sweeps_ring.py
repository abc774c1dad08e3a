"""The sweeps (blocking.py) settle a blocking server whose waiting room is beyond the ring.

With more than 4,096 places the room's fullness is estimated from the wait (stations.py):
while a held worker's release is unknown, the pessimistic trial refuses the next waiting
request (an endless wait fills any room) and the optimistic one has it give up (the
earliest release is past its patience). The truth waits for the database to answer the
request that holds the worker; the sweeps used to stop at the give-up ("did not settle in
N sweeps"). Here they must give the event window's results (blocking_window.py), request
by request, on the tier of test_blocking_events.py and variations of it: the arrivals stop
at 3 s, so that by 8 s every request has ended on both paths.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.engine import Simulation

from test_blocking_events import assert_same, tier
from topologies import add_event


def ring_tier(web_limit: int, web_timeout: float, workers: int, db_failure: bool):
    doc = tier(1, 60.0, webs=1, replicas=1, workers=workers, conns=1, db_cap=80.0, web_limit=web_limit,
               web_timeout=web_timeout, db_limit=0, db_timeout=0.02, deterministic=False, sessions="cookie",
               etag=False, read_ratio=1.0, duration=8)
    if db_failure:
        add_event(doc, 1.0, "fail", "db")
        add_event(doc, 1.6, "recover", "db")
    return doc


def test_the_reproducer_runs_to_the_end_in_sweeps(monkeypatch):
    """The reproducer of test_blocking_events.py, sweeps only: every request ends, the
    counts add up, and the web server's patience (50 ms, shorter than a query) is what
    fails requests: the room (10,000 places at 40 requests/s: 250 s of waiting) never fills."""
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "0")
    sim = Simulation(ring_tier(10_000, 0.05, 1, False))
    sim.run_until(8.0)
    t = sim.totals()
    assert sim._ev_windows == 0 and sim._held_lost == 0
    assert t["in_flight"] == 0 and t["arrived"] == t["served"] + t["failed"] > 150
    assert t["failed_by_cause"]["timeout"] > 0 and t["served"] > 0
    assert t["failed_by_cause"]["queue_full"] == 0


@pytest.mark.parametrize("db_failure", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("web_timeout", [0.05, 0.3])
@pytest.mark.parametrize("web_limit", [5_000, 10_000])
def test_sweeps_beyond_the_ring_are_the_event_window_request_by_request(monkeypatch, web_limit, web_timeout,
                                                                       workers, db_failure):
    fast = assert_same(ring_tier(web_limit, web_timeout, workers, db_failure), 8.0, monkeypatch)
    t = fast.totals()
    assert t["arrived"] == t["served"] + t["failed"] > 150
    if web_timeout == 0.05:   # the case the sweeps could not settle: requests give up at the web server
        gave_up_at_web = [tr for tr in fast.traces() if tr.cause == "timeout" and tr.hops and tr.hops[-1].node == "web0"]
        assert gave_up_at_web
    if db_failure:   # requests held downstream are lost with the database
        assert t["failed_by_cause"]["backend_down"] + t["failed_by_cause"]["node_failed"] > 0


@pytest.mark.parametrize("events", [True, False])
def test_two_primaries_behind_a_big_room_run_to_the_end_on_both_paths(monkeypatch, events):
    """A database with two primaries downstream (the event window decides it, the sweeps
    with SCALELAB_BLOCKING_EVENTS=0): the same big room and short patience settle, every
    request ends, and the counts add up."""
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1" if events else "0")
    doc = ring_tier(10_000, 0.05, 2, True)
    doc.set_params("db", {"primaries": 2})
    sim = Simulation(doc)
    sim.run_until(8.0)
    t = sim.totals()
    assert (sim._ev_windows > 0) == events and sim._held_lost == 0
    assert t["in_flight"] == 0 and t["arrived"] == t["served"] + t["failed"] > 150
    assert t["failed_by_cause"]["timeout"] > 0 and t["served"] > 0


def test_more_requests_waiting_than_a_sweep_looks_at_while_the_first_gives_up(monkeypatch):
    """A sweep looks at six waiting requests per station (blocking.PER_STATION); the next
    one's start was bounded by the last start among those six, and when the first of them
    gives up (the optimistic trial) none starts: the horizon stayed at the seventh's
    arrival, before the release that decides the first. Here a 2-s patience and a database
    failure leave dozens waiting at the web server behind requests that give up."""
    doc = tier(6140, 60.0, webs=1, replicas=1, workers=1, conns=4, db_cap=80.0, web_limit=4097, web_timeout=2.0,
               db_limit=50, db_timeout=0.02, deterministic=False, sessions="database", etag=True, read_ratio=0.7,
               duration=8)
    add_event(doc, 1.0, "fail", "db")
    add_event(doc, 1.6, "recover", "db")
    fast = assert_same(doc, 8.0, monkeypatch)
    web = [h for tr in fast.traces() for h in tr.hops if h.node == "web0"]
    gave_up = [h for h in web if h.cause == "timeout" and h.start_s is None]
    assert gave_up
    behind = max(sum(1 for o in web if g.arrived_s < o.arrived_s < g.end_s) for g in gave_up)
    assert behind > 6


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), rate=st.sampled_from([60.0, 200.0]), webs=st.integers(1, 2),
       replicas=st.integers(1, 3), workers=st.integers(1, 3), conns=st.integers(1, 4),
       db_cap=st.sampled_from([80.0, 300.0, 2000.0]), web_limit=st.sampled_from([4097, 5000, 10_000]),
       web_timeout=st.sampled_from([0.05, 0.3, 2.0]), db_limit=st.sampled_from([0, 2, 50]),
       db_timeout=st.sampled_from([0.02, 0.2, 1.0]), deterministic=st.booleans(),
       sessions=st.sampled_from(["cookie", "local", "database"]), etag=st.booleans(),
       downstream=st.sampled_from(["db", "two_dbs", "api", "cache"]),
       failures=st.sampled_from([(), (("db", 1.0, 1.6),), (("web0", 0.7, 2.2),)]))
def test_random_tiers_beyond_the_ring_are_the_event_window(monkeypatch, seed, rate, webs, replicas, workers, conns,
                                                          db_cap, web_limit, web_timeout, db_limit, db_timeout,
                                                          deterministic, sessions, etag, downstream, failures):
    """test_blocking_events.py's random tiers, with the web servers' rooms beyond the ring."""
    doc = tier(seed, rate, webs=webs, replicas=replicas, workers=workers, conns=conns, db_cap=db_cap,
               web_limit=web_limit, web_timeout=web_timeout, db_limit=db_limit, db_timeout=db_timeout,
               deterministic=deterministic, sessions=sessions, etag=etag, read_ratio=0.7, duration=8,
               downstream=downstream)
    for node, down, up in failures:
        add_event(doc, down, "fail", node, 0 if node.startswith("web") else None)
        add_event(doc, up, "recover", node, 0 if node.startswith("web") else None)
    assert_same(doc, 8.0, monkeypatch)
