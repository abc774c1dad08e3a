"""Blocking servers: the sweeps settle every window (no 1-ns creep up to the sweep cap).

The reproducer of benchmarks/README.md ("Known problem found on the way"): a single-worker
blocking web tier whose waiting room overflows. Its optimistic trial used to take the
single-worker closed form (which trusts the count of requests at the level for the
waiting room) while the real admission checks the waiting room exactly, so the two
trials disagreed for ever and the horizon crept a nanosecond per sweep until the cap
stopped the run with "did not settle". Checked against theory: a saturated closed loop
of one held worker per replica (throughput 1/E[hold], Little's law for the database)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.cli import csv_text
from simulation.engine import Simulation

from test_blocking_calls import web_db

WEB_S = 1 / 40            # web: capacity 40 req/s, one worker: 25 ms of own work (mean)
DB_S = 2 / 60             # database: 60 reads/s over 2 connections: 33.3 ms per read (mean)


def _reproducer(db: dict | None = None, seed: int = 60):
    return web_db(260, blocking=True, workers=1, capacity=40, replicas=2, db_connections=2, db_capacity=60,
                  web={"queue_limit": 30, "timeout_s": 2}, db=db or {"queue_limit": 5, "timeout_s": 0.05}, seed=seed)


def _run(doc, seconds: float, **kw) -> Simulation:
    sim = Simulation(doc, **kw)
    sim.run_until(seconds)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]     # conservation
    assert sim._held_lost == 0                                              # every held worker released
    return sim


def test_a_tiny_database_waiting_room_with_a_short_patience_runs_to_the_end():
    sim = _run(_reproducer(), 8.0)
    t, m = sim.totals(), sim.metrics
    assert sim.now == pytest.approx(8.0)
    assert t["arrived"] > 1900                          # 260 req/s for 8 s
    assert sim._bumps < t["arrived"] / 10                # 96 one-ns steps here (4150, then the cap, before)
    # at most 2 requests (one per web worker) are ever at the database: it never queues, so
    # its 50-ms patience and 5-place waiting room refuse nothing
    assert t["failed_by_cause"]["queue_full"] > 1000     # the web waiting rooms overflow (130 req/s each)
    assert t["failed"] == t["failed_by_cause"]["queue_full"] + t["failed_by_cause"]["timeout"]
    # saturated closed loop: each replica's worker is always held, for its own work and
    # then the database read: 2 / (25 ms + 33.3 ms) = 34.3 answers/s
    hold = WEB_S + DB_S
    assert t["served"] == pytest.approx(8.0 * 2 / hold, rel=0.15)            # 294 vs 274
    web_util, db_util = m.util["web"], m.util["db"]
    assert len(web_util) >= 5 and (web_util[1:] > 0.97).all()
    # Little's law at the database: busy connections = 2 workers x share of their hold there
    assert float(np.mean(db_util[1:])) == pytest.approx(DB_S / hold, rel=0.12)  # 0.589 vs 0.571


def test_the_reproducer_does_not_depend_on_the_window_size_or_the_database_waiting_room():
    base = _run(_reproducer(), 8.0)
    small = _run(_reproducer(), 8.0, max_window_s=0.5)
    assert small.totals() == base.totals() and csv_text(small) == csv_text(base)
    # nothing ever waits at the database: a big waiting room and patience give the same run
    big = _run(_reproducer(db={"queue_limit": 200, "timeout_s": 30}), 8.0)
    assert big.totals() == base.totals()


def test_with_workers_enough_nothing_waits_and_throughput_follows_the_arrivals():
    # 2 x 40 blocking workers: at most ~260 x 58 ms = 15 held at once, nothing queues or gives up
    doc = web_db(260, blocking=True, workers=40, capacity=40 * 40, replicas=2, db_connections=80,
                 db_capacity=2400, web={"queue_limit": 1, "timeout_s": 0.05},
                 db={"queue_limit": 1, "timeout_s": 0.05}, seed=60)
    sim = _run(doc, 8.0)
    t = sim.totals()
    assert t["failed"] == 0
    assert t["mean_ms"] == pytest.approx(1000 * (WEB_S + DB_S), rel=0.05)      # 25 + 33.3 ms, no waiting


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(1, 10_000), rate=st.sampled_from([150.0, 260.0, 400.0]), workers=st.sampled_from([1, 1, 2, 4]),
       replicas=st.integers(1, 3), conns=st.integers(1, 3), db_cap=st.sampled_from([60.0, 150.0]),
       db_limit=st.integers(0, 5), db_timeout=st.sampled_from([0.01, 0.05, 0.1]),
       web_limit=st.sampled_from([0, 1, 5, 30]), web_timeout=st.sampled_from([0.05, 0.5, 2.0]))
def test_small_waiting_rooms_and_short_patience_always_settle(seed, rate, workers, replicas, conns, db_cap,
                                                              db_limit, db_timeout, web_limit, web_timeout):
    doc = web_db(rate, blocking=True, workers=workers, capacity=40.0 * workers, replicas=replicas,
                 db_connections=conns, db_capacity=db_cap, web={"queue_limit": web_limit, "timeout_s": web_timeout},
                 db={"queue_limit": db_limit, "timeout_s": db_timeout}, seed=seed, duration=5)
    sim = _run(doc, 5.0)                                   # raises "did not settle" if the sweeps creep
    t = sim.totals()
    assert t["arrived"] > 0.7 * rate * 5
    # no database answers more than its capacity allows (+ a margin for the random service times)
    assert t["served"] <= db_cap * 5 * 1.3 + 10
