"""The engine against queueing theory. Tolerances are a few standard errors of
the run length used, tight enough that a wrong formula or a biased engine fails."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulation.document import NodeData
from simulation.engine import Simulation

from topologies import balanced, single_queue


def erlang_c(c: int, a: float) -> float:
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


def erlang_b(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def run(doc, seconds: float, **kw) -> Simulation:
    sim = Simulation(doc, **kw)
    sim.advance(seconds)
    return sim


def test_mm1_mean_and_p95_match_the_exponential_response_time():
    lam, mu = 70.0, 100.0
    t = run(single_queue(lam, mu, seed=11), 4000).totals()
    assert t["mean_ms"] == pytest.approx(1000 / (mu - lam), rel=0.03)
    # response time of M/M/1 FIFO is exponential with rate mu - lam
    assert t["p50_ms"] == pytest.approx(1000 * math.log(2) / (mu - lam), rel=0.04)
    assert t["p95_ms"] == pytest.approx(1000 * math.log(20) / (mu - lam), rel=0.04)


def test_mmc_matches_erlang_c():
    c, mu_w, lam = 4, 25.0, 80.0          # a = 3.2, rho = 0.8
    a = lam / mu_w
    w = erlang_c(c, a) / (c * mu_w - lam) + 1 / mu_w
    sim = run(single_queue(lam, c * mu_w, workers=c, seed=5), 3000)
    assert sim.totals()["mean_ms"] == pytest.approx(1000 * w, rel=0.04)


def test_reference_mmc_cases_from_the_literature():
    # qsmmm.m test cases: c=2 and c=4 with lam=9, mu=5 -> W = 1.0526 and 0.2117
    assert erlang_c(2, 9 / 5) / (2 * 5 - 9) + 1 / 5 == pytest.approx(1.0526, abs=1e-4)
    w4 = erlang_c(4, 9 / 5) / (4 * 5 - 9) + 1 / 5
    assert w4 == pytest.approx(0.2117, abs=1e-4)
    # the engine, scaled 10x in rate (same utilisation, times / 10)
    sim = run(single_queue(90, 4 * 50, workers=4, seed=2), 1500)
    assert sim.totals()["mean_ms"] == pytest.approx(1000 * w4 / 10, rel=0.03)


def test_md1_matches_pollaczek_khinchine():
    lam, mu = 70.0, 100.0
    rho = lam / mu
    wq = rho / (2 * mu * (1 - rho))      # half the M/M/1 wait
    t = run(single_queue(lam, mu, service="deterministic", seed=3), 3000).totals()
    assert t["mean_ms"] == pytest.approx(1000 * (wq + 1 / mu), rel=0.02)


def test_erlang_loss_without_a_waiting_room():
    c, mu_w, lam = 5, 20.0, 80.0          # a = 4 erlangs
    sim = run(single_queue(lam, c * mu_w, workers=c, seed=8, queue_limit=0), 3000)
    t = sim.totals()
    blocked = t["failed_by_cause"]["queue_full"] / t["arrived"]
    assert blocked == pytest.approx(erlang_b(c, lam / mu_w), rel=0.05)


def test_littles_law_queue_length_equals_rate_times_wait():
    lam, mu = 80.0, 100.0
    sim = run(single_queue(lam, mu, seed=4), 4000)
    m = sim.metrics
    lq = np.mean(m.queue["web"])            # sampled each second
    wq = sim.totals()["mean_ms"] / 1000 - 1 / mu
    assert lq == pytest.approx(lam * wq, rel=0.08)
    assert np.mean(m.util["web"]) == pytest.approx(lam / mu, rel=0.02)


def test_tandem_server_and_database_latencies_add_up():
    d = single_queue(50, 100, seed=6)
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 200, "write_capacity_rps": 200,
                                                  "connections": 1, "queue_limit": 100000}))
    d.add_edge("web", "db")
    t = run(d, 3000).totals()
    assert t["mean_ms"] == pytest.approx(1000 * (1 / (100 - 50) + 1 / (200 - 50)), rel=0.03)


def _rr_erlang_mean(lam_i: float, mu: float, k: int) -> float:
    """E_k/M/1: sigma solves sigma = A*(mu(1-sigma)), A*(s) = (k lam/(k lam + s))^k."""
    sigma = 0.5
    for _ in range(500):
        sigma = (k * lam_i / (k * lam_i + mu * (1 - sigma))) ** k
    return 1 / (mu * (1 - sigma))


def test_random_round_robin_and_least_connections_over_ten_servers():
    lam, n, mu = 800.0, 10, 100.0
    means = {}
    for algo, seconds in (("random", 600), ("round_robin", 600), ("least_connections", 120)):
        means[algo] = run(balanced(lam, n, mu, algo, seed=21), seconds).totals()["mean_ms"]
    # random splitting of a Poisson stream: each server is M/M/1 with lam/n
    assert means["random"] == pytest.approx(1000 / (mu - lam / n), rel=0.05)
    # round robin: each server sees Erlang-10 interarrivals, an E_10/M/1 queue
    assert means["round_robin"] == pytest.approx(1000 * _rr_erlang_mean(lam / n, mu, n), rel=0.05)
    assert means["round_robin"] < 0.8 * means["random"]
    # least connections looks at the queues: clearly better than both
    assert means["least_connections"] < 0.85 * means["round_robin"]


def test_load_aware_algorithms_beat_blind_ones_and_stay_above_the_shared_queue_bound():
    lam, n, mu = 800.0, 10, 100.0
    mean = {a: run(balanced(lam, n, mu, a, seed=4), 120).totals()["mean_ms"]
            for a in ("random", "power_of_two", "least_response_time", "least_connections")}
    # one shared queue in front of all ten servers (M/M/10) is the best any dispatcher can do
    bound = 1000 * (erlang_c(n, lam / mu) / (n * mu - lam) + 1 / mu)
    for algo in ("power_of_two", "least_response_time", "least_connections"):
        assert bound < mean[algo] < 0.6 * mean["random"], algo
