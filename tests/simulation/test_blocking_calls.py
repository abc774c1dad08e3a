"""Blocking servers (``blocking_calls``): a sync worker is held until its database answers.

Checked against what theory says: Little's law for the held workers, the closed loop
that caps the requests a blocking tier can have downstream, and the classic case where
more web servers do not help a saturated database."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.cli import csv_text
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import dumps, loads

from test_trust import assert_same_however_sliced
from topologies import add_event

BIG = {"queue_limit": 100_000, "timeout_s": 3600}


def web_db(rate: float, *, blocking: bool | None, workers: int = 8, capacity: float = 400.0, replicas: int = 1,
           db_connections: int = 8, db_capacity: float = 4000.0, web: dict | None = None, db: dict | None = None,
           seed: int = 3, duration: float = 60.0) -> Document:
    """Client → (load balancer →) web → database, reads only."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000, "read_ratio": 1.0}))
    params = {"capacity_rps": capacity, "workers": workers, "replicas": replicas, **BIG, **(web or {})}
    if blocking is not None:
        params["blocking_calls"] = blocking
    d.add_node(NodeData("web", "server", params=params))
    d.add_node(NodeData("db", "database", params={"connections": db_connections, "read_capacity_rps": db_capacity,
                                                  **BIG, **(db or {})}))
    if replicas > 1:
        d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
        d.add_edge("users", "lb")
        d.add_edge("lb", "web")
    else:
        d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=seed, duration_s=duration)
    return d


def run(doc: Document, until: float) -> Simulation:
    sim = Simulation(doc)
    sim.run_until(until)
    assert sim._held_lost == 0            # every held worker was released by its request
    return sim


def mean_after(series: np.ndarray, skip: int) -> float:
    return float(np.nanmean(series[skip:]))


def test_the_default_is_the_non_blocking_engine_of_before():
    without = run(web_db(60, blocking=None, db_connections=2, db_capacity=80), 20)
    off = run(web_db(60, blocking=False, db_connections=2, db_capacity=80), 20)
    assert off.totals() == without.totals()
    assert csv_text(off) == csv_text(without)
    on = run(web_db(60, blocking=True, db_connections=2, db_capacity=80), 20)
    assert on.totals()["arrived"] == off.totals()["arrived"]          # same arrivals, other timings
    assert on.totals()["mean_ms"] != off.totals()["mean_ms"]


def test_blocking_web_utilization_and_queue_follow_the_database_latency():
    # web: 8 workers, 20 ms of own work at 50 req/s: 1 busy worker (12.5 %) if it does not wait
    rows = {}
    for blocking in (False, True):
        for db_name, db in (("fast", dict(db_connections=8, db_capacity=4000)),
                            ("slow", dict(db_connections=2, db_capacity=60))):
            sim = run(web_db(50, blocking=blocking, **db), 40)
            m = sim.metrics
            rows[blocking, db_name] = (mean_after(m.util["web"], 5), mean_after(m.queue["web"], 5),
                                       sim.totals()["mean_ms"])
    own = 50 * 0.020 / 8
    for db_name in ("fast", "slow"):   # non-blocking: the web server's load is its own work only
        assert rows[False, db_name][0] == pytest.approx(own, rel=0.1)
        assert rows[False, db_name][1] < 0.05
    # blocking: held for its own work plus the database call (M/M/2 at 83 %: ~100 ms)
    assert rows[True, "fast"][0] == pytest.approx(50 * (0.020 + 0.002) / 8, rel=0.12)
    assert rows[True, "slow"][0] > 3 * rows[True, "fast"][0]
    assert rows[True, "slow"][1] > 10 * max(rows[True, "fast"][1], 0.01)   # its queue grows too


def test_littles_law_for_held_workers():
    # enough web workers that nobody waits at the web server: a request holds its worker
    # for its whole latency (own work + database call), so busy workers = λ × mean latency
    for db in (dict(db_connections=2, db_capacity=70), dict(db_connections=4, db_capacity=400)):
        sim = run(web_db(50, blocking=True, workers=64, capacity=3200, **db), 60)
        t = sim.totals()
        m = sim.metrics
        busy = mean_after(m.util["web"], 10) * 64
        rate = mean_after(m.served_rps, 10)
        assert busy == pytest.approx(rate * t["mean_ms"] / 1000, rel=0.05)
        # non-blocking: only the own work (20 ms) is busy time
        free = run(web_db(50, blocking=False, workers=64, capacity=3200, **db), 60)
        assert mean_after(free.metrics.util["web"], 10) * 64 == pytest.approx(rate * 64 / 3200, rel=0.08)


@pytest.mark.parametrize("bottleneck", ["database", "web"])
def test_more_web_servers_help_only_when_the_web_tier_is_the_bottleneck(bottleneck):
    if bottleneck == "database":   # 2 connections, 100 reads/s; the web servers are far from full
        kw = dict(workers=16, capacity=400, db_connections=2, db_capacity=100, rate=150)
    else:                          # each web replica: 4 workers × (80 ms + a fast query) ≈ 48 req/s
        kw = dict(workers=4, capacity=50, db_connections=8, db_capacity=4000, rate=200)
    rate = kw.pop("rate")
    out = {}
    for n in (2, 6):
        sim = run(web_db(rate, blocking=True, replicas=n, web={"queue_limit": 200, "timeout_s": 5}, **kw), 20)
        out[n] = mean_after(sim.metrics.served_rps, 8)
    if bottleneck == "database":
        assert out[2] == pytest.approx(100, rel=0.05) and out[6] == pytest.approx(100, rel=0.05)
    else:
        capacity = 4 / (0.080 + 8 / 4000 / 0.9)      # one replica: workers / holding time
        assert out[2] == pytest.approx(2 * capacity, rel=0.06)
        assert out[6] == pytest.approx(rate, rel=0.05)   # six replicas carry all of it


def test_a_saturated_database_fills_the_blocking_web_tier_not_its_own_queue():
    # 150 req/s into a database that does 100: blocking web workers (2 × 8) cap what reaches it
    db = dict(db_connections=2, db_capacity=100, db={"queue_limit": 50, "timeout_s": 30})
    web = {"queue_limit": 100, "timeout_s": 2}
    blocking = run(web_db(150, blocking=True, replicas=2, workers=8, capacity=800, web=web, **db), 20)
    t = blocking.totals()
    assert t["failed_by_cause"]["queue_full"] + t["failed_by_cause"]["timeout"] > 0.2 * t["arrived"]
    assert np.nanmax(blocking.metrics.queue["db"]) <= 16 - 2        # at most 16 held, 2 in service
    assert np.nanmax(blocking.metrics.queue["web"]) > 50          # the web servers' queues fill instead
    free = run(web_db(150, blocking=False, replicas=2, workers=8, capacity=800, web=web, **db), 20)
    assert np.nanmax(free.metrics.queue["db"]) >= 45              # non-blocking: the database's own queue fills
    assert np.nanmax(free.metrics.queue["web"]) < 5


def test_a_failed_database_frees_the_workers_at_once():
    doc = web_db(50, blocking=True, workers=8, db_connections=2, db_capacity=60, duration=30)
    add_event(doc, 10.0, "fail", "db")
    sim = run(doc, 30)
    util = sim.metrics.util["web"]
    assert util[2:10].mean() > 0.3                         # held by a slow database
    assert util[12:30].mean() == pytest.approx(50 * 0.020 / 8, rel=0.12)   # own work only
    assert sim.totals()["failed_by_cause"]["backend_down"] == pytest.approx(50 * 20, rel=0.1)


@pytest.mark.parametrize("seed", [1, 2])
def test_blocking_runs_give_the_same_numbers_however_they_are_sliced(seed):
    doc = web_db(120, blocking=True, replicas=2, workers=4, capacity=120, db_connections=2, db_capacity=150,
                 web={"queue_limit": 20, "timeout_s": 1.5}, seed=seed)
    add_event(doc, 4.0, "fail", "web", 1)
    add_event(doc, 7.0, "recover", "web", 1)
    assert_same_however_sliced(loads(dumps(doc)), 10.0, seed)


def test_requests_are_conserved_at_every_moment():
    doc = web_db(150, blocking=True, replicas=2, workers=4, capacity=120, db_connections=2, db_capacity=120,
                 web={"queue_limit": 30, "timeout_s": 1.0})
    sim = Simulation(doc)
    rng = np.random.default_rng(7)
    t = 0.0
    while t < 12.0:
        t += float(rng.uniform(0.01, 0.8))
        sim.run_until(t)
        if rng.random() < 0.2:
            (sim.fail if rng.random() < 0.5 else sim.recover)("db")
        tot = sim.totals()
        assert tot["arrived"] == tot["served"] + tot["failed"] + tot["in_flight"]
    assert sim._held_lost == 0


@pytest.mark.parametrize("algorithm", ["least_connections", "power_of_two", "round_robin"])
def test_a_blocking_server_without_downstream_calls_is_an_ordinary_server(algorithm):
    """Sync workers hold their worker until the downstream calls return: with none, the
    request leaves at the end of its service, as at any server. The same numbers,
    request for request, whatever the balancer (the load-aware ones count the same
    connections), overloaded (queue full, timeouts) and with a failure."""
    def doc(blocking: bool) -> Document:
        d = Document()
        d.add_node(NodeData("users", "client", params={"rate_rps": 260, "users": 2000}))
        d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm}))
        for name, cap in (("big", 200.0), ("small", 50.0)):
            d.add_node(NodeData(name, "server", params={"capacity_rps": cap, "workers": 2, "queue_limit": 40,
                                                        "timeout_s": 0.5, "blocking_calls": blocking}))
            d.add_edge("lb", name)
        d.add_edge("users", "lb")
        add_event(d, 8.0, "fail", "big")
        add_event(d, 12.0, "recover", "big")
        d.set_settings(seed=4, duration_s=20)
        return d
    off, on = run(doc(False), 20), run(doc(True), 20)
    t = on.totals()
    assert t["served"] > 3000 and t["failed"] > 50     # overloaded: it is a real test of the same numbers
    assert t == off.totals()
    assert csv_text(on) == csv_text(off)
