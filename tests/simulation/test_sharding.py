"""Sharding: hot shards, a dead shard's loss, cross-shard joins and resharding,
each against an independent calculation (Zipf pmf, ownership counts, Monte-Carlo)."""
from __future__ import annotations

import numpy as np
import pytest

from simulation import analysis
from simulation.caching import zipf_cdf
from simulation.cli import csv_text
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.sharding import keys_moved, owner, shares

from test_trust import assert_same_however_sliced

BIG = {"queue_limit": 1_000_000, "timeout_s": 3600}


def sharded(rate: float, shards: int = 4, zipf: float = 1.0, cross: float = 0.0, scheme: str = "hash",
            key: str = "item", items: int = 1000, capacity: float = 1000.0, seed: int = 1) -> Document:
    """Client → a near-instant server → a database of ``shards`` single-connection shards."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000, "items": items,
                                                   "zipf_s": zipf, "cross_shard_share": cross}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 1_000_000, "workers": 1, **BIG}))
    d.add_node(NodeData("db", "database", params={
        "read_capacity_rps": capacity, "write_capacity_rps": capacity, "connections": 1, **BIG,
        "shards": shards, "shard_scheme": scheme, "shard_key": key}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=seed)
    return d


def zipf_pmf(items: int, s: float) -> np.ndarray:
    return np.diff(np.r_[0.0, zipf_cdf(items, s)])


def shard_utils(sim: Simulation, n: int) -> np.ndarray:
    return np.array([np.mean(sim.metrics.util[f"db#{s}"]) for s in range(n)])


def test_zipf_items_make_a_hot_shard_and_uniform_items_do_not():
    items = 1000
    sim = Simulation(sharded(400, zipf=1.0))
    sim.advance(120)
    measured = shard_utils(sim, 4)
    # independent: each item's popularity (Zipf pmf), summed over the items each shard owns
    own = owner("hash", 4, np.arange(items), items)
    expected = np.bincount(own, weights=zipf_pmf(items, 1.0), minlength=4)
    assert np.abs(measured / measured.sum() - expected).max() < 0.02
    assert expected.max() > 0.3    # the shard holding item 0 (13 % of all requests alone) is hot
    # and its utilization: 400 req/s × its share × 1 ms
    assert measured.max() == pytest.approx(400 * expected.max() / 1000, rel=0.06)

    flat = Simulation(sharded(400, zipf=0.0))
    flat.advance(120)
    m = shard_utils(flat, 4)
    counts = np.bincount(own, minlength=4) / items
    assert np.abs(m / m.sum() - counts).max() < 0.02
    assert np.abs(m / m.sum() - 0.25).max() < 0.04


def test_range_sharding_under_zipf_saturates_one_shard_while_the_others_idle():
    sim = Simulation(sharded(1500, zipf=1.0, scheme="range"))
    sim.advance(30)
    u = shard_utils(sim, 4)
    top = zipf_cdf(1000, 1.0)[249]           # items 0..249 are shard 0's: ~81 % of the requests
    assert top > 0.75
    assert u[0] > 0.95                       # 1500 × 0.81 = 1200 req/s > its 1000 req/s
    assert u[1:].max() < 1500 * (1 - top) / 1000 + 0.05
    text = csv_text(sim)
    assert "util:db#0" in text.splitlines()[0] and "util:db#3" in text.splitlines()[0]


@pytest.mark.parametrize("cross", [0.0, 0.3])
def test_a_dead_shard_loses_exactly_the_requests_whose_keys_it_owns(cross):
    items = 1000
    doc = sharded(300, zipf=1.0, cross=cross)
    sim = Simulation(doc)
    sim.fail("db", 1)
    sim.advance(120)
    t = sim.totals()
    lost = t["failed_by_cause"]["backend_down"] / t["arrived"]
    own = owner("hash", 4, np.arange(items), items)
    share = zipf_pmf(items, 1.0)[own == 1].sum()
    expected = cross + (1 - cross) * share   # a cross-shard query needs every shard
    assert lost == pytest.approx(expected, abs=0.02)
    assert t["failed"] == t["failed_by_cause"]["backend_down"]
    # check's figure for the dead shard (analysis.py) is the same share
    assert analysis.shard_share(doc, "db", 1) == pytest.approx(expected, abs=1e-9)


def _mean_max_lindley(lam: float, mu: float, shards: int, n: int, rng: np.random.Generator) -> float:
    """Monte-Carlo: FIFO single-server queues fed by the same Poisson arrivals, independent
    exponential services; the mean over arrivals of the slowest queue's response time."""
    gaps = rng.exponential(1 / lam, n)
    service = rng.exponential(1 / mu, (n, shards))
    wait = np.zeros(shards)
    out = np.empty(n)
    for i in range(n):
        if i:
            wait = np.maximum(wait + service[i - 1] - gaps[i], 0.0)
        out[i] = (wait + service[i]).max()
    return float(out[n // 10:].mean())


def test_cross_shard_latency_is_the_slowest_shards():
    lam, mu = 500.0, 1000.0
    single = Simulation(sharded(lam, zipf=0.0, cross=0.0))
    single.advance(120)
    cross = Simulation(sharded(lam, zipf=0.0, cross=1.0))
    cross.advance(120)
    ts, tc = single.totals(), cross.totals()
    assert tc["failed"] == 0 and ts["failed"] == 0
    mc = _mean_max_lindley(lam, mu, 4, 60_000, np.random.default_rng(7)) * 1000
    assert tc["mean_ms"] == pytest.approx(mc, rel=0.10)
    # single-shard: M/M/1 at ~lam/4 per shard, 1 / (mu - lam/4) = 1.14 ms; the join waits far longer
    assert ts["mean_ms"] == pytest.approx(1000 / (mu - lam / 4), rel=0.10)
    assert tc["mean_ms"] > 2.5 * ts["mean_ms"]
    # every shard executes every cross-shard query: each is at ~lam / mu busy
    assert shard_utils(cross, 4) == pytest.approx(np.full(4, lam / mu), rel=0.06)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_keys_moved_when_resharding_hash_versus_consistent_hash(n):
    keys = 200_000
    assert keys_moved("hash", n, n + 1, keys) == pytest.approx(n / (n + 1), abs=0.01)
    assert keys_moved("consistent_hash", n, n + 1, keys) == pytest.approx(1 / (n + 1), abs=0.05)
    # with a ring, the keys that move all move to the new shard
    k = np.arange(keys)
    before, after = owner("consistent_hash", n, k, keys), owner("consistent_hash", n + 1, k, keys)
    assert (after[before != after] == n).all()
    assert keys_moved("range", n, n, keys) == 0.0
    assert shares("hash", n, keys) == pytest.approx(np.full(n, 1 / n), abs=0.01)


@pytest.mark.parametrize("replicas", [0, 2])
def test_sharded_runs_are_the_same_however_sliced(replicas):
    d = sharded(600, zipf=1.0, cross=0.2, scheme="consistent_hash", key="user")
    d.set_params("db", {"read_replicas": replicas})
    assert_same_however_sliced(d, 12.0)


def test_one_shard_is_the_plain_database():
    plain = sharded(300, shards=1)
    for k in ("shards", "shard_scheme", "shard_key"):
        plain.node("db").params.pop(k, None)
    a, b = Simulation(plain), Simulation(sharded(300, shards=1, scheme="range", key="user"))
    a.advance(30)
    b.advance(30)
    assert a.net.shards == [] and b.net.shards == []
    assert a.totals() == b.totals()
    assert "#0" not in csv_text(a).splitlines()[0]


def test_each_shard_is_a_primary_with_its_own_read_replicas_and_fails_over_alone():
    d = sharded(300, shards=2, zipf=0.0)
    d.set_params("db", {"read_replicas": 1, "failover_s": 2.0})
    sim = Simulation(d)
    first = int(sim.net.node_stations[sim.net.node_ids.index("db")][0])
    assert list(sim.net.st_replica[first:first + 4]) == [0, 1, 2, 3]    # shard s: replicas 2s (primary), 2s + 1
    assert list(sim.primary[first:first + 4]) == [first, first, first + 2, first + 2]
    sim.fail("db", 2)                       # shard 1's primary
    sim.advance(60)
    assert list(sim.primary[first:first + 4]) == [first, first, first + 3, first + 3]   # promoted within shard 1
    t = sim.totals()
    share1 = np.mean(owner("hash", 2, np.arange(1000), 1000) == 1)
    assert 0 < t["failed"] / t["arrived"] < share1 * 10 / 60         # only shard 1's keys, only until failover
    failed, times = np.asarray(sim.metrics.failed_rps), np.asarray(sim.metrics.time_s)
    assert failed[times > 10].sum() == 0
    assert t["stale_reads"] > 0                                      # each shard replicates its own writes
    # shard 0 (both copies up): its reads (90 %) spread over 2 copies, its writes done by both, 1 ms each
    share0 = 1 - share1
    assert np.mean(sim.metrics.util["db#0"]) == pytest.approx(share0 * 300 * (0.9 + 2 * 0.1) / 1000 / 2, rel=0.08)
    # shard 1 after its failover: one copy up does all its queries
    later = np.asarray(sim.metrics.util["db#1"])[times > 10]
    assert np.mean(later) == pytest.approx(share1 * 300 / 1000, rel=0.08)


def test_changing_shards_during_a_run_reports_the_keys_that_move():
    d = sharded(300, shards=4, scheme="consistent_hash")
    sim = Simulation(d)
    sim.advance(10)
    d.set_params("db", {"shards": 5})      # the same document object, edited in place (as the designer does)
    sim.update_document(d)
    old, new, share = sim.resharded["db"]
    assert (old, new) == (4, 5)
    k = np.arange(1000)
    independent = np.mean(owner("consistent_hash", 4, k, 1000) != owner("consistent_hash", 5, k, 1000))
    assert share == pytest.approx(independent) and share == pytest.approx(1 / 5, abs=0.07)
    sim.advance(10)
    assert "util:db#4" in csv_text(sim).splitlines()[0]
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    d.set_params("db", {"connections": 2})
    sim.update_document(d)
    assert sim.resharded == {}


def test_check_names_the_dead_shards_share_and_the_keys_one_more_shard_would_move(tmp_path, capsys):
    from simulation.cli import main
    from simulation.fileformat import dumps
    path = tmp_path / "sharded.scalelab"
    path.write_text(dumps(sharded(300, cross=0.1)))
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    share = analysis.shard_share(sharded(300, cross=0.1), "db", 0)   # shard 0 holds item 0
    assert f"db — partial: {share:.0%} of requests fail while one of its 4 shards is down" in out
    moved = keys_moved("hash", 4, 5, 1000)
    assert f"a shard more would move {moved:.0%} of the keys" in out and 0.7 < moved < 0.9


def test_removing_shards_mid_run_keeps_every_request_accounted_for():
    d = sharded(1500, shards=4, cross=0.5, capacity=500)   # overloaded: requests wait at every shard
    sim = Simulation(d)
    sim.advance(5)
    assert sim.resharded == {}
    d.set_params("db", {"shards": 2})
    sim.update_document(d)
    assert sim.resharded["db"][:2] == (4, 2)
    sim.advance(5)
    t = sim.totals()
    assert t["failed_by_cause"]["node_failed"] > 0
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]


def test_a_scheduled_event_fails_one_shard_and_the_file_keeps_it():
    from simulation.document import ScheduledEvent
    from simulation.fileformat import dumps, loads
    d = sharded(300, zipf=0.0)
    d.insert_event(0, ScheduledEvent(10.0, "fail", "db", 3))
    d.insert_event(1, ScheduledEvent(40.0, "recover", "db", 3))
    sim = Simulation(loads(dumps(d)))
    sim.advance(20)
    assert sim.node_states()["db"].failed_replicas == (3,)
    sim.advance(40)
    t = sim.totals()
    own = owner("hash", 4, np.arange(1000), 1000)
    # shard 3 was down 30 s of 60, and owns its share of the (uniformly popular) items
    assert t["failed_by_cause"]["backend_down"] / t["arrived"] == pytest.approx(np.mean(own == 3) * 30 / 60, abs=0.02)
    bad = sharded(300)
    bad.insert_event(0, ScheduledEvent(10.0, "fail", "db", 4))
    with pytest.raises(ValueError, match="replica"):
        loads(dumps(bad))


def test_check_with_replicated_shards_counts_only_the_dead_primarys_writes(tmp_path, capsys):
    from simulation.cli import main
    from simulation.fileformat import dumps
    d = sharded(300)
    d.set_params("db", {"read_replicas": 1})
    path = tmp_path / "sharded.scalelab"
    path.write_text(dumps(d))
    assert main(["check", str(path), "--empirical", "20"]) == 0
    out = capsys.readouterr().out
    writes = analysis.shard_share(d, "db", 0) * (1 - 0.9)     # shard 0's writes: its primary is the only writer
    assert f"{writes:.0%} of requests (writes) fail while the primary of one of its 4 shards is down" in out
    measured = float(out.split("db (primary of shard 0)")[1].split("%")[0])
    assert measured / 100 == pytest.approx(writes, abs=0.01)
