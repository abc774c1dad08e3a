"""Partitioning by table: each database carries its tables' share, a dead database loses
exactly that share (plus the joins that need it), a join pays both databases, and
inconsistent tables are refused; each checked against a closed form."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulation import analysis
from simulation.compiler import SimulationError, compile_document
from simulation.document import Document, NodeData, ScheduledEvent
from simulation.engine import Simulation
from simulation.fileformat import load
from simulation.params import FormatError

from test_trust import assert_same_however_sliced

ROOT = Path(__file__).resolve().parents[2]
BIG = {"queue_limit": 1_000_000, "timeout_s": 3600}
MIX = {"users": 0.2, "flights_domestic": 0.5, "flights_international": 0.3}


def partitioned(rate: float = 400.0, mix: dict | None = None, join: float = 0.0, pair: list | None = None,
                tables: dict | None = None, connections: int = 1, capacity: float = 1000.0,
                read_ratio: float = 1.0, seed: int = 1) -> Document:
    """Client → a near-instant server → one database per entry of ``tables`` (id -> tables)."""
    tables = {"db_users": ["users"], "db_dom": ["flights_domestic"], "db_int": ["flights_international"]} \
        if tables is None else tables
    d = Document()
    cp = {"rate_rps": rate, "users": 10_000, "read_ratio": read_ratio, "join_share": join}
    if mix is not None:
        cp["table_mix"] = mix
    if pair:
        cp["join_tables"] = pair
    d.add_node(NodeData("c", "client", params=cp))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 1_000_000, "workers": 256, **BIG}))
    d.add_edge("c", "web")
    for db, held in tables.items():
        d.add_node(NodeData(db, "database", params={"read_capacity_rps": capacity, "write_capacity_rps": capacity,
                                                    "connections": connections, "tables": held, **BIG}))
        d.add_edge("web", db)
    d.set_settings(seed=seed)
    return d


def mean_util(sim: Simulation, node: str, start: int = 0, end: int | None = None) -> float:
    return float(np.mean(sim.metrics.util[node][start:end]))


def test_each_database_carries_its_tables_share():
    sim = Simulation(partitioned(400, MIX))
    sim.advance(120)
    # closed form: rate × share × service time (1 connection at 1000 req/s: 1 ms)
    for db, table in (("db_users", "users"), ("db_dom", "flights_domestic"), ("db_int", "flights_international")):
        assert mean_util(sim, db) == pytest.approx(400 * MIX[table] / 1000, rel=0.05), db
    t = sim.totals()
    assert t["failed"] == 0
    # the totals count what was served per table: the mix
    assert sum(t["served_by_table"].values()) == t["served"]
    for table, share in MIX.items():
        assert t["served_by_table"][table] / t["served"] == pytest.approx(share, abs=0.01)


def test_without_tables_a_server_splits_its_calls_by_capacity_as_before():
    """No table anywhere: the pool of today (capacity-proportional), nothing compiled for tables."""
    d = partitioned(400, None, tables={"db_a": [], "db_b": []})
    d.set_params("db_b", {"read_capacity_rps": 3000.0, "write_capacity_rps": 3000.0})
    assert compile_document(d).partitions is None
    sim = Simulation(d)
    sim.advance(120)
    # db_a gets 1/4 of the calls (capacity 1000 of 4000) at 1 ms, db_b 3/4 at 1/3 ms
    assert mean_util(sim, "db_a") == pytest.approx(400 * 0.25 / 1000, rel=0.06)
    assert mean_util(sim, "db_b") == pytest.approx(400 * 0.75 / 3000, rel=0.06)
    # and writing the defaults out changes nothing, to the last request
    explicit = partitioned(400, {}, tables={"db_a": [], "db_b": []})
    explicit.set_params("db_b", {"read_capacity_rps": 3000.0, "write_capacity_rps": 3000.0})
    again = Simulation(explicit)
    again.advance(120)
    assert again.totals() == sim.totals()


def test_joins_add_load_to_both_of_their_databases():
    js = 0.25
    sim = Simulation(partitioned(400, MIX, join=js, pair=["users", "flights_domestic"]))
    sim.advance(120)
    # a join is one query at each of its two databases; the others touch one table
    expect = {"db_users": (1 - js) * 0.2 + js, "db_dom": (1 - js) * 0.5 + js, "db_int": (1 - js) * 0.3}
    for db, share in expect.items():
        assert mean_util(sim, db) == pytest.approx(400 * share / 1000, rel=0.05), db
    t = sim.totals()
    assert t["served_by_table"]["users+flights_domestic"] / t["served"] == pytest.approx(js, abs=0.01)


@pytest.mark.parametrize("join", [0.0, 0.2])
def test_a_dead_database_loses_exactly_its_share_plus_the_joins(join):
    d = partitioned(300, MIX, join=join, pair=["users", "flights_domestic"])
    d.insert_event(0, ScheduledEvent(0.0, "fail", "db_users"))
    sim = Simulation(d)
    sim.advance(120)
    t = sim.totals()
    expected = (1 - join) * MIX["users"] + join       # its table, and every join (they need it)
    assert t["failed"] / t["arrived"] == pytest.approx(expected, abs=0.01)
    assert t["failed_by_cause"]["backend_down"] == t["failed"]
    # the structural analysis says the same share, as a partial SPOF
    spof = analysis.structural_spof(partitioned(300, MIX, join=join, pair=["users", "flights_domestic"]))
    assert not spof["db_users"].full and spof["db_users"].share == pytest.approx(expected, abs=1e-9)
    assert "users" in spof["db_users"].reason
    assert spof["db_int"].share == pytest.approx((1 - join) * MIX["flights_international"], abs=1e-9)


def test_the_measured_loss_of_each_database_is_its_share():
    d = partitioned(300, MIX, join=0.2, pair=["users", "flights_domestic"])
    measured = analysis.empirical_spof(d, seconds=40)
    expect = {"db_users": 0.8 * 0.2 + 0.2, "db_dom": 0.8 * 0.5 + 0.2, "db_int": 0.8 * 0.3}
    for db, share in expect.items():
        assert measured[db].kind == "partial"
        assert measured[db].share == pytest.approx(share, abs=0.03), db


def test_a_join_pays_both_databases_one_after_the_other():
    """Many connections, light load: a query's response time is its service time, so a
    join's mean latency is the sum of the two means (not the larger: the calls are sequential)."""
    tables = {"db_fast": ["users"], "db_slow": ["flights"]}
    d = partitioned(40, {"users": 0.5, "flights": 0.5}, join=1.0, tables=tables, connections=64)
    d.set_params("db_fast", {"read_capacity_rps": 6400.0, "write_capacity_rps": 6400.0})   # mean 10 ms
    d.set_params("db_slow", {"read_capacity_rps": 6400.0 / 3, "write_capacity_rps": 6400.0 / 3})  # mean 30 ms
    sim = Simulation(d)
    sim.advance(300)
    t = sim.totals()
    assert t["failed"] == 0
    assert t["mean_ms"] == pytest.approx(10 + 30, rel=0.04)       # E[max] would be 40 − 7.5 = 32.5
    # the same clients without joins: each request pays one database
    single = partitioned(40, {"users": 0.5, "flights": 0.5}, join=0.0, tables=tables, connections=64)
    single.set_params("db_fast", {"read_capacity_rps": 6400.0, "write_capacity_rps": 6400.0})
    single.set_params("db_slow", {"read_capacity_rps": 6400.0 / 3, "write_capacity_rps": 6400.0 / 3})
    s1 = Simulation(single)
    s1.advance(300)
    assert s1.totals()["mean_ms"] == pytest.approx(0.5 * 10 + 0.5 * 30, rel=0.05)


def test_a_join_through_a_cache_is_never_a_hit_and_pays_both():
    """The users database sits behind a cache (deeper in the graph): the join goes through
    the cache to it and its second query goes straight to the flights database."""
    d = partitioned(40, {"users": 0.5, "flights": 0.5}, join=1.0, pair=["flights", "users"],
                    tables={"db_flights": ["flights"]}, connections=64)
    d.set_params("db_flights", {"read_capacity_rps": 6400.0 / 3, "write_capacity_rps": 6400.0 / 3})   # 30 ms
    d.add_node(NodeData("cache", "cache", params={"capacity_items": 10_000, "capacity_rps": 1e6,
                                                  "connections": 4096}))
    d.add_node(NodeData("db_users", "database", params={"read_capacity_rps": 6400.0, "write_capacity_rps": 6400.0,
                                                        "connections": 64, "tables": ["users"], **BIG}))   # 10 ms
    d.add_edge("web", "cache")
    d.add_edge("cache", "db_users")
    sim = Simulation(d)
    sim.advance(300)
    t = sim.totals()
    assert t["failed"] == 0
    cache_ms = 4096 / 1e6 * 1000                                # the cache's own service (connections / capacity)
    assert t["mean_ms"] == pytest.approx(cache_ms + 10 + 30, rel=0.04)
    # every join reached both databases: the users database served them all
    assert mean_util(sim, "db_users", 30) == pytest.approx(40 * 0.010 / 64, rel=0.08)


def test_partitioned_runs_do_not_depend_on_how_they_are_sliced():
    d = partitioned(300, MIX, join=0.2, pair=["users", "flights_domestic"], connections=2, read_ratio=0.8)
    d.insert_event(0, ScheduledEvent(5.0, "fail", "db_dom"))
    d.insert_event(1, ScheduledEvent(9.0, "recover", "db_dom"))
    assert_same_however_sliced(d, 14.0)


@pytest.mark.parametrize("tables, mix, message", [
    ({"db_a": ["users"], "db_b": ["flights"]}, {"users": 1, "orders": 1},
     'server "web": no database it calls holds table "orders"'),
    ({"db_a": ["users"], "db_b": ["users", "flights"]}, {"users": 1, "flights": 1},
     'server "web": table "users" is held by two databases it calls, "db_a" and "db_b"'),
    ({"db_a": [], "db_b": []}, {"users": 1},
     'server "web": table "users" is held by two databases it calls, "db_a" and "db_b"'),
    ({"db_a": ["users"], "db_b": ["flights"]}, None,
     'client "c": it has no table_mix, but server "web" calls databases that hold tables'),
])
def test_inconsistent_tables_are_refused_in_one_line(tables, mix, message):
    with pytest.raises(SimulationError) as e:
        compile_document(partitioned(100, mix, tables=tables))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_join_needs_two_tables():
    d = partitioned(100, {"users": 1.0}, tables={"db_a": ["users"]})
    with pytest.raises(FormatError, match="join_tables: must name two tables"):
        d.set_params("c", {"join_tables": ["users"]})
    d.set_params("c", {"join_share": 0.5})
    with pytest.raises(SimulationError, match='client "c": join_share > 0 needs two tables'):
        compile_document(d)


def test_the_lesson_loses_only_the_failed_tables_share():
    doc = load(ROOT / "resources" / "lessons" / "partitioning.scalelab")
    p = doc.params("users")
    rate, rr, js, mix = p["rate_rps"], p["read_ratio"], p["join_share"], p["table_mix"]
    share = {t: w / sum(mix.values()) for t, w in mix.items()}
    fail_at = int(doc.events[0].at_s)
    assert doc.events[0].node == "db_international"
    sim = Simulation(doc)
    sim.advance(doc.settings["duration_s"])
    m = sim.metrics
    before = slice(10, fail_at)
    after = slice(fail_at + 2, None)

    # closed form: each database's busy share = its queries per second × mean service / connections
    def busy(db: str, tables: list[str], joined: bool) -> float:
        q = doc.params(db)
        work = rr / q["read_capacity_rps"] + (1 - rr) / q["write_capacity_rps"]   # per query, all connections
        return rate * ((1 - js) * sum(share[t] for t in tables) + (js if joined else 0.0)) * work

    whole = rate * (1 + js) * (rr / 400 + (1 - rr) / 200)   # everything (joins twice) on one such database
    assert whole > 1.5                                          # one database alone would be far past saturation
    for db, joined in (("db_users", True), ("db_domestic", True), ("db_international", False)):
        tables = doc.params(db)["tables"]
        measured = float(np.mean(m.util[db][before]))
        assert measured == pytest.approx(busy(db, tables, joined), rel=0.06), db
        assert measured < 0.85                                  # well under saturation
    failed = np.array(m.failed_rps[after]) / np.array(m.offered_rps[after])
    lost = (1 - js) * share["flights_international"]           # its table; no join needs it
    assert float(np.mean(failed)) == pytest.approx(lost, abs=0.03)
    # and the other databases carry on as before
    assert float(np.mean(m.util["db_users"][after])) == pytest.approx(float(np.mean(m.util["db_users"][before])),
                                                                       rel=0.05)


def test_tables_on_a_sharded_and_a_replicated_database():
    """A table on a sharded database is split by key over its shards; one on a database with a
    read replica is spread over its copies (every copy applies every write). Joins reach both.
    Each database's work, summed over its stations, is its share × rate × work per query."""
    rr, js, rate = 0.7, 0.3, 300.0
    d = partitioned(rate, {"users": 0.4, "flights": 0.6}, join=js, read_ratio=rr,
                    tables={"db_users": ["users"], "db_flights": ["flights"]})
    d.set_params("db_users", {"read_replicas": 1, "write_capacity_rps": 2000.0})
    d.set_params("db_flights", {"shards": 2, "write_capacity_rps": 2000.0})
    sim = Simulation(d)
    sim.advance(120)
    t = sim.totals()
    assert t["failed"] == 0 and t["arrived"] == t["served"] + t["in_flight"]
    users = rate * ((1 - js) * 0.4 + js)
    flights = rate * ((1 - js) * 0.6 + js)
    # reads 1 ms; writes 0.5 ms, applied again at the read replica
    assert 2 * mean_util(sim, "db_users") == pytest.approx(users * (rr / 1000 + 2 * (1 - rr) / 2000), rel=0.06)
    assert 2 * mean_util(sim, "db_flights") == pytest.approx(flights * (rr / 1000 + (1 - rr) / 2000), rel=0.06)
    shards = [float(np.mean(sim.metrics.util[f"db_flights#{s}"])) for s in range(2)]
    assert min(shards) > 0.3 * max(shards)      # both shards hold part of the flights
