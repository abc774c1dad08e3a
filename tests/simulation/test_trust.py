"""Numbers a teacher can trust: the same file and seed give identical numbers
however a run is sliced, and no valid file with any failures can hang the engine
or lose a request from the books."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation.cli import csv_text
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import dumps, load, loads

from random_topologies import random_topology
from topologies import add_event
from trace_checks import check_against_traces
from wallclock import within

LESSONS = sorted((Path(__file__).parents[2] / "resources" / "lessons").glob("*.scalelab"))


def slicings(total: float, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    uneven = rng.uniform(0.003, 2.5, 400)
    uneven = list(uneven[np.cumsum(uneven) < total])
    n37 = int(total / 0.37)
    return {"one call": [total], "1 s": [1.0] * int(total) + [total - int(total)],
            "0.37 s": [0.37] * n37 + [total - 0.37 * n37], "random": uneven + [total - sum(uneven)]}


def total_of(slices: list[float]) -> float:
    return round(sum(slices), 6)


def outcome(doc, slices: list[float]) -> tuple[dict, str]:
    sim = Simulation(doc)
    for s in slices:
        sim.advance(s)
    sim.run_until(total_of(slices))
    totals = sim.totals()
    totals = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in totals.items()}
    return totals, csv_text(sim)


def assert_same_however_sliced(doc, total: float, seed: int = 0) -> None:
    runs = {name: outcome(doc, s) for name, s in slicings(total, seed).items()}
    base_totals, base_rows = runs.pop("one call")
    for name, (totals, rows) in runs.items():
        assert totals == base_totals, f"totals differ when advanced in {name} slices"
        assert rows == base_rows, f"per-second rows differ when advanced in {name} slices"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_gives_the_same_numbers_however_it_is_stepped(path):
    doc = load(path)
    assert_same_however_sliced(doc, min(float(doc.settings["duration_s"]), 75.0))


@pytest.mark.parametrize("seed", range(12))
def test_random_files_give_the_same_numbers_however_they_are_stepped(seed):
    doc = loads(dumps(random_topology(seed, duration_s=12.0)))
    with within(240, f"random_topology({seed})"):
        assert_same_however_sliced(doc, 12.0, seed)


@pytest.mark.parametrize("seed", [*range(12), 52])
def test_random_files_with_an_api_tier_give_the_same_numbers_however_they_are_stepped(seed):
    # servers calling servers (sessions in memory at both tiers, sync or async). Seed 10 found
    # two requests reaching an API replica at one instant served in the order the windows gave;
    # seed 52 a power-of-two balancer beside a blind sticky one that decided request by request
    # in the windows where the sticky one had no requests (tick by tick in the others)
    doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=True)))
    with within(240, f"random_topology({seed}, tiers=True)"):
        assert_same_however_sliced(doc, 12.0, seed)


@pytest.mark.parametrize("seed", [*range(6), 44, 156])
def test_random_files_with_sharded_or_partitioned_data_give_the_same_numbers_however_stepped(seed):
    # several primaries or shards, cross-shard queries, inserts, tables on two databases and
    # joins. Seeds 44 and 156 stopped the run ("a worker was released at another time than
    # predicted") in the event window of a sync server: 44, a join's second query got
    # cross-shard parts (test_blocking_events.py); 156, a join already at a cache when a
    # window began was taken for a cache hit (a cache holds items, not joins)
    doc = loads(dumps(random_topology(seed, duration_s=12.0, data=True)))
    with within(240, f"random_topology({seed}, data=True)"):
        assert_same_however_sliced(doc, 12.0, seed)


@pytest.mark.parametrize("seed", [12, 61])
def test_clients_joining_two_databases_in_opposite_orders_give_the_same_numbers_however_stepped(seed):
    # two clients join users and orders in opposite orders (one order serves both: the second
    # database one level deeper than the first, partitioning.py), with an API tier and sharded
    # or multi-primary data; and with the nodes shuffled
    doc = loads(dumps(random_topology(seed, duration_s=8.0, tiers=True, data=True, joins=True)))
    orders = {tuple(doc.params(c)["join_tables"]) for c in doc.node_ids() if doc.kind(c) == "client"}
    assert orders == {("users", "orders"), ("orders", "users")}
    with within(240, f"random_topology({seed}, tiers, data, joins)"):
        assert_same_however_sliced(doc, 8.0, seed)
        assert_the_order_of_the_nodes_changes_nothing(doc, 8.0, seed)


@pytest.mark.parametrize("seed", [*range(4), 271, 979, 1002])
def test_random_files_with_an_api_tier_and_sharded_data_give_the_same_numbers_however_stepped(seed):
    # seed 271: requests waiting at an async server beside sync ones when the discrete-event
    # pass's window ended moved their user's session (in memory) when a later window decided
    # them, after that user's later requests (balanced_window.py)
    # seed 979: a sticky least-response-time balancer sharing its users' cookies with a blind
    # sticky one decided tick by tick with the response times as of a window's start, in
    # windows longer than a tick (cut where the run was stopped): balanced_window.lrt_on_the_slow_path
    # seed 1002: the sweeps lost the nanosecond of service before a blocking level's horizon
    # of a request they decided then: a utilization's last printed digit (blocking._book_before)
    doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=True, data=True)))
    with within(240, f"random_topology({seed}, tiers=True, data=True)"):
        assert_same_however_sliced(doc, 12.0, seed)


def test_health_checks_waiting_in_a_room_take_their_places_however_the_run_is_stepped():
    """Found by fuzzing (random_topology(920, tiers=True, data=True)): an async one-worker
    server beside sync ones, its 20-place room full with 18 users' requests and 2 health
    checks. A request arriving alone in its sweep was admitted by the closed form, which
    counted the requests in the room without the checks (19 + 1 <= 20); in a larger batch
    the exact count refused it: the numbers changed when the run was stepped by 1 s."""
    doc = loads(dumps(random_topology(920, duration_s=12.0, tiers=True, data=True)))
    with within(120, "random_topology(920, tiers=True, data=True)"):
        assert_same_however_sliced(doc, 4.0, 920)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sticky_least_response_time_balancer_beside_a_blind_sticky_one_gives_the_same_numbers(seed):
    """Two sticky balancers share their users' cookies (one least response time, one round
    robin) in front of three unequal servers: they decide tick by tick with the response
    times as of a window's start, so their windows are one tick long; in longer windows,
    cut where the run was stopped, every seed's numbers changed with how it was stepped."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 300.0, "users": 200}))
    d.add_node(NodeData("a", "load_balancer", params={"algorithm": "least_response_time", "affinity": "sticky"}))
    d.add_node(NodeData("b", "load_balancer", params={"algorithm": "round_robin", "affinity": "sticky"}))
    for k in range(3):
        d.add_node(NodeData(f"s{k}", "server", params={"capacity_rps": 60.0 + 40 * k, "workers": 2}))
        d.add_edge("a", f"s{k}")
        d.add_edge("b", f"s{k}")
    d.add_edge("users", "a")
    d.add_edge("users", "b")
    d.set_settings(seed=seed, duration_s=10.0)
    assert_same_however_sliced(d, 10.0, seed)


def test_live_edits_of_a_clients_rate_lose_no_request_at_a_saturated_sync_tier():
    """Found by fuzzing live edits (benchmarks/fuzz.py edits 712, tiers and data): a client's
    rate edited twice within a second regenerates that second's arrivals, and a request key
    can repeat. The waiting rooms' refusals took their requests out by key: with a repeated
    key, a request still waiting vanished from the books (arrived ≠ served + failed + in
    flight). They go by place now."""
    t = run_with_live_edits(712, [(1.87, "s0", {"sessions": "local"}), (4.61, "s0", {"sessions": "cookie"}),
                                  (5.42, "s0", {"workers": 8}), (6.76, "api", {"blocking_calls": False}),
                                  (8.13, "c0", {"rate_rps": 1500.0}), (8.83, "c0", {"rate_rps": 1500.0}),
                                  (10.0, "api", {"replicas": 1})], 12.0)
    assert t["failed_by_cause"]["queue_full"] > 1000


def run_with_live_edits(seed: int, edits: list, until: float) -> dict:
    """random_topology(seed, tiers and data) run with ``edits`` (at, node, params) made as a
    user makes them while it runs; after each, and at ``until``, every request is on the
    books (arrived = served + failed + in flight). Returns the totals."""
    doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=True, data=True)))
    sim = Simulation(doc)
    for at, node, params in edits + [(until, None, None)]:
        sim.run_until(at)
        if node is not None:
            new = loads(dumps(doc))
            new.set_params(node, params)
            sim.update_document(new)
            doc = new
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"], at
    return t


def outcome_with_unchanged_edits(doc, total: float, seed: int) -> tuple[dict, str]:
    """``outcome`` of a run that takes the same document again (an edit that changed
    nothing, as the designer sends after an undone change) at three random moments."""
    sim = Simulation(doc)
    for at in sorted(np.random.default_rng(seed).uniform(0.05, total - 0.05, 3).tolist()):
        sim.run_until(at)
        sim.update_document(loads(dumps(doc)))
    sim.run_until(total)
    totals = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in sim.totals().items()}
    return totals, csv_text(sim)


def assert_an_unchanged_edit_changes_nothing(doc, total: float, seed: int) -> None:
    totals, rows = outcome_with_unchanged_edits(doc, total, seed)
    base_totals, base_rows = outcome(doc, [total])
    assert totals == base_totals, "totals changed by an edit that changed nothing"
    assert rows == base_rows, "per-second rows changed by an edit that changed nothing"


@pytest.mark.parametrize("seed,tiers", [(3, False), (31, False), (51, False), (72, False),
                                        (0, True), (5, True), (9, True), (87, True)])
def test_an_edit_that_changes_nothing_changes_no_number(seed, tiers):
    """Found by comparing runs with and without an unchanged document taken in: the held
    workers of blocking servers were freed (seed 3: a third fewer served), each sticky
    balancer took another's cookies, waiting rooms forgot their refusal rings, caches (of
    several) went cold, undecided health checks vanished, the database proxy's check phase
    and a shard's monitor restarted, multi-primary recent writes were forgotten (write
    conflicts 11,112 -> 8,858), the open seconds lost their edge flows and snapshots, and
    undecided requests at non-blocking servers beside blocking ones were admitted again."""
    doc = loads(dumps(random_topology(seed, duration_s=8.0, tiers=tiers, data=tiers)))
    with within(240, f"random_topology({seed})"):
        assert_an_unchanged_edit_changes_nothing(doc, 8.0, seed)


def columns(csv: str) -> dict[str, list[str]]:
    """A run's per-second CSV by column name (the per-node columns follow the nodes' order)."""
    lines = [line.split(",") for line in csv.splitlines()]
    return {name: [row[i] for row in lines[1:]] for i, name in enumerate(lines[0])}


def assert_the_order_of_the_nodes_changes_nothing(doc, total: float, seed: int) -> None:
    raw = json.loads(dumps(doc))
    raw["nodes"] = [raw["nodes"][i] for i in np.random.default_rng(seed).permutation(len(raw["nodes"]))]
    totals, rows = outcome(loads(json.dumps(raw)), [total])
    base_totals, base_rows = outcome(doc, [total])
    assert totals == base_totals, "totals changed with the order of the nodes in the file"
    assert columns(rows) == columns(base_rows), "per-second rows changed with the order of the nodes"


@pytest.mark.parametrize("seed,tiers", [(5, False), (13, False), (52, False), (54, False), (15, True), (24, True)])
def test_the_order_of_the_nodes_in_the_file_changes_no_number(seed, tiers):
    """Two students who build the same topology in another order see the same numbers.
    Found by shuffling the nodes of random files: balancers' health checks took their phase
    from one generator in the balancers' order; jobs applying writes at database replicas
    hashed the station's index; a join whose two databases were equally deep went first to
    the one first in the file (now: the one holding the join's first table)."""
    doc = loads(dumps(random_topology(seed, duration_s=6.0, tiers=tiers, data=tiers)))
    with within(240, f"random_topology({seed})"):
        assert_the_order_of_the_nodes_changes_nothing(doc, 6.0, seed)


def test_the_order_of_the_clients_changes_no_users_number():
    # users are numbered client after client: by the clients' ids, not their order in the file
    # (a consistent-hash balancer places each user by that number)
    d = Document()
    d.add_node(NodeData("b", "client", params={"rate_rps": 300.0, "users": 70}))
    d.add_node(NodeData("a", "client", params={"rate_rps": 200.0, "users": 50}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "consistent_hash"}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 300.0, "workers": 4, "replicas": 3}))
    for a, b in (("a", "lb"), ("b", "lb"), ("lb", "web")):
        d.add_edge(a, b)
    d.set_settings(seed=4, duration_s=20.0)
    assert_the_order_of_the_nodes_changes_nothing(d, 20.0, 3)   # (reversed: "a" before "b")


def test_adding_a_read_replica_to_a_sharded_database_keeps_each_shards_copies():
    """Found by fuzzing live edits (edits 1092, tiers and data): a sharded database's copies
    were matched across the edit by their replica number, counted across the shards' groups;
    with read replicas 2 -> 1, shard 0's second replica became shard 1's primary (its requests,
    workers and failures moved with it) and the run stopped with "a worker was released at
    another time than predicted". Copies are matched by shard and role."""
    doc = loads(dumps(random_topology(1092, duration_s=10.0, tiers=True, data=True)))
    sim = Simulation(doc)
    sim.run_until(3.8868337342122317)
    before = sim.net.node_stations[sim.net.node_ids.index("db")]
    failed_before = {(d.shard, i) for d in sim.net.databases for i, s in enumerate(d.stations) if sim.stations.failed[s]}
    new = loads(dumps(doc))
    new.set_params("db", {"read_replicas": 1})
    sim.update_document(new)
    assert len(sim.net.node_stations[sim.net.node_ids.index("db")]) == len(before) // 3 * 2
    failed_after = {(d.shard, i) for d in sim.net.databases for i, s in enumerate(d.stations) if sim.stations.failed[s]}
    assert failed_after == {(sh, i) for sh, i in failed_before if i < 2}
    sim.run_until(10.0)
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]


def test_a_multi_primary_database_edited_to_one_primary_keeps_no_apply_jobs():
    """Found by fuzzing live edits (benchmarks/fuzz.py edits 780, tiers and data): a database
    with three primaries (1.5 s lag) edited to one while running kept the writes still on
    their way from the removed primaries as apply jobs at the one left, which applies none:
    they took its connections where the sync tier's event window did not expect them, and
    the run stopped with "a worker was released at another time than predicted"."""
    t = run_with_live_edits(780, [(0.57, "s2", {"autoscale": True}), (1.94, "db", {"read_replicas": 0}),
                                  (3.39, "s1", {"blocking_calls": False}), (5.45, "db", {"primaries": 1}),
                                  (5.89, "db2", {"shards": 3})], 10.0)
    assert t["served"] > 100


@pytest.mark.parametrize("seed", range(100, 160))
def test_no_random_file_with_random_failures_hangs_or_loses_a_request(seed):
    doc = loads(dumps(random_topology(seed, duration_s=10.0)))   # a valid file, as the loader sees it
    with within(120, f"random_topology({seed})"):
        sim = Simulation(doc)
        rng = np.random.default_rng(seed)
        target = 0.0
        while target < 10.0:
            target = min(10.0, target + float(rng.uniform(0.05, 2.0)))
            sim.run_until(target)
            assert target - sim.tick_s - 1e-9 <= sim.now <= target + 1e-9   # progress, never past the target
            # a click at a random moment: fail or recover something, sometimes one copy
            if rng.random() < 0.3:
                node = str(rng.choice([n for n in doc.node_ids()]))
                copies = len(sim.net.node_stations[sim.net.node_ids.index(node)])
                replica = int(rng.integers(copies)) if copies > 1 and rng.random() < 0.5 else None
                (sim.fail if rng.random() < 0.6 else sim.recover)(node, replica)
            t = sim.totals()
            assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
        sim.run_until(10.0)
    assert sim.now == pytest.approx(10.0)


def test_a_run_that_stops_exactly_at_an_event_shows_the_state_its_plots_describe():
    # lb_demo fails Web 2 at 30 s: stopped at 30 s, the picture (node states) and the plots
    # (seconds up to 30) both describe the time before the failure; it happens as the run goes on
    doc = load(Path(__file__).parents[2] / "resources" / "lessons" / "lb_demo.scalelab")
    at = next(e.at_s for e in doc.events if e.action == "fail")
    sim = Simulation(doc)
    sim.advance(at)
    assert not any(s.failed for s in sim.node_states().values())
    assert sim.metrics.failed_rps.sum() == 0
    sim.advance(1.0)
    assert any(s.failed for s in sim.node_states().values())


@pytest.mark.parametrize("algorithm", ["least_response_time", "least_connections"])
def test_an_unchanged_edit_changes_no_choice_of_a_balancer_behind_blocking_servers(algorithm):
    """Found by fuzzing (noop 442, --extras): an internal balancer behind blocking servers,
    on the slower tick-by-tick path, may get a tick's requests in several calls as the
    sweeps' horizons fall, and an edit moves those horizons. A later call saw neither the
    earlier calls' placements (the sweeps admit them later) nor the same response times."""
    d = Document()
    d.add_node(NodeData("c0", "client", params={"rate_rps": 2000.0}))
    d.add_node(NodeData("lb1", "load_balancer", params={}))
    d.add_node(NodeData("s0", "server", params={"queue_limit": 0, "blocking_calls": True}))
    d.add_node(NodeData("s1", "server", params={}))
    d.add_node(NodeData("api", "server", params={"replicas": 3}))
    d.add_node(NodeData("ilb", "load_balancer", params={"algorithm": algorithm}))
    for a, b in (("s0", "api"), ("lb1", "s0"), ("lb1", "s1"), ("c0", "lb1"), ("ilb", "api"), ("s0", "ilb"),
                 ("s1", "ilb")):
        d.add_edge(a, b)
    d.set_settings(seed=442, tick_ms=10.0, duration_s=12.0)
    with within(240, algorithm):
        assert_an_unchanged_edit_changes_nothing(d, 12.0, 442)


def test_an_unchanged_edit_keeps_the_health_checks_that_hold_places_in_a_waiting_room():
    """Found by fuzzing (noop 1308, --extras): health checks admitted at a saturated server
    hold places in its waiting room until they leave. A live edit forgot them (they were
    kept per compiled network): the room looked emptier, and a request it refuses was
    admitted (one refusal moved from second 10 to second 11)."""
    d = Document()
    mix = {"users": 0.5, "orders": 0.5}
    d.add_node(NodeData("c0", "client", params={"table_mix": mix}))
    d.add_node(NodeData("c1", "client", params={"rate_rps": 600.0, "table_mix": mix}))
    d.add_node(NodeData("db", "database", params={"tables": ["users"]}))
    d.add_node(NodeData("db2", "database", params={"tables": ["orders"]}))
    d.add_node(NodeData("lb0", "load_balancer", params={}))
    d.add_node(NodeData("lb1", "load_balancer", params={}))
    d.add_node(NodeData("s0", "server", params={"workers": 1}))
    d.add_node(NodeData("s2", "server", params={"sessions": "local", "blocking_calls": True, "autoscale": True,
                                                "scale_interval_s": 1.0}))
    d.add_node(NodeData("s3", "server", params={"sessions": "local"}))
    for a, b in (("s0", "db"), ("s2", "db"), ("s3", "db"), ("s0", "db2"), ("s2", "db2"), ("s3", "db2"),
                 ("lb0", "s0"), ("lb0", "s2"), ("lb1", "s3"), ("c0", "lb1"), ("c1", "lb0")):
        d.add_edge(a, b)
    d.set_settings(seed=1308, tick_ms=20.0, duration_s=20.0)
    with within(240, "noop 1308"):
        assert_an_unchanged_edit_changes_nothing(d, 12.0, 1308)


@pytest.mark.parametrize("seed", [642])
def test_an_unchanged_edit_changes_no_count_of_a_balancer_in_front_of_blocking_servers(seed):
    """Found by fuzzing (noop 642, --extras): a least-connections balancer in front of a
    blocking API tier, on the tick-by-tick path, counted the requests at its backends when
    the sweeps called it; a request the sweeps had already settled was no longer counted,
    though it was there at the tick's start. It now counts as the one-tick window began."""
    doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=True, data=True, extras=True)))
    with within(240, f"random_topology({seed}, extras)"):
        assert_an_unchanged_edit_changes_nothing(doc, 12.0, seed)


def test_a_blocking_tier_behind_a_caching_proxy_gives_the_same_utilization_however_stepped():
    """Found by fuzzing (sliced 550, --extras): the web server's utilization in seconds 1-2
    was 0.6 % higher when the run was stepped second by second (see the next test)."""
    doc = loads(dumps(random_topology(550, duration_s=12.0, tiers=True, data=True, extras=True)))
    with within(240, "random_topology(550, extras)"):
        assert columns(outcome(doc, [1.0] * 12)[1]) == columns(outcome(doc, [12.0])[1])


def _refusing_api() -> Document:
    """random_topology(550) shrunk: a blocking web server calls a blocking API whose small
    waiting rooms refuse, behind a caching proxy; one API replica fails at 1 s."""
    d = Document()
    d.add_node(NodeData("c1", "client", params={}))
    d.add_node(NodeData("front", "cache", params={"capacity_rps": 300.0}))
    d.add_node(NodeData("s0", "server", params={"sessions": "local", "blocking_calls": True}))
    d.add_node(NodeData("s1", "server", params={"replicas": 2}))
    d.add_node(NodeData("s2", "server", params={"capacity_rps": 20.0, "sessions": "local"}))
    d.add_node(NodeData("api", "server", params={"workers": 2, "queue_limit": 20, "replicas": 2,
                                                 "sessions": "database", "blocking_calls": True}))
    d.add_node(NodeData("cache", "cache", params={"capacity_rps": 300.0}))
    for a, b in (("api", "cache"), ("s0", "api"), ("s1", "api"), ("front", "s0"), ("front", "s2"),
                 ("front", "s1"), ("c1", "front")):
        d.add_edge(a, b)
    add_event(d, 1.0, "fail", "api", 0)
    d.set_settings(seed=550, tick_ms=1.0, duration_s=12.0)
    return d


def _held_utilization(sim: Simulation, node: str, until: float) -> np.ndarray:
    """A blocking server's utilization per closed second from the traces of every request,
    independently of the engine's books: a worker is busy from the start of its request's
    service there until the request leaves the network (its server never fails here)."""
    util = sim.metrics.util[node]
    busy = np.zeros(len(util))
    for tr in sim.traces():
        for h in tr.hops:
            if h.node != node or h.start_s is None:
                continue
            hi = until if tr.outcome == "in_flight" else min(max(tr.end_s, h.end_s), until)
            for k in range(int(h.start_s), min(int(np.ceil(hi)), len(util))):
                busy[k] += max(0.0, min(hi, k + 1) - max(h.start_s, k))
    i = sim.net.node_ids.index(node)
    return np.minimum(busy / sim.net.st_workers[sim.net.node_stations[i]].sum(), 1.0)


@pytest.mark.parametrize("how", ["one call", "1 s", "clicks"])
def test_a_worker_held_for_a_request_refused_downstream_is_busy_until_the_refusal(how):
    """A web worker waits for its API call; the call is refused at the API's full waiting
    room at its arrival, which the engine may decide only after the window in which it
    booked the worker busy up to the window's end (or up to a click failing an API replica).
    The worker was then freed at the refusal but the time booked beyond it stayed: 0.6 %
    too much utilization stepped second by second, 1 % with the clicks (found by fuzzing,
    sliced 550). Checked against the utilization the traces of every request give."""
    sim = Simulation(_refusing_api())
    sim.trace_every(1, cap=10**7)
    with within(240, how):
        if how == "1 s":
            for t in range(1, 13):
                sim.run_until(float(t))
        elif how == "clicks":
            sim.run_until(2.5)
            sim.fail("api", 1)
            sim.run_until(4.3)
            sim.recover("api", 1)
        sim.run_until(12.0)
    refused = [tr for tr in sim.traces() if tr.cause == "queue_full" and tr.hops[-1].node == "api"
               and any(h.node == "s0" for h in tr.hops)]
    assert len(refused) > 20   # the shape this is about: refused at the API, holding a web worker
    assert np.abs(sim.metrics.util["s0"] - _held_utilization(sim, "s0", 12.0)).max() < 1e-9


@pytest.mark.parametrize("seed", [9, 23, 338, 345, 909, 2279])
def test_the_books_agree_with_every_requests_trace(seed):
    """Served, failed, offered, mean, p95, goals over windows, utilization and queues per
    second against the traces of every request (trace_checks.py; odd seeds stepped
    unevenly with random clicks). benchmarks/fuzz.py ``traces`` runs it on many more files."""
    doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=True, data=True, extras=True)))
    with within(240, f"random_topology({seed}, extras)"):
        check_against_traces(doc, seed)


def _sticky_pair(reverse: bool) -> Document:
    """users → a caching proxy → two sticky balancers (least connections, and round robin)
    over one web tier of three replicas: random_topology(670, extras) shrunk."""
    nodes = [NodeData("c0", "client", params={"pattern": {"type": "spike", "at_s": 5.0, "duration_s": 3.0,
                                                          "factor": 3.0}}),
             NodeData("lb0", "load_balancer", params={"algorithm": "least_connections", "affinity": "sticky"}),
             NodeData("lb1", "load_balancer", params={"affinity": "sticky"}),
             NodeData("s0", "server", params={"replicas": 3}),
             NodeData("front", "cache", params={})]
    d = Document()
    for node in (nodes[::-1] if reverse else nodes):
        d.add_node(node)
    for a, b in (("lb0", "s0"), ("lb1", "s0"), ("front", "lb0"), ("front", "lb1"), ("c0", "front")):
        d.add_edge(a, b)
    d.set_settings(seed=670, tick_ms=20.0, duration_s=12.0)
    return d


def test_two_sticky_balancers_sharing_cookies_decide_in_time_order_whatever_the_nodes_order():
    """Found by fuzzing (order 670, --extras): a caching proxy in front of two sticky
    balancers, one least connections and one blind, over the same servers (they share the
    users' cookies, so they decide tick by tick). Within a tick each balancer decided for
    all its requests in turn, in the order of the nodes in the file: which of them pinned
    a user first, and so the numbers, changed with that order (mean 23.00 or 22.95 ms)."""
    with within(240, "sticky pair"):
        (t1, rows1), (t2, rows2) = outcome(_sticky_pair(False), [12.0]), outcome(_sticky_pair(True), [12.0])
    assert t1 == t2
    assert columns(rows1) == columns(rows2)
