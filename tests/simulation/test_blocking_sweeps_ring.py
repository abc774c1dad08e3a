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


def test_a_shape_only_the_sweeps_take_runs_to_the_end(monkeypatch):
    """A replicated database downstream (never decided event by event): the same big room
    and short patience settle, every request ends, and the counts add up."""
    monkeypatch.setenv("SCALELAB_BLOCKING_EVENTS", "1")
    doc = ring_tier(10_000, 0.05, 2, True)
    doc.set_params("db", {"read_replicas": 1})
    sim = Simulation(doc)
    sim.run_until(8.0)
    t = sim.totals()
    assert sim._ev_depth is None and sim._ev_windows == 0 and sim._held_lost == 0
    assert t["in_flight"] == 0 and t["arrived"] == t["served"] + t["failed"] > 150
    assert t["failed_by_cause"]["timeout"] > 0 and t["served"] > 0
