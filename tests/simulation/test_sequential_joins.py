"""A join over two partitioned databases is two queries, one after the other: the second
is sent when the first answers. Checked against an open Jackson network (M/M/1
databases: the mean sojourn of each visit is 1 / (μ − λ)), against the saturated first
database's departure rate (which is what the second one sees), against the traces (the
second query arrives when the first leaves), and with a blocking server (Little's law
with the worker held through both queries)."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.compiler import compile_document
from simulation.document import Document, NodeData, ScheduledEvent
from simulation.engine import Simulation

from test_partitioning import partitioned, mean_util

TABLES = {"db_users": ["users"], "db_flights": ["flights"]}
MIX = {"users": 0.5, "flights": 0.5}
SERVER_S = 256 / 1e6          # the near-instant server: workers / capacity


def two_databases(rate: float, join: float, mu_users: float, mu_flights: float, **kw):
    d = partitioned(rate, MIX, join=join, tables=TABLES, connections=1, **kw)
    d.set_params("db_users", {"read_capacity_rps": mu_users, "write_capacity_rps": mu_users})
    d.set_params("db_flights", {"read_capacity_rps": mu_flights, "write_capacity_rps": mu_flights})
    return d


def test_the_second_database_is_processed_after_the_first():
    """Both databases are one level below the server; a join's second database is put
    one level deeper (on a tie the first in the file is queried first)."""
    net = compile_document(two_databases(100, 0.3, 500, 400))
    level = {net.node_ids[int(net.st_node[s])]: int(net.st_level[s]) for s in range(net.n_stations)}
    assert level["db_flights"] == level["db_users"] + 1
    # without joins the levels are the graph's
    net = compile_document(two_databases(100, 0.0, 500, 400))
    level = {net.node_ids[int(net.st_node[s])]: int(net.st_level[s]) for s in range(net.n_stations)}
    assert level["db_flights"] == level["db_users"]


def test_a_join_pays_the_two_sojourns_of_a_jackson_network():
    """λ = 400, join share 0.4: each database gets (1 − j)/2 + j = 0.7 of the requests
    (280/s). M/M/1 at μ = 500 and 400: sojourns 1/220 and 1/120 s. A join's mean is
    their sum (plus the server), each database's utilization λ/μ."""
    lam, j = 400.0, 0.4
    sim = Simulation(two_databases(lam, j, 500.0, 400.0))
    sim.trace_every(8, cap=100_000)
    sim.advance(300)
    lam_db = lam * ((1 - j) * 0.5 + j)
    t_u, t_f = 1 / (500 - lam_db), 1 / (400 - lam_db)
    assert mean_util(sim, "db_users", 10) == pytest.approx(lam_db / 500, rel=0.03)
    assert mean_util(sim, "db_flights", 10) == pytest.approx(lam_db / 400, rel=0.03)
    t = sim.totals()
    assert t["failed"] == 0
    whole = SERVER_S + (1 - j) * 0.5 * (t_u + t_f) + j * (t_u + t_f)
    assert t["mean_ms"] == pytest.approx(1000 * whole, rel=0.05)
    joins = [tr for tr in sim.traces() if tr.outcome == "answered" and len(tr.hops) == 3]
    assert len(joins) == pytest.approx(j * t["served"] / 8, rel=0.1)
    assert np.mean([tr.latency_ms for tr in joins]) == pytest.approx(1000 * (SERVER_S + t_u + t_f), rel=0.05)
    # the second query arrives at the moment the first one leaves, so it reaches the second
    # database in the order the first one answered
    for tr in joins:
        web, first, second = tr.hops
        assert (first.node, second.node) == ("db_users", "db_flights")
        assert second.arrived_s == first.end_s
        assert tr.end_s == second.end_s
    left = np.array([tr.hops[1].end_s for tr in joins])
    came = np.array([tr.hops[2].arrived_s for tr in joins])
    assert (np.argsort(left, kind="stable") == np.argsort(came, kind="stable")).all()


def test_the_second_database_sees_the_joins_as_fast_as_the_first_answers():
    """The first database is saturated (300/s offered to μ = 240): it answers 240/s, of
    which the joins are 200/300. The second database sees its own 100/s plus 160/s of
    joins: utilization 260/400 = 0.65 (sent at once, they would load it 300/400)."""
    lam, j = 400.0, 0.5
    sim = Simulation(two_databases(lam, j, 240.0, 400.0))
    sim.advance(60)
    assert mean_util(sim, "db_users", 5) == pytest.approx(1.0, abs=0.005)
    own = (1 - j) * 0.5 * lam
    joins = 240.0 * (j * lam) / ((1 - j) * 0.5 * lam + j * lam)
    assert mean_util(sim, "db_flights", 5) == pytest.approx((own + joins) / 400, rel=0.03)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    assert t["served_by_table"]["users+flights"] / 60 == pytest.approx(joins, rel=0.05)


@pytest.mark.parametrize("dead", ["db_users", "db_flights"])
def test_a_failed_query_fails_its_join_once(dead):
    """A dead first database: joins fail there and send no second query (the second
    database carries its own table only). A dead second database: the first does the
    join's work, the join fails at the second. Either way the loss is (1 − j)/2 + j of
    the requests, each counted once."""
    lam, j, mu = 200.0, 0.3, 1000.0
    d = two_databases(lam, j, mu, mu)
    d.events.append(ScheduledEvent(0.0, "fail", dead))
    sim = Simulation(d)
    sim.advance(120)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    loss = (1 - j) * 0.5 + j
    assert t["failed"] / t["arrived"] == pytest.approx(loss, abs=0.01)
    assert t["failed_by_cause"]["backend_down"] == t["failed"]
    alive = "db_flights" if dead == "db_users" else "db_users"
    carried = (1 - j) * 0.5 * lam + (j * lam if alive == "db_users" else 0.0)
    assert mean_util(sim, alive, 5) == pytest.approx(carried / mu, rel=0.06)
    assert t["served_by_table"]["users+flights"] == 0


def test_a_blocking_server_holds_its_worker_through_both_queries():
    """A blocking server (64 workers, 1 ms of its own work, no queueing) in front of the
    two M/M/1 databases: by Little's law its busy workers are λ × (1 ms + the mean time
    downstream), and a join's time downstream is both sojourns."""
    lam, j = 200.0, 0.4
    d = two_databases(lam, j, 300.0, 200.0)
    d.set_params("web", {"capacity_rps": 64_000.0, "workers": 64, "blocking_calls": True})
    sim = Simulation(d)
    sim.advance(200)
    lam_db = lam * ((1 - j) * 0.5 + j)
    t_u, t_f = 1 / (300 - lam_db), 1 / (200 - lam_db)
    down = (1 - j) * 0.5 * (t_u + t_f) + j * (t_u + t_f)
    assert sim.totals()["failed"] == 0
    assert mean_util(sim, "web", 10) == pytest.approx(lam * (0.001 + down) / 64, rel=0.05)
    # released when the first database answers, it would be j × t_f lower: 14 % here
    assert lam * j * t_f / 64 > 0.12 * mean_util(sim, "web", 10)


def test_second_queries_to_replicas_and_shards_keep_the_books():
    """The second database with read replicas, or sharded: reads and writes get there
    (writes to the primary), nothing is lost and the load is the closed form."""
    lam, j, rr = 200.0, 0.5, 0.75
    for extra in ({"read_replicas": 1, "failover_s": 5.0}, {"shards": 2}):
        d = two_databases(lam, j, 1000.0, 1000.0, read_ratio=rr)
        d.set_params("db_flights", extra)
        sim = Simulation(d)
        sim.advance(60)
        t = sim.totals()
        assert t["failed"] == 0 and t["arrived"] == t["served"] + t["in_flight"]
        share = (1 - j) * 0.5 + j
        assert t["served_by_table"]["users+flights"] / t["served"] == pytest.approx(j, abs=0.02)
        # every query of the flights table costs 1 ms on one of its 2 stations, and a replica
        # applies each write (the joins' too) at the same cost: the node's utilization is
        # its work over its stations
        applied = (1 - rr) if "read_replicas" in extra else 0.0
        work = lam * share * (1 + applied) * 0.001
        assert mean_util(sim, "db_flights", 5) == pytest.approx(work / 2, rel=0.06), extra


def test_a_first_query_that_gives_up_sends_no_second_one():
    """The users database is overloaded (µ = 200 for 280/s) and its queries give up after
    50 ms: the joins that time out there never reach the flights database, which carries
    its own table plus only the joins that were answered (counted once each, as served)."""
    lam, j = 400.0, 0.4
    d = two_databases(lam, j, 200.0, 1000.0)
    d.set_params("db_users", {"timeout_s": 0.05})
    sim = Simulation(d)
    sim.advance(60)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    assert t["failed"] == t["failed_by_cause"]["timeout"] > 0.1 * t["arrived"]
    joins_served = t["served_by_table"]["users+flights"] / 60
    own = (1 - j) * 0.5 * lam
    assert joins_served < 0.8 * j * lam                      # many joins gave up at the users database
    assert mean_util(sim, "db_flights") == pytest.approx((own + joins_served) / 1000, rel=0.05)


def _first_queried(doc) -> set[tuple[str, str]]:
    sim = Simulation(doc)
    sim.trace_every(1, cap=100_000)
    sim.advance(5)
    return {(tr.hops[1].node, tr.hops[2].node) for tr in sim.traces() if tr.outcome == "answered" and len(tr.hops) == 3}


@pytest.mark.parametrize("pair", [["users", "flights"], ["flights", "users"]])
def test_equally_deep_databases_are_queried_in_the_joins_order_whatever_the_files(pair):
    """The app reads the join's first table, then the second: with the two databases equally
    deep, the first query goes to the one holding join_tables[0], whichever comes first in
    the file and whichever id sorts first (before 2026-12-01: the first in the file)."""
    d = two_databases(100, 0.3, 500, 400)
    d.set_params("c", {"join_tables": pair})
    want = {(f"db_{pair[0]}", f"db_{pair[1]}")}
    assert _first_queried(d) == want
    reordered = Document()   # the same nodes, the databases first
    for n in sorted(d.nodes(), key=lambda n: n.kind != "database"):
        reordered.add_node(n.copy())
    for a, b in d.edges():
        reordered.add_edge(a, b)
    reordered.set_settings(**d.settings)
    assert _first_queried(reordered) == want


def test_two_clients_joining_in_opposite_orders_get_one_order():
    """One order for all joins keeps the levels a topological order (a join's second database
    one level deeper than its first): when two clients ask for opposite orders, the
    contradicting one goes by id ("db_flights" first) and every request is still answered."""
    d = two_databases(100, 0.3, 5000, 5000)
    d.set_params("c", {"join_tables": ["users", "flights"]})
    d.add_node(NodeData("c2", "client", params={"rate_rps": 100.0, "users": 100, "table_mix": MIX,
                                                "join_share": 0.3, "join_tables": ["flights", "users"]}))
    d.add_edge("c2", "web")
    net = compile_document(d)
    level = {net.node_ids[int(net.st_node[s])]: int(net.st_level[s]) for s in range(net.n_stations)}
    assert level["db_users"] == level["db_flights"] + 1
    assert _first_queried(d) == {("db_flights", "db_users")}
    sim = Simulation(d)
    sim.advance(5)
    t = sim.totals()
    assert t["failed"] == 0 and t["arrived"] == t["served"] + t["in_flight"]
