"""Edits while a run goes on (Simulation.update_document): what the edited network keeps.

test_trust.py checks the general property (an edit that changes nothing changes no
number) on random files; these check single pieces of state on small files, each
against what a real system does.
"""
from __future__ import annotations

import numpy as np

from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import dumps, loads


def _edited(doc: Document, node: str, params: dict) -> Document:
    new = loads(dumps(doc))
    new.set_params(node, params)
    return new


def saturated_server(queue_limit: int) -> Document:
    """100 req/s at a server that serves 10 req/s with one worker: its waiting room fills."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 100.0}))
    d.add_node(NodeData("app", "server", params={"capacity_rps": 10.0, "workers": 1, "service": "deterministic",
                                                 "queue_limit": queue_limit, "timeout_s": 600.0}))
    d.add_edge("users", "app")
    d.set_settings(seed=5, duration_s=30.0)
    return d


def waiting(sim: Simulation) -> int:
    return int(sim.node_states()["app"].queue)


def test_a_full_waiting_room_stays_full_across_an_edit():
    # a room of 10 places, full: an edit elsewhere in the document (the label) must not empty
    # its record of who waits, else the next arrivals are admitted beyond the limit
    doc = saturated_server(10)
    sim = Simulation(doc)
    sim.run_until(5.0)
    assert waiting(sim) == 10
    relabeled = loads(dumps(doc))
    relabeled.set_label("app", "Web")
    sim.update_document(relabeled)
    for t in np.arange(5.01, 7.0, 0.01):
        sim.run_until(float(t))
        assert waiting(sim) <= 10, t


def test_a_smaller_waiting_room_refuses_until_fewer_wait_than_its_new_size():
    # queue_limit 10 -> 4 with 10 waiting: nobody waiting is sent away (as NGINX or HAProxy
    # reloads keep their connections), but arrivals are refused until fewer than 4 wait
    doc = saturated_server(10)
    sim = Simulation(doc)
    sim.run_until(5.0)
    sim.update_document(_edited(doc, "app", {"queue_limit": 4}))
    seen = []
    for t in np.arange(5.01, 9.0, 0.01):
        sim.run_until(float(t))
        seen.append(waiting(sim))
    # one served every 100 ms: the line shrinks by one each time, never grows past it
    assert 9 <= seen[0] <= 10 and all(b <= max(a, 4) for a, b in zip(seen, seen[1:]))
    assert seen[-1] == 4   # refilled to the new size, and not beyond


def test_a_larger_waiting_room_fills_to_its_new_size():
    doc = saturated_server(10)
    sim = Simulation(doc)
    sim.run_until(5.0)
    sim.update_document(_edited(doc, "app", {"queue_limit": 25}))
    sim.run_until(8.0)
    # 100 arrivals/s against 10 served/s fill 15 more places in well under 3 s
    assert waiting(sim) == 25


def two_caches() -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 400.0, "items": 2000, "zipf_s": 0.9,
                                                   "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin"}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 20_000, "connections": 64}))
    for i in (0, 1):
        d.add_node(NodeData(f"app{i}", "server", params={"capacity_rps": 20_000, "workers": 64}))
        d.add_node(NodeData(f"cache{i}", "cache", params={"capacity_items": 200, "ttl_s": 600.0}))
        d.add_edge("lb", f"app{i}")
        d.add_edge(f"app{i}", f"cache{i}")
        d.add_edge(f"cache{i}", "db")
    d.add_edge("users", "lb")
    d.set_settings(seed=11, duration_s=60.0)
    return d


def test_warm_caches_stay_warm_across_an_edit_that_leaves_them_as_they_were():
    # two caches warm up over ~30 s; a live edit of something else (the database's waiting
    # room, never more than a few deep here) must not restart them cold: the database sees
    # the same misses per second as without it (before 2026-11-30 only a lone cache kept its
    # state: with two, both went cold)
    doc = two_caches()
    plain = Simulation(doc)
    plain.run_until(60.0)
    edited = Simulation(doc)
    edited.run_until(30.0)
    edited.update_document(_edited(doc, "db", {"queue_limit": 500}))
    edited.run_until(60.0)
    for i in (0, 1):
        a = plain.metrics.flow[(f"cache{i}", "db")][30:]
        b = edited.metrics.flow[(f"cache{i}", "db")][30:]
        assert np.array_equal(a, b), i
    # and the point of it: warm, they pass on well under half of what reaches them
    assert edited.metrics.flow[("cache0", "db")][31:].sum() < 0.5 * edited.metrics.flow[("app0", "cache0")][31:].sum()


def test_an_edited_cache_restarts_cold():
    # a cache whose size changes restarts (memcached -m needs a restart): its misses jump
    doc = two_caches()
    sim = Simulation(doc)
    sim.run_until(30.0)
    sim.update_document(_edited(doc, "cache0", {"capacity_items": 300}))
    sim.run_until(34.0)
    f = sim.metrics.flow
    miss = f[("cache0", "db")] / np.maximum(f[("app0", "cache0")], 1)
    other = f[("cache1", "db")] / np.maximum(f[("app1", "cache1")], 1)
    assert miss[30] > other[30] + 0.3   # cold against warm, in the second after the edit


def sync_tier_with_replicas() -> Document:
    """A sync web tier whose workers wait for a database with two slow read replicas."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 150.0, "read_ratio": 1.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 2000.0, "workers": 16, "blocking_calls": True}))
    d.add_node(NodeData("db", "database", params={"connections": 4, "read_capacity_rps": 200.0,
                                                  "read_replicas": 2}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=8, duration_s=20.0)
    return d


def test_requests_lost_with_a_removed_replica_free_the_workers_waiting_for_them():
    # read_replicas 2 -> 1 while reads are at the second replica: they fail (node_failed) at
    # the edit, and the web workers waiting for them are free at once, as the worker of a
    # real server is when its database connection drops; none stays held for ever
    doc = sync_tier_with_replicas()
    sim = Simulation(doc)
    sim.run_until(10.0)
    db = sim.net.node_stations[sim.net.node_ids.index("db")]
    at_last = sum(int((p.st == db[-1]).sum()) for p in sim.pending)
    assert at_last > 0   # the replica removed has reads in hand
    failed_before = sim.totals()["failed_by_cause"]["node_failed"]
    sim.update_document(_edited(doc, "db", {"read_replicas": 1}))
    assert sim.totals()["failed_by_cause"]["node_failed"] - failed_before == at_last
    in_flight = np.concatenate([p.key for p in sim.pending])
    assert np.isin(sim._h_key, in_flight).all()   # a worker is held only for a request still on its way
    sim.run_until(20.0)
    assert sim._held_lost == 0   # every held worker was released by its own request
    t = sim.totals()
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]


def test_a_balancer_added_during_a_run_checks_on_its_own_grid():
    # its health checks reach the backends at anchor + k × interval (health.py), and its
    # decisions must be made at those same instants, from the edit on
    doc = saturated_server(10)
    sim = Simulation(doc)
    sim.run_until(3.37)
    new = loads(dumps(doc))
    new.add_node(NodeData("lb", "load_balancer", params={"health_interval_s": 2.0}))
    new.remove_edge("users", "app")
    new.add_edge("users", "lb")
    new.add_edge("lb", "app")
    sim.update_document(new)
    h = sim.balancers[0].health
    k = (h.next_check - h.anchor) / h.interval
    assert abs(k - round(k)) < 1e-9 and sim.now <= h.next_check < sim.now + h.interval
    assert h.next_check in h.times_in(sim.now, sim.now + h.interval)
