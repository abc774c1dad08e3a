"""Smoke test of benchmarks/engine_bench.py: its scenarios are the topologies they claim to be,
and S1 runs to a sensible answer. No timing here (that is the benchmark's job), and no SimPy
(it is only in the "bench" extra)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from simulation.engine import Simulation

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("engine_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _servers(doc):
    return [n for n in doc.node_ids() if doc.kind(n) == "server"]


def test_s1_topology(bench):
    doc = bench.build_s1(seed=3)
    assert doc.settings["seed"] == 3
    assert [doc.kind(n) for n in doc.node_ids()][:2] == ["client", "load_balancer"]
    client, lb = doc.node_ids()[:2]
    assert doc.param(client, "rate_rps") == 900
    assert doc.param(client, "pattern") == {"type": "constant"}
    assert doc.param(lb, "algorithm") == "random"
    assert doc.param(lb, "capacity_rps") >= 1e7
    assert doc.successors(client) == [lb]
    servers = _servers(doc)
    assert len(servers) == 10 and doc.successors(lb) == servers
    for s in servers:
        p = doc.params(s)
        assert (p["capacity_rps"], p["workers"], p["service"], p["replicas"]) == (100, 1, "exponential", 1)
        assert p["queue_limit"] >= 100_000 and p["timeout_s"] >= 3600
        assert doc.successors(s) == []


def test_s1_runs_near_theory(bench):
    """300 s of S1: nothing lost, requests conserved, mean response time near W = 0.1 s
    (one run's statistical error is about ±3.5% here, so 15% is a loose, non-flaky bound)."""
    sim = Simulation(bench.build_s1(seed=1), seed=1)
    sim.advance(300.0)
    t = sim.totals()
    assert t["failed"] == 0
    assert t["arrived"] == t["served"] + t["in_flight"]
    assert abs(t["arrived"] - 270_000) < 5 * 270_000 ** 0.5
    assert t["mean_ms"] == pytest.approx(100.0, rel=0.15)
    w, p95 = bench.theory(900.0, 10, 100.0)
    assert w == pytest.approx(0.1) and p95 == pytest.approx(0.29957, rel=1e-4)


@pytest.mark.parametrize("layout, n_server_nodes", [("replicas", 1), ("nodes", 1000)])
def test_s2_topology(bench, layout, n_server_nodes):
    doc = bench.build_s2(layout)
    client, lb = doc.node_ids()[:2]
    assert doc.param(client, "rate_rps") == 90_000
    assert doc.param(lb, "algorithm") == "random"
    servers = _servers(doc)
    assert len(servers) == n_server_nodes
    assert sum(doc.replicas(s) for s in servers) == 1000
    assert all(doc.param(s, "capacity_rps") == 100 and doc.param(s, "workers") == 1 for s in servers)


def test_erlang_c_against_closed_forms(bench):
    lam, mu = 70.0, 100.0
    assert bench.erlang_c(1, lam, mu) == pytest.approx(lam / (mu * (mu - lam)))       # M/M/1: Wq = λ/(μ(μ−λ))
    rho = 150.0 / 200.0                                                              # M/M/2, λ = 150, μ = 100
    assert bench.erlang_c(2, 150.0, mu) == pytest.approx(2 * rho ** 2 / (1 + rho) / (2 * mu - 150.0))


def test_s3_topology_and_short_run_near_theory(bench):
    doc = bench.build_s3(seed=2)
    client, web, db = doc.node_ids()
    assert [doc.kind(n) for n in (client, web, db)] == ["client", "server", "database"]
    assert doc.successors(client) == [web] and doc.successors(web) == [db]
    assert (doc.param(client, "rate_rps"), doc.param(client, "read_ratio")) == (2000, 0.9)
    assert (doc.param(web, "replicas"), doc.param(web, "workers"), doc.param(web, "capacity_rps")) == (2, 64, 5000)
    assert (doc.param(db, "connections"), doc.param(db, "read_capacity_rps"),
            doc.param(db, "write_capacity_rps")) == (20, 3000, 1000)
    w, _ = bench.theory_mean("S3")
    # server 64/5000 s = 12.8 ms (almost never waits) + database: 8 ms service at ρ = 0.8 plus its wait
    assert 0.0208 < w < 0.0225
    sim = Simulation(doc, seed=2)
    sim.advance(20.0)
    t = sim.totals()
    assert t["failed"] == 0 and abs(t["arrived"] - 40_000) < 5 * 40_000 ** 0.5
    assert t["mean_ms"] / 1000 == pytest.approx(w, rel=0.15)


@pytest.mark.parametrize("algorithm", ["least_connections", "least_response_time"])
def test_s4_topology_and_short_run_between_the_bounds(bench, algorithm):
    doc = bench.build_s4(algorithm, seed=1)
    client, lb = doc.node_ids()[:2]
    assert doc.param(lb, "algorithm") == algorithm and len(_servers(doc)) == 10
    lower, _ = bench.theory_mean("S4lc" if algorithm == "least_connections" else "S4lrt")
    assert lower == pytest.approx(0.01 + bench.erlang_c(10, 900.0, 100.0))
    sim = Simulation(doc, seed=1)
    sim.advance(20.0)
    t = sim.totals()
    assert t["failed"] == 0
    # no balancer beats one shared queue (M/M/10); a load-aware one beats a random split (M/M/1: 100 ms)
    assert lower * 1000 < t["mean_ms"] < 100.0


def test_simpy_models_of_s3_and_s4_run_near_theory(bench):
    pytest.importorskip("simpy")
    import sys
    sys.path.insert(0, str(BENCH.parent))
    import simpy_models

    w3, _ = bench.theory_mean("S3")
    r = simpy_models.server_database(2000.0, 2, 64, 5000.0, 20, 3000.0, 1000.0, 0.9, 10.0, seed=1)
    assert abs(r.arrived - 20_000) < 5 * 20_000 ** 0.5 and r.mean_s == pytest.approx(w3, rel=0.15)
    lower, _ = bench.theory_mean("S4lc")
    for algorithm in ("least_connections", "least_response_time"):
        r = simpy_models.least_balanced(900.0, 10, 100.0, 20.0, seed=1, algorithm=algorithm)
        assert lower * 0.8 < r.mean_s < 0.1


def test_s5_is_a_blocking_tier_and_its_theory_matches_a_lindley_recursion(bench):
    doc = bench.build_s5(seed=1)
    client, web, db = doc.node_ids()
    assert [doc.kind(n) for n in (client, web, db)] == ["client", "server", "database"]
    assert doc.successors(web) == [db] and doc.param(web, "blocking_calls") is True
    assert (doc.param(web, "replicas"), doc.param(web, "workers"), doc.param(web, "capacity_rps")) == (4, 1, 300)
    w, _ = bench.theory_mean("S5")
    # one server: Poisson 225/s, service = its own exp(1/300 s) + the held query exp(0.5 ms)
    rng = np.random.default_rng(5)
    n = 400_000
    gaps = rng.exponential(1 / 225.0, n)
    service = rng.exponential(1 / 300.0, n) + rng.exponential(0.0005, n)
    wait, waits = 0.0, np.empty(n)
    for i in range(n):   # Lindley: W_{i+1} = max(0, W_i + S_i − A_{i+1})
        waits[i] = wait
        wait = max(0.0, wait + service[i] - gaps[i])
    assert w == pytest.approx(float((waits + service)[n // 10:].mean()), rel=0.06)


def test_simpy_blocking_model_holds_the_worker_during_the_query(bench):
    pytest.importorskip("simpy")
    import sys
    sys.path.insert(0, str(BENCH.parent))
    import simpy_models

    w, _ = bench.theory_mean("S5")
    held = simpy_models.server_database(900.0, 4, 1, 300.0, 100, 200_000.0, 200_000.0, 1.0, 60.0, seed=2, blocking=True)
    free = simpy_models.server_database(900.0, 4, 1, 300.0, 100, 200_000.0, 200_000.0, 1.0, 60.0, seed=2)
    assert held.mean_s == pytest.approx(w, rel=0.2)
    # not held: M/M/1 at 225/300 = 0.75 (13.3 ms) + the query (0.5 ms), far below the blocking tier
    assert free.mean_s == pytest.approx(1 / 75 + 0.0005, rel=0.2) and held.mean_s > 1.5 * free.mean_s


def test_s6_is_two_sync_tiers_behind_least_connections_and_agrees_with_its_simpy_model(bench):
    doc = bench.build_s6(seed=1)
    lb, web, api, db = (n for n in doc.node_ids() if doc.kind(n) != "client")
    assert doc.param(lb, "algorithm") == "least_connections"
    assert doc.successors(web) == [api] and doc.successors(api) == [db]
    assert doc.param(web, "blocking_calls") is True and doc.param(api, "blocking_calls") is True
    sim = Simulation(doc)
    assert sim._ev_bal is not None and sim._ev_chain is not None   # the discrete-event pass takes it
    sim.run_until(30.0)
    t = sim.totals()
    lower, _ = bench.theory_mean("S6")
    assert t["failed"] == 0 and t["mean_ms"] / 1000 > lower
    simpy = pytest.importorskip("simpy")
    assert simpy
    import sys
    sys.path.insert(0, str(BENCH.parent))
    import simpy_models

    s = bench.SCENARIOS["S6"]
    ref = simpy_models.sync_chain(s["rate"], s["n"], s["workers"], s["mu"], s["n"], s["workers"], s["api_mu"], 100,
                                  200_000.0, 30.0, seed=2)
    assert t["mean_ms"] / 1000 == pytest.approx(ref.mean_s, rel=0.05)   # two independent runs of one model


@pytest.mark.parametrize("name", ["lb_downstream", "three_tiers"])
def test_blocking_shapes_are_their_simpy_networks(name):
    """benchmarks/blocking_shapes.py: the shapes with a SimPy model (a balancer downstream
    of sync workers; three sync tiers) give the model's mean response (two 120-s runs of
    each, independent seeds)."""
    simpy = pytest.importorskip("simpy")
    assert simpy
    import sys
    sys.path.insert(0, str(BENCH.parent))
    import blocking_shapes
    import simpy_models

    doc, layers, rate = blocking_shapes.shape(name)
    means = []
    for seed in (2, 3):
        doc.set_settings(seed=seed, duration_s=120.0)
        sim = Simulation(doc)
        assert sim._ev_depth is not None   # the event window, not the sweeps
        sim.run_until(120.0)
        means.append(sim.totals()["mean_ms"] / 1000)
    ref = [simpy_models.tiers(rate, layers, 20, 3000.0, 120.0, seed=s).mean_s for s in (4, 5)]
    assert np.mean(means) == pytest.approx(np.mean(ref), rel=0.03)
