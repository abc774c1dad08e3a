"""Multi-primary replication: write conflicts, id collisions, no single point of
failure, checked against closed forms and tiny independent Monte-Carlo models."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.analysis import structural_spof
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.multi_primary import IdCounters, earlier_conflicts

from test_trust import assert_same_however_sliced
from topologies import add_event


def multi(primaries: int, lag_ms: float, rate: float = 400, read_ratio: float = 0.5, items: int = 20,
          zipf_s: float = 0.0, insert_share: float = 0.0, seed: int = 3, **db) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 200, "read_ratio": read_ratio,
                                                   "items": items, "zipf_s": zipf_s,
                                                   "insert_share": insert_share}))
    d.add_node(NodeData("app", "server", params={"capacity_rps": 5000, "workers": 64, "replicas": 2}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 2000, "write_capacity_rps": 2000,
                                                  "connections": 10, "primaries": primaries,
                                                  "replication_lag_ms": lag_ms, **db}))
    d.add_edge("users", "app")
    d.add_edge("app", "db")
    d.set_settings(seed=seed)
    return d


def run(doc: Document, seconds: float) -> dict:
    sim = Simulation(doc)
    sim.advance(seconds)
    return sim.totals()


def zipf_pmf(items: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, items + 1) ** s
    return w / w.sum()


def expected_conflicts(write_rate: float, pmf: np.ndarray, primaries: int, lag_s: float, seconds: float) -> float:
    """Poisson writes at wᵢ = w·pᵢ per item, spread evenly over P primaries: a write
    finds wᵢ (1 − 1/P) lag earlier writes of its item on other primaries within the lag."""
    w = write_rate * pmf
    return float(np.sum(w ** 2) * (1 - 1 / primaries) * lag_s * seconds)


def test_no_conflicts_with_one_primary_or_no_lag():
    assert run(multi(1, 200, items=1), 10)["write_conflicts"] == 0
    assert run(multi(2, 0, items=1), 10)["write_conflicts"] == 0
    t = run(multi(2, 200, items=1, read_replicas=1), 10)
    assert t["write_conflicts"] > 0 and t["id_collisions"] == 0   # no inserts: no ids


@pytest.mark.parametrize("primaries,lag_ms,items,zipf_s", [(2, 100, 20, 0.0), (3, 100, 20, 0.0),
                                                           (2, 50, 200, 1.0), (4, 20, 5, 0.0)])
def test_conflicts_follow_the_closed_form(primaries, lag_ms, items, zipf_s):
    rate, seconds = 400, 30
    t = run(multi(primaries, lag_ms, rate=rate, items=items, zipf_s=zipf_s), seconds)
    writes = t["served"] * 0.5 / seconds       # the write rate that really arrived
    expected = expected_conflicts(writes, zipf_pmf(items, zipf_s), primaries, lag_ms / 1000, seconds)
    assert expected > 300
    assert t["write_conflicts"] == pytest.approx(expected, rel=0.1)


def test_conflicts_grow_with_the_lag_the_write_rate_and_the_skew():
    base = run(multi(2, 50, rate=200, items=200, zipf_s=0.5), 20)["write_conflicts"]
    assert run(multi(2, 150, rate=200, items=200, zipf_s=0.5), 20)["write_conflicts"] > 2 * base
    assert run(multi(2, 50, rate=400, items=200, zipf_s=0.5), 20)["write_conflicts"] > 2.5 * base
    assert run(multi(2, 50, rate=200, items=200, zipf_s=1.5), 20)["write_conflicts"] > 3 * base
    assert base > 10


def test_conflict_pairs_match_a_brute_force_count():
    rng = np.random.default_rng(5)
    n = 400
    item, st, fin = rng.integers(0, 6, n), rng.integers(10, 13, n), np.sort(rng.uniform(0, 5, n))
    lag = np.full(n, 0.08)
    got = earlier_conflicts(item, st, fin, lag)
    brute = [sum(1 for k in range(n) if item[k] == item[j] and st[k] != st[j] and fin[j] - 0.08 < fin[k] < fin[j])
             for j in range(n)]
    assert got.tolist() == brute and sum(brute) > 50


def _brute_ids(times: np.ndarray, prim: np.ndarray, lag: float) -> int:
    """Independent model: an insert's id is 1 + the largest id among the inserts its
    primary knows of (its own earlier ones, the others' at least ``lag`` old); it
    collides when an earlier insert on another primary took the same id."""
    ids: list[int] = []
    hits = 0
    for j, (t, p) in enumerate(zip(times, prim)):
        known = [ids[k] for k in range(j) if (prim[k] == p) or times[k] <= t - lag]
        v = 1 + max(known, default=0)
        hits += any(ids[k] == v and prim[k] != p for k in range(j))
        ids.append(v)
    return hits


@pytest.mark.parametrize("primaries,rate,lag", [(2, 50.0, 0.002), (3, 50.0, 0.002), (2, 40.0, 0.05)])
def test_id_collisions_match_an_independent_model_and_the_small_lag_limit(primaries, rate, lag):
    rng = np.random.default_rng(7)
    n = 2000
    times = np.cumsum(rng.exponential(1 / rate, n))
    prim = rng.integers(0, primaries, n)
    got = len(IdCounters(primaries, lag, offsets=False).allocate(times, prim))
    assert got == _brute_ids(times, prim, lag)
    assert len(IdCounters(primaries, lag, offsets=True).allocate(times, prim)) == 0
    if rate * lag < 0.2:   # rare: two inserts on different primaries within the lag take the same id
        pairs = rate ** 2 * (1 - 1 / primaries) * lag * times[-1]
        assert got == pytest.approx(pairs, rel=0.3)


def test_id_collisions_vanish_with_offsets_and_grow_without():
    def ids(lag_ms: float, rate: float = 40, **kw) -> int:   # 20 inserts/s: 0.2 in 10 ms
        return run(multi(2, lag_ms, rate=rate, insert_share=1.0, **kw), 30)["id_collisions"]
    small = ids(10)
    assert small > 20
    assert ids(40) > 2 * small
    assert ids(10, rate=80) > 2 * small
    assert ids(100, auto_increment_offsets=True) == 0
    assert run(multi(1, 100, insert_share=1.0), 10)["id_collisions"] == 0
    assert run(multi(2, 0, insert_share=1.0), 10)["id_collisions"] == 0


def test_a_dead_primary_is_no_single_point_of_failure():
    d = multi(2, 50, rate=400)                   # monitor: every 1.5 s, 3 misses
    add_event(d, 10, "fail", "db", replica=0)
    sim = Simulation(d)
    sim.advance(30)
    m = sim.metrics
    down, nowhere = m.failed_by_cause["backend_down"], m.failed_by_cause["no_healthy_backend"]
    # before the proxy notices (at most 3 × 1.5 s): half of the reads and writes fail
    assert down[11:13].mean() == pytest.approx(400 * 0.5, rel=0.15)
    # after it: the other primary takes every read and write
    assert down[16:].sum() == 0 and nowhere.sum() == 0
    assert m.served_rps[16:].mean() == pytest.approx(400, rel=0.08)
    assert "db" not in structural_spof(d)                     # no share of the requests lost for good
    assert structural_spof(multi(1, 50, read_replicas=1))["db"].kind == "partial"   # one primary: its writes


def test_the_same_numbers_however_the_run_is_sliced():
    d = multi(3, 60, rate=300, items=30, insert_share=0.5, read_replicas=1)
    add_event(d, 4.3, "fail", "db", replica=1)
    assert_same_however_sliced(d, 9.0, 1)


@pytest.mark.parametrize("items,lag_ms", [(1, 100), (20, 200)])
def test_a_read_at_a_primary_is_stale_when_another_primary_wrote_its_item_within_the_lag(items, lag_ms):
    rate, seconds, primaries = 200, 30, 2
    t = run(multi(primaries, lag_ms, rate=rate, read_ratio=0.8, items=items), seconds)
    reads, writes = t["served"] * 0.8, t["served"] * 0.2 / seconds
    p = zipf_pmf(items, 0.0)
    # Poisson writes of item i elsewhere at wᵢ (1 − 1/P): stale unless none in the last lag
    expected = reads * float(np.sum(p * -np.expm1(-writes * p * (1 - 1 / primaries) * lag_ms / 1000)))
    assert t["stale_reads"] == pytest.approx(expected, rel=0.08)
    assert run(multi(primaries, 0, rate=rate, read_ratio=0.8, items=items), 5)["stale_reads"] == 0


def _random_multi_primary(seed: int) -> Document | None:
    """A random file of the trust test with its database made multi-primary (None: no database)."""
    from random_topologies import random_topology
    from simulation.fileformat import dumps, loads
    doc = random_topology(seed, duration_s=8.0)
    if "db" not in doc:
        return None
    doc.set_params("db", {"primaries": 2 + seed % 2, "auto_increment_offsets": seed % 3 == 0})
    for n in doc.node_ids():
        if doc.kind(n) == "client":
            doc.set_params(n, {"insert_share": 0.5})
    return loads(dumps(doc))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_multi_primary_files_give_the_same_numbers_however_they_are_stepped(seed):
    doc = _random_multi_primary(seed)
    if doc is None:
        pytest.skip("this random file has no database")
    assert_same_however_sliced(doc, 8.0, seed)


@pytest.mark.parametrize("seed", range(200, 206))
def test_random_clicks_on_multi_primary_files_lose_no_request(seed):
    doc = _random_multi_primary(seed)
    if doc is None:
        pytest.skip("this random file has no database")
    sim = Simulation(doc)
    rng = np.random.default_rng(seed)
    target = 0.0
    while target < 8.0:
        target = min(8.0, target + float(rng.uniform(0.05, 1.5)))
        sim.run_until(target)
        if rng.random() < 0.4:   # fail or recover one copy of the database, or all of it
            copies = len(sim.net.node_stations[sim.net.node_ids.index("db")])
            replica = int(rng.integers(copies)) if rng.random() < 0.7 else None
            (sim.fail if rng.random() < 0.6 else sim.recover)("db", replica)
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]


def test_several_primaries_and_several_shards_together_are_refused_with_the_reason():
    from simulation.compiler import SimulationError, compile_document
    from simulation.document import Document, NodeData
    d = Document()
    d.add_node(NodeData("users", "client"))
    d.add_node(NodeData("app", "server"))
    d.add_node(NodeData("db", "database", params={"primaries": 2, "shards": 3}))
    d.add_edge("users", "app")
    d.add_edge("app", "db")
    with pytest.raises(SimulationError, match=r'database "db": several primaries and several shards together'):
        compile_document(d)


@pytest.mark.parametrize("lag_ms", [5.0, 60.0, 250.0])
def test_long_windows_give_the_one_tick_numbers(monkeypatch, lag_ms):
    """A write committed at one primary reaches the others after the lag (at least one
    tick): each window admits the primaries' arrivals in stretches no longer than that
    (window.py's _admit_primaries), each with the other primaries' writes due by its end.
    The same numbers as one-tick windows, in far fewer windows."""
    d = multi(3, lag_ms, rate=600, items=15, insert_share=0.5, read_replicas=1)
    add_event(d, 2.3, "fail", "db", replica=1)
    add_event(d, 4.1, "recover", "db", replica=1)
    long = Simulation(d)
    assert long._mp_cap is None
    ends = []
    boundary = long._next_boundary

    def spy() -> tuple[float, str]:
        end = boundary()
        ends.append(end[0])
        return end

    monkeypatch.setattr(long, "_next_boundary", spy)
    long.advance(6.0)
    short = Simulation(d)
    short._mp_cap = short.tick_s   # one tick at a time, as before
    short.advance(6.0)
    assert long.totals() == short.totals()
    assert long.totals()["write_conflicts"] > 0 and long.totals()["stale_reads"] > 0
    assert long.totals()["id_collisions"] > 0
    lengths = np.diff([0.0] + sorted(set(ends)))
    assert lengths.max() > max(lag_ms / 1000, long.tick_s) and len(set(ends)) < 6.0 / long.tick_s / 10


@pytest.mark.parametrize("algorithm", ["round_robin", "least_connections"])
def test_sync_workers_in_front_of_two_primaries_in_long_windows(algorithm):
    """Sync app servers in front of two primaries: the event window (round robin) or the
    discrete-event pass (least connections) start each write's apply job at the other
    primary after the lag, inside windows longer than it; every held worker's release
    is the engine's (else an error), and nothing depends on the tick or the steps."""
    def sim_of(tick: float) -> Simulation:
        d = multi(2, 40, rate=300, items=10, insert_share=0.3, read_replicas=1)
        d.set_params("app", {"blocking_calls": True, "workers": 4, "capacity_rps": 400})
        d.remove_edge("users", "app")
        d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm}))
        d.add_edge("users", "lb")
        d.add_edge("lb", "app")
        d.set_settings(tick_ms=tick)
        add_event(d, 2.2, "fail", "db", replica=0)
        add_event(d, 3.5, "recover", "db", replica=0)
        return Simulation(d)

    whole = sim_of(10.0)
    whole.advance(6.0)
    assert whole._ev_windows > 0 and whole._ev_des == (algorithm != "round_robin") and whole._held_lost == 0
    assert whole._ev_fallbacks < whole._ev_windows
    fine = sim_of(2.0)
    for _ in range(30):
        fine.advance(0.2)
    assert fine.totals() == whole.totals()
    t = whole.totals()
    assert t["write_conflicts"] > 0 and t["served"] > 1000


@pytest.mark.parametrize("lag_ms", [0.0, 4.0])
def test_a_lag_shorter_than_a_tick_gives_the_same_numbers_whatever_the_tick(lag_ms):
    # a write reached the other primaries at least one tick after its commit: a lag under
    # tick_ms was taken as tick_ms, and the numbers changed with it (random files with data);
    # now after the lag, and at least 1 ms
    def totals(tick_ms):
        d = multi(2, lag_ms, rate=300, read_ratio=0.3, items=50, connections=1)
        d.set_params("db", {"read_capacity_rps": 600, "write_capacity_rps": 500})
        d.set_settings(tick_ms=tick_ms)
        sim = Simulation(d)
        sim.advance(5)
        return sim.totals(), list(sim.metrics.util["db"])
    one = totals(1.0)
    assert one == totals(10.0) == totals(20.0)
    assert one[0]["served"] > 1000 and np.mean(one[1]) > 0.4   # busy primaries: applies wait in line
