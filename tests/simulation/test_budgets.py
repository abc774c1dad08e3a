"""Budgets: what a file implies is estimated before anything is built; what is beyond a budget
is refused with one line naming the node and the parameter; what is accepted keeps bounded
memory (metric rows merge in long runs, in-flight requests are capped)."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest

from simulation import budget, cli, metrics as metrics_module
from simulation.compiler import SimulationError, compile_document
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import document_from_dict, load
from simulation.metrics import Metrics, percentiles_ms

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "resources" / "lessons").glob("*.scalelab"))


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def limits():
    return _module("limits_bench")


def _refusal(data: dict) -> str:
    with pytest.raises(SimulationError) as err:
        Simulation(document_from_dict(data))
    message = str(err.value)
    assert "\n" not in message
    return message


# ----- refusals: one line, naming the node and the parameter ---------------------------------------
def test_huge_stations_file_is_refused_naming_workers(limits):
    data = limits.huge_stations()
    assert len(json.dumps(data)) < 5000                        # a small file ...
    message = _refusal(data)                                   # ... that would need 409,600,000 worker slots
    assert message.startswith('server "s0": workers = 1,024') and "worker slots: 409,600,000 (6.5 GB)" in message
    assert f"at most {budget.MAX_WORKER_SLOTS:,}" in message


def test_spike_to_ten_billion_requests_per_second_is_refused(limits):
    message = _refusal(limits.spike())
    assert message.startswith('client "users": rate_rps × pattern factor = 10,000,000 × 1000')
    assert "10,000,000,000 req/s at the peak" in message and "1,000,000 req/s" in message


def test_clients_together_beyond_the_peak_budget_are_refused():
    d = Document()
    for i in range(3):
        d.add_node(NodeData(f"c{i}", "client", params={"rate_rps": 400_000.0 + i}))
        d.add_node(NodeData(f"s{i}", "server"))
        d.add_edge(f"c{i}", f"s{i}")
    with pytest.raises(SimulationError, match=r'clients send 1,200,003 req/s together at the peak \(the most: '
                                              r'client "c2", 400,002\)'):
        compile_document(d)


def test_replica_to_replica_routes_are_refused_with_advice():
    d = Document()
    d.add_node(NodeData("users", "client"))
    d.add_node(NodeData("front", "server", params={"replicas": 2500, "queue_limit": 1}))
    d.add_node(NodeData("back", "server", params={"replicas": 2000, "queue_limit": 1}))
    d.add_edge("users", "front")
    d.add_edge("front", "back")
    with pytest.raises(SimulationError) as err:
        compile_document(d)
    assert str(err.value) == ('server "front" (2,500 replicas) calls server "back" (2,000 replicas): 5,000,000 '
                              "replica-to-replica routes in all; at most 4,000,000 (put a load balancer between them)")


def test_too_many_stations_backends_users_and_items_are_refused():
    def chain(**server):
        d = Document()
        d.add_node(NodeData("users", "client"))
        d.add_node(NodeData("lb", "load_balancer"))
        d.add_edge("users", "lb")
        for i in range(6):
            d.add_node(NodeData(f"s{i}", "server", params={"queue_limit": 0, **server}))
            d.add_edge("lb", f"s{i}")
        return d

    with pytest.raises(SimulationError, match=r'^load balancer "lb" has 60,000 backend replicas .*at most 50,000$'):
        compile_document(chain(replicas=10_000))
    d = chain(replicas=1)
    for i in range(20):
        d.add_node(NodeData(f"t{i}", "server", params={"replicas": 10_000, "queue_limit": 0}))
        d.add_edge("users", f"t{i}")
    with pytest.raises(SimulationError, match=r'^server "t0": replicas = 10,000 makes 200,007 replicas in all; '
                                              r'at most 200,000$'):
        compile_document(d)
    d = Document()
    for i in range(6):
        d.add_node(NodeData(f"c{i}", "client", params={"users": 10_000_000}))
        d.add_node(NodeData(f"lb{i}", "load_balancer", params={"affinity": "sticky"}))
        d.add_edge(f"c{i}", f"lb{i}")
    d.add_node(NodeData("web", "server", params={"sessions": "local"}))   # a session slot per user
    d.add_edge("lb0", "web")
    with pytest.raises(SimulationError, match=r'^client "c5": users = 10,000,000 \(60,000,000 users in all × 28 bytes'):
        compile_document(d)
    d = Document()
    d.add_node(NodeData("cache", "cache"))
    for i in range(40):
        d.add_node(NodeData(f"c{i}", "client", params={"items": 1_000_000}))
        d.add_edge(f"c{i}", "cache")
    with pytest.raises(SimulationError, match=r'^client "c39": items = 1,000,000 \(popularity tables of 40 clients '
                                              r'and 1 cache: 328 MB\); at most 256 MB$'):
        compile_document(d)


def test_parts_that_fit_alone_but_not_together_are_refused():
    # 25,600,000 users × 16 bytes (a session, 3 sticky cookies) = 391 MB, 24,000,000 items
    # (40 clients, 3 caches) = 215 MB, 30,000 backends = 146 MB, 24,026,576 waiting places = 183 MB,
    # 7,502,000 worker slots = 122 MB: each under its own budget, 1.1 GB together
    d = Document()
    d.add_node(NodeData("db", "database", params={"read_replicas": 1}))
    for i in range(3):
        d.add_node(NodeData(f"lb{i}", "load_balancer", params={"affinity": "sticky"}))
        d.add_node(NodeData(f"web{i}", "server", params={"replicas": 10_000, "workers": 250, "queue_limit": 800,
                                                         "sessions": "local" if i == 0 else "cookie"}))
        d.add_node(NodeData(f"cache{i}", "cache"))
        d.add_edge(f"lb{i}", f"web{i}")
        d.add_edge(f"web{i}", f"cache{i}")
        d.add_edge(f"cache{i}", "db")
    for i in range(40):
        d.add_node(NodeData(f"c{i}", "client", params={"users": 640_000, "items": 600_000}))
        d.add_edge(f"c{i}", f"lb{i % 3}")
    with pytest.raises(SimulationError) as err:
        compile_document(d)
    assert str(err.value) == ("this network needs about 1.1 GB (the most: user state, 391 MB); at most 1.0 GB "
                              "for all its parts together")


def test_scalelab_check_refuses_what_the_engine_refuses(tmp_path, capsys, limits):
    path = tmp_path / "huge.scalelab"
    path.write_text(json.dumps(limits.huge_stations()))
    assert cli.main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'server "s0": workers = 1,024' in err[0]


def test_the_work_of_a_run_is_estimated_from_the_pattern():
    d = Document()
    d.add_node(NodeData("users", "client", params={
        "rate_rps": 1_000_000.0, "pattern": {"type": "steps", "times_s": [100.0, 200.0], "factors": [0.5, 0.1]}}))
    d.add_node(NodeData("web", "server"))
    d.add_edge("users", "web")
    net = compile_document(d)
    # ∫ rate: 100 s × 1e6 + 100 s × 5e5 + (D − 200) s × 1e5, checked against a fine Riemann sum
    for duration in (50.0, 150.0, 1000.0):
        t = (np.arange(1_000_000) + 0.5) * duration / 1_000_000
        from simulation.patterns import rate_factor
        riemann = 1e6 * rate_factor(net.clients[0].pattern, t).mean() * duration
        assert budget.check_work(d, duration) == pytest.approx(riemann, rel=1e-4)
    for pattern in ({"type": "ramp", "start_s": 10, "end_s": 70, "from_factor": 0.2, "to_factor": 3},
                    {"type": "spike", "at_s": 30, "duration_s": 25, "factor": 7},
                    {"type": "diurnal", "period_s": 97, "amplitude": 0.8, "peak_s": 11}):
        for duration in (20.0, 60.0, 500.0):
            t = (np.arange(200_000) + 0.5) * duration / 200_000
            from simulation.patterns import rate_factor
            assert budget.mean_factor(pattern, duration) == pytest.approx(rate_factor(pattern, t).mean(), rel=1e-4)
    d.set_settings(duration_s=20_000.0)           # 1e6 + 5e5 ... ≈ 2.1e9 requests: fine
    Simulation(d)
    d.set_settings(duration_s=200_000.0)          # ≈ 2e10 requests
    with pytest.raises(SimulationError, match=r'^client "users": about 20,130,000,000 requests in 200000 s'):
        Simulation(d)
    sim = Simulation(d, duration_s=1000.0)        # a shorter run of the same file is fine
    d.set_params("users", {"pattern": {"type": "constant"}})
    d.set_settings(duration_s=10_000.0)          # 10⁶ req/s × 10,000 s = 10¹⁰ requests: the most allowed
    sim.update_document(d)
    d.set_settings(duration_s=10_001.0)
    with pytest.raises(SimulationError, match=r'^client "users": about 10,001,000,000 requests in 10001 s'):
        sim.update_document(d)                    # a live edit is checked too (the designer runs to duration_s)


def test_lessons_and_benchmark_scenarios_are_well_inside_every_budget():
    bench = _module("engine_bench")
    docs = {p.name: load(p) for p in LESSONS}
    docs.update(S1=bench.build_s1(), S2=bench.build_s2("replicas"), S2_nodes=bench.build_s2("nodes"))
    for name, doc in docs.items():
        net = compile_document(doc)
        e = net.estimate
        assert not e.problems and e.memory_bytes < 200 * 2**20, name
        assert e.peak_rps <= budget.MAX_PEAK_RPS / 10, name
        duration = {"S1": 3600.0, "S2": 60.0, "S2_nodes": 60.0}.get(name, float(doc.settings["duration_s"]))
        assert budget.check_work(doc, duration) < budget.MAX_REQUESTS / 1000, name


def test_the_estimate_matches_what_is_built():
    d = Document()
    d.add_node(NodeData("users", "client", params={"users": 5000}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "consistent_hash", "affinity": "sticky"}))
    d.add_node(NodeData("web", "server", params={"replicas": 7, "workers": 3, "queue_limit": 5000, "sessions": "local"}))
    d.add_node(NodeData("auto", "server", params={"autoscale": True, "max_replicas": 4, "workers": 16}))
    d.add_node(NodeData("cache", "cache", params={"connections": 8}))
    d.add_node(NodeData("db", "database", params={"read_replicas": 2, "connections": 40, "queue_limit": 20}))
    for s, t in (("users", "lb"), ("lb", "web"), ("lb", "auto"), ("web", "cache"), ("auto", "cache"),
                 ("cache", "db"), ("web", "db")):
        d.add_edge(s, t)
    sim = Simulation(d)
    e, net = sim.net.estimate, sim.net
    assert e.stations == net.n_stations == 1 + 7 + 4 + 1 + 3
    assert e.worker_slots == sim.stations.free.size == net.n_stations * 40
    assert e.waiting_slots == len(sim.stations.ring) == 4096 + 4096 * 7 + 1000 * 4 + 4096 + 20 * 3
    assert e.routes == len(net.route_target) == 7 * (1 + 3) + 4 * 1 + 1 * 3
    assert e.backends == sum(len(b.backends) for b in net.balancers) == 11
    # a session slot (one level of servers keeps sessions in memory) and a sticky cookie per user
    assert e.user_bytes == 5000 * (4 + 4) == sim.sessions.nbytes + sim.balancers[0].cookie.nbytes
    d.set_params("web", {"sessions": "cookie"})   # none in memory: no session slots at all
    assert Simulation(d).sessions.nbytes == 0 == compile_document(d).estimate.user_bytes - 5000 * 4


# ----- in flight: bounded while running ---------------------------------------------------------------
def test_too_many_requests_in_flight_stop_the_run_with_one_line(monkeypatch):
    monkeypatch.setattr("simulation.engine.MAX_IN_FLIGHT", 3000)
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 1000.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 10.0, "queue_limit": 1_000_000, "timeout_s": 3600}))
    d.add_edge("users", "web")
    sim = Simulation(d)
    with pytest.raises(SimulationError) as err:
        sim.advance(60.0)
    # ~990 req/s pile up at web: the run stops at the end of the first window (10 s) past the limit
    assert sim.now <= 10.0 and 3000 < sim.in_flight < 3000 + 100_000
    message = str(err.value)
    assert message.startswith('server "web": ') and "lower its queue_limit or timeout_s" in message
    assert f"{sim.in_flight:,} in flight in all" in message


def test_a_live_edit_beyond_a_budget_is_refused_and_the_run_goes_on():
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 50.0}))
    d.add_node(NodeData("web", "server"))
    d.add_edge("users", "web")
    sim = Simulation(d)
    sim.advance(5.0)
    edited = d.copy()
    edited.set_params("web", {"replicas": 10_000, "workers": 1024})
    with pytest.raises(SimulationError, match='^server "web": workers = 1,024'):
        sim.update_document(edited)
    sim.advance(5.0)
    assert sim.net.n_stations == 1 and sim.served > 0 and sim.metrics.n == 10


# ----- metrics: bounded rows, exact merged values ------------------------------------------------------
def test_row_cap_depends_on_the_width_of_a_row():
    assert metrics_module.row_cap(40 + 1042) == 4096
    assert metrics_module.row_cap(9000) == 1024            # 16,000,000 // 9,000 = 1,777 → a power of two
    assert metrics_module.row_cap(10_000_000) == 64


def _single(rate: float, seed: int = 2) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "pattern": {
        "type": "diurnal", "period_s": 300, "amplitude": 0.9, "peak_s": 100}}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 60.0, "workers": 2, "queue_limit": 20}))
    d.add_edge("users", "web")
    d.set_settings(seed=seed)
    return d


def test_merged_rows_are_exactly_the_rows_of_their_span(monkeypatch):
    seconds = 500
    recorded: list[dict] = []
    original = Metrics.extend

    def spy(self, columns, causes, nodes, util, queue, replicas, edges, flow, hist=None, lat_ns=None, util_max=None):
        recorded.append({"cols": {k: np.array(v) for k, v in columns.items()}, "causes": causes.copy(),
                         "util": util.copy(), "flow": flow.copy(), "hist": hist.copy(), "lat": lat_ns.copy()})
        return original(self, columns, causes, nodes, util, queue, replicas, edges, flow, hist, lat_ns, util_max)

    monkeypatch.setattr(Metrics, "extend", spy)
    full = Simulation(_single(40.0))
    full.advance(seconds)
    assert full.metrics.n == seconds and (full.metrics.span_s == 1).all()
    per_second = {k: np.concatenate([r["cols"][k] for r in recorded]) for k in recorded[0]["cols"]}
    hist = np.concatenate([r["hist"] for r in recorded])
    lat = np.concatenate([r["lat"] for r in recorded])
    util = np.concatenate([r["util"] for r in recorded])[:, 0]
    flow = np.concatenate([r["flow"] for r in recorded])[:, 0]
    monkeypatch.setattr(Metrics, "extend", original)

    monkeypatch.setattr(metrics_module, "MAX_ROWS", 32)
    small = Simulation(_single(40.0))
    for _ in range(7):                                      # in uneven slices, as the designer does
        small.advance(seconds / 7)
    m = small.metrics
    assert m.seconds == seconds and m.width == 16 and m.n == 32           # 500 s = 31 rows of 16 s + 4 s
    assert m.span_s.sum() == seconds and (m.span_s[:-1] == 16).all() and m.span_s[-1] == 4
    assert (m.time_s == np.cumsum(m.span_s)).all()
    assert small.totals() == full.totals()                  # the simulation itself is unchanged
    for r in range(m.n):
        b = int(m.time_s[r])
        a = b - int(m.span_s[r])
        sl = slice(a, b)
        assert m.offered_rps[r] == pytest.approx(per_second["offered_rps"][sl].mean(), rel=1e-12)
        assert m.served_rps[r] == pytest.approx(per_second["served_rps"][sl].mean(), rel=1e-12)
        assert m.failed_rps[r] == pytest.approx(per_second["failed_rps"][sl].mean(), rel=1e-12, abs=1e-12)
        assert m.util["web"][r] == pytest.approx(util[sl].mean(), rel=1e-12)
        assert m.flow[("users", "web")][r] == pytest.approx(flow[sl].mean(), rel=1e-12)
        served = per_second["served_rps"][sl].sum()
        assert m.mean_ms[r] == pytest.approx(lat[sl].sum() / served / 1e6, rel=1e-12)
        expect = percentiles_ms(hist[sl].sum(axis=0)[None, :], (0.5, 0.95, 0.99))[0]
        assert [m.p50_ms[r], m.p95_ms[r], m.p99_ms[r]] == pytest.approx(expect.tolist(), rel=1e-12)
    # the latest second and the recent seconds stay per second
    assert small.metrics.latest("util")["web"] == pytest.approx(util[-1])
    assert small.metrics.recent_util("web", 15) == pytest.approx(util[-15:])
    assert small.node_states()["web"].utilization == full.node_states()["web"].utilization
    assert small.edge_flows() == full.edge_flows()


def test_the_csv_says_which_span_each_row_covers(monkeypatch):
    monkeypatch.setattr(metrics_module, "MAX_ROWS", 64)
    sim = Simulation(_single(20.0))
    sim.advance(300.0)
    rows = list(csv.DictReader(io.StringIO(cli.csv_text(sim))))
    assert len(rows) == sim.metrics.n == 38
    assert [float(r["span_s"]) for r in rows[:3]] == [8.0, 8.0, 8.0]
    assert sum(float(r["span_s"]) for r in rows) == 300.0 and float(rows[-1]["time_s"]) == 300.0


def test_an_idle_wide_network_keeps_its_metrics_bounded(monkeypatch):
    # a wide network (201 nodes) with a small cell budget: the rows stop growing
    monkeypatch.setattr(metrics_module, "METRIC_CELLS", 200_000)
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 0.0}))
    for i in range(200):
        d.add_node(NodeData(f"s{i}", "server"))
        d.add_edge("users", f"s{i}")
    sim = Simulation(d)
    cap = metrics_module.row_cap(17 + 8 + 3 * 200 + 200 + metrics_module.N_BINS // 2 + 2)
    assert cap == 64
    sizes = []
    for _ in range(4):
        sim.advance(500.0)
        m = sim.metrics
        assert m.n <= cap and m.span_s.sum() == sim.now
        sizes.append(sum(k.data.nbytes for k in (m._cols, m._causes, m._util, m._queue, m._replicas, m._flow))
                     + m._hist.nbytes)
    assert sizes[-1] == sizes[1]                             # no growth once the cap is reached
    assert sizes[-1] < (cap + 2) * 2 * (17 + 8 + 800 + 2084) * 8
