"""Single-primary replication: reads spread, every copy applies every write, stale
reads by item, the proxy's monitor, failover, and no hang when every copy is down."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.caching import zipf_cdf
from simulation.document import Document, NodeData
from simulation.engine import Simulation

from topologies import add_event
from wallclock import within


def replicated(read_replicas: int, lag_ms: float, read_ratio: float = 0.8, users: int = 200,
               rate: float = 600, seed: int = 2, items: int = 10_000, zipf_s: float = 1.0, **db) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users, "read_ratio": read_ratio,
                                                   "items": items, "zipf_s": zipf_s}))
    d.add_node(NodeData("app", "server", params={"capacity_rps": 5000, "workers": 64, "replicas": 2}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 1000, "write_capacity_rps": 1000,
                                                  "connections": 10, "read_replicas": read_replicas,
                                                  "replication_lag_ms": lag_ms, **db}))
    d.add_edge("users", "app")
    d.add_edge("app", "db")
    d.set_settings(seed=seed)
    return d


def test_reads_are_spread_and_every_copy_applies_every_write():
    sim = Simulation(replicated(2, 50))
    sim.advance(30)
    t = sim.totals()
    assert t["failed"] == 0 and t["arrived"] == t["served"] + t["in_flight"]
    assert sim.node_states()["db"].replicas == 3
    # each copy: 160 reads/s + 120 writes/s (the primary commits them, the replicas
    # apply them), 10 ms of one of 10 connections each: (160 + 120) × 0.01 / 10 = 0.28
    assert np.mean(sim.metrics.util["db"][3:]) == pytest.approx(0.28, rel=0.1)
    assert np.mean(sim.metrics.util_max["db"][3:]) == pytest.approx(0.28, rel=0.15)


def test_under_an_all_write_load_every_replica_is_as_busy_as_the_primary():
    # 400 writes/s at 600 writes/s of capacity: 2/3 busy, on the primary and on both replicas
    sim = Simulation(replicated(2, 50, read_ratio=0.0, rate=400, write_capacity_rps=600))
    sim.advance(30)
    assert np.mean(sim.metrics.util["db"][3:]) == pytest.approx(2 / 3, rel=0.08)
    # applying writes is internal work: never counted as requests
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    assert t["served"] == pytest.approx(400 * 30, rel=0.05)


def _stale_share(write_rate: float, lag_s: float, items: int, zipf_s: float) -> float:
    """P(a read finds its item written within the lag) for Poisson writes, Zipf items."""
    p = np.diff(np.r_[0.0, zipf_cdf(items, zipf_s)])
    return float(np.sum(p * -np.expm1(-write_rate * p * lag_s)))


@pytest.mark.parametrize("items,zipf_s,lag_ms", [(1, 1.0, 1000), (1_000_000, 0.0, 1000), (200, 1.0, 500),
                                                 (50, 0.0, 200)])
def test_a_read_at_a_replica_is_stale_when_its_item_was_written_within_the_lag(items, zipf_s, lag_ms):
    rate, reads_share = 200, 0.8
    sim = Simulation(replicated(2, lag_ms, read_ratio=reads_share, rate=rate, items=items, zipf_s=zipf_s))
    sim.advance(40)
    t = sim.totals()
    replica_reads = t["arrived"] * reads_share * 2 / 3        # 2 of the 3 copies are replicas
    expected = replica_reads * _stale_share(rate * (1 - reads_share), lag_ms / 1000, items, zipf_s)
    if expected < 20:
        assert t["stale_reads"] <= 20
    else:
        assert t["stale_reads"] == pytest.approx(expected, rel=0.08)


def test_one_hot_item_makes_nearly_every_replica_read_stale_and_many_items_almost_none():
    hot = Simulation(replicated(2, 1000, read_ratio=0.8, rate=200, items=1))
    hot.advance(30)
    spread = Simulation(replicated(2, 1000, read_ratio=0.8, rate=200, items=1_000_000, zipf_s=0.0))
    spread.advance(30)
    replica_reads = hot.totals()["arrived"] * 0.8 * 2 / 3
    # 40 writes/s of one item, 1 s lag: stale unless no write in the last second (e^-40)
    assert hot.totals()["stale_reads"] == pytest.approx(replica_reads, rel=0.05)
    assert spread.totals()["stale_reads"] <= 5
    assert Simulation(replicated(2, 0, items=1)).totals()["stale_reads"] == 0
    no_replicas = Simulation(replicated(0, 2000, items=1))
    no_replicas.advance(10)
    assert no_replicas.totals()["stale_reads"] == 0


def test_when_the_primary_dies_writes_fail_and_the_proxy_stops_sending_it_reads():
    d = replicated(2, 50)                      # monitor: every 1.5 s, 3 misses
    add_event(d, 10, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(30)
    m = sim.metrics
    down, nowhere = m.failed_by_cause["backend_down"], m.failed_by_cause["no_healthy_backend"]
    # before the proxy notices (at most 3 × 1.5 s): writes and a third of the reads fail
    assert down[11:13].mean() == pytest.approx(600 * (0.2 + 0.8 / 3), rel=0.12)
    # after it: the reads go to the two replicas; only the writes fail (no writer known)
    assert down[16:].sum() == 0
    assert nowhere[16:].mean() == pytest.approx(600 * 0.2, rel=0.12)
    assert m.served_rps[16:].mean() == pytest.approx(600 * 0.8, rel=0.08)
    # the proxy gives up on the primary after (misses − 1) to misses intervals: 3 to 4.5 s
    first_nowhere = int(np.argmax(nowhere > 0))           # row k covers second [k, k + 1)
    assert 10 + 3.0 - 1 <= first_nowhere <= 10 + 4.5


def test_after_failover_nothing_fails_any_more():
    d = replicated(2, 50, failover_s=5)
    add_event(d, 10, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(40)
    failed = sum(v for v in sim.metrics.failed_by_cause.values())
    assert failed[11:14].mean() > 600 * 0.2          # writes and reads at the dead primary fail
    assert failed[16:].sum() == 0                      # promoted at 15 s; the dead one is out of rotation
    from simulation.analysis import structural_spof
    assert "db" not in structural_spof(d)


def test_every_copy_down_past_the_failover_delay_does_not_hang():
    d = replicated(2, 50, failover_s=2)
    add_event(d, 5, "fail", "db")                     # the whole node: no copy can be promoted
    add_event(d, 20, "recover", "db", replica=1)
    with within(60):
        sim = Simulation(d)
        sim.advance(40)
    assert sim.now == pytest.approx(40)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    served = sim.metrics.served_rps
    assert served[8:19].sum() == 0                    # nothing to read from, nothing to write to
    # replica 1 comes back at 20 s: it is promoted at once (down for more than failover_s)
    # and, once the proxy has seen it answer, serves everything again
    assert served[23:].mean() == pytest.approx(600, rel=0.1)


def test_failing_the_database_of_the_lesson_mid_run_does_not_hang():
    from simulation.fileformat import load
    from pathlib import Path
    doc = load(Path(__file__).parents[2] / "resources" / "lessons" / "database_scaling.scalelab")
    with within(60):
        sim = Simulation(doc)
        sim.advance(20)
        sim.fail("db")                                 # right-click → Fail on the whole database
        sim.advance(60)
        sim.recover("db")
        sim.advance(20)
    assert sim.now == pytest.approx(100)


def test_a_promoted_primary_stays_promoted_through_a_live_edit():
    d = replicated(2, 50, failover_s=2)
    add_event(d, 5, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(12)
    d.set_params("users", {"rate_rps": 500})     # an unrelated edit during the run
    sim.update_document(d)
    sim.advance(3)
    failed = sum(v for v in sim.metrics.failed_by_cause.values())
    # writes still reach the promoted primary (no second failover delay) and the dead
    # old primary is still out of the proxy's rotation
    assert failed[-3:].sum() == 0


def test_the_database_lesson_stops_failing_once_the_replica_is_promoted():
    from pathlib import Path
    from simulation.fileformat import load
    sim = Simulation(load(Path(__file__).parents[2] / "resources" / "lessons" / "database_scaling.scalelab"))
    sim.advance(120)
    failed = sim.metrics.failed_rps
    assert failed[:40].sum() == 0 and failed[40:45].min() > 0      # the primary dies at 40 s
    assert failed[51:].sum() == 0                                   # promoted at 50 s: nothing fails after


def test_the_busiest_replica_is_not_hidden_by_idle_ones():
    # consistent hashing with a single user: one of three replicas takes everything
    from topologies import balanced
    d = balanced(60, 1, 100, "consistent_hash", users=1)
    d.set_params("web1", {"replicas": 3})
    sim = Simulation(d)
    sim.advance(30)
    util, busiest = sim.metrics.util["web1"][5:].mean(), sim.metrics.util_max["web1"][5:].mean()
    assert busiest == pytest.approx(0.6, rel=0.1)                  # λ/μ = 60/100 on the one replica
    assert util == pytest.approx(0.6 / 3, rel=0.1)                  # the mean over three
    state = sim.node_states()["web1"]
    assert state.utilization_max > 2 * state.utilization
    from simulation.cli import csv_text
    header = csv_text(sim).splitlines()[0].split(",")
    assert "util_max:web1" in header and "util:web1" in header and "util_max:users" not in header
