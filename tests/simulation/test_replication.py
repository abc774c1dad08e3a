"""Single-primary replication: reads spread, writes to the primary, stale reads."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.document import Document, NodeData
from simulation.engine import Simulation

from topologies import add_event


def replicated(read_replicas: int, lag_ms: float, read_ratio: float = 0.8, users: int = 200,
               rate: float = 600, seed: int = 2) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users, "read_ratio": read_ratio}))
    d.add_node(NodeData("app", "server", params={"capacity_rps": 5000, "workers": 64, "replicas": 2}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 1000, "write_capacity_rps": 1000,
                                                  "connections": 10, "read_replicas": read_replicas,
                                                  "replication_lag_ms": lag_ms}))
    d.add_edge("users", "app")
    d.add_edge("app", "db")
    d.set_settings(seed=seed)
    return d


def test_reads_are_spread_and_writes_go_to_the_primary():
    sim = Simulation(replicated(2, 50))
    sim.advance(30)
    t = sim.totals()
    assert t["failed"] == 0
    # 3 copies share the reads (480/s); the primary also takes every write (120/s)
    states = sim.node_states()["db"]
    assert states.replicas == 3
    # utilisation of the node: (480 + 120) / (3 × 1000) = 0.2
    assert np.mean(sim.metrics.util["db"][3:]) == pytest.approx(0.2, rel=0.15)


def test_a_user_reading_soon_after_their_own_write_gets_stale_data():
    lagged = Simulation(replicated(2, 2000, users=50))
    lagged.advance(30)
    synced = Simulation(replicated(2, 0, users=50))
    synced.advance(30)
    no_replicas = Simulation(replicated(0, 2000, users=50))
    no_replicas.advance(30)
    stale = lagged.totals()["stale_reads"]
    # each user writes 0.2 × 600 / 50 = 2.4/s (Poisson): a read on a replica is stale when
    # the user's last write is less than 2 s old, probability 1 − exp(−2.4 × 2);
    # 2 of 3 reads land on a replica
    reads = lagged.totals()["arrived"] * 0.8
    assert stale / reads == pytest.approx(2 / 3 * (1 - np.exp(-2.4 * 2.0)), rel=0.05)
    # a short lag: stale with probability 1 − exp(−2.4 × 0.1)
    short = Simulation(replicated(2, 100, users=50))
    short.advance(30)
    assert short.totals()["stale_reads"] / reads == pytest.approx(2 / 3 * (1 - np.exp(-0.24)), rel=0.12)
    assert synced.totals()["stale_reads"] == 0
    assert no_replicas.totals()["stale_reads"] == 0
    assert lagged.metrics.stale_reads.sum() == stale


def test_when_the_primary_dies_writes_fail_and_reads_go_on():
    d = replicated(2, 50)
    add_event(d, 10, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(20)
    m = sim.metrics
    failed = m.failed_by_cause["backend_down"][12:].mean()
    served = m.served_rps[12:].mean()
    # writes (20 %) and the third of the reads sent to the primary fail; the rest is served
    assert failed == pytest.approx(600 * (0.2 + 0.8 / 3), rel=0.15)
    assert served == pytest.approx(600 * 0.8 * 2 / 3, rel=0.15)


def test_failover_promotes_a_replica_and_writes_resume():
    d = replicated(2, 50)
    d.set_params("db", {"failover_s": 5})
    add_event(d, 10, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(30)
    down = sim.metrics.failed_by_cause["backend_down"]
    # seconds 11-15: writes (20 %) and the primary's third of the reads fail
    assert down[11:14].mean() == pytest.approx(600 * (0.2 + 0.8 / 3), rel=0.15)
    # after the promotion only the dead node's share of reads fails
    assert down[17:].mean() == pytest.approx(600 * 0.8 / 3, rel=0.15)
    from simulation.analysis import DEAD_REPLICA_GETS_READS, structural_spof
    spof = structural_spof(d).get("db")   # the writes are taken over; the dead primary's reads are not
    assert (spof.share if spof else 0.0) == pytest.approx(0.8 / 3 if DEAD_REPLICA_GETS_READS else 0.0)


def test_a_promoted_primary_stays_promoted_through_a_live_edit():
    d = replicated(2, 50)
    d.set_params("db", {"failover_s": 2})
    add_event(d, 5, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(12)
    d.set_params("users", {"rate_rps": 500})     # an unrelated edit during the run
    sim.update_document(d)
    sim.advance(2)
    down = sim.metrics.failed_by_cause["backend_down"]
    # right after the edit, only the dead machine's third of the reads fails: the writes
    # still reach the promoted primary (no second failover delay)
    assert down[-2:].mean() == pytest.approx(500 * 0.8 / 3, rel=0.2)
