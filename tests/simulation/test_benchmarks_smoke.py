"""Smoke test of benchmarks/engine_bench.py: its scenarios are the topologies they claim to be,
and S1 runs to a sensible answer. No timing here (that is the benchmark's job), and no SimPy
(it is only in the "bench" extra)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

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
