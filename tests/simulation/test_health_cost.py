"""Health checks cost something: each check is a small request at every live
backend replica (it takes a worker for the balancer's health_check_cost_ms),
so a very short interval shows up as utilization and, near saturation, as
latency. Checks are not user requests: counts and conservation are unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.document import NodeData
from simulation.engine import Simulation

from topologies import BIG_QUEUE, add_event, balanced


def with_cost(d, cost_ms: float, lb: str = "lb"):
    d.set_params(lb, {"health_check_cost_ms": cost_ms})
    return d


def utilization(sim: Simulation, node: str, first: int = 5) -> float:
    return float(np.mean(sim.metrics.util[node][first:]))


def test_checks_add_rate_times_cost_over_workers_to_the_backends_utilization():
    # 20 checks/s, 10 ms each, 4 workers per replica: 20 × 0.010 / 4 = 5 % more busy
    rate, cost, workers = 1 / 0.05, 0.010, 4
    runs = {}
    for c in (0.0, cost * 1000):
        d = with_cost(balanced(200, 3, 400, "round_robin", seed=2, interval=0.05, workers=workers), c)
        sim = Simulation(d)
        sim.advance(60)
        runs[c] = sim
    free, paid = runs[0.0], runs[cost * 1000]
    for web in ("web1", "web2", "web3"):
        added = utilization(paid, web) - utilization(free, web)
        assert added == pytest.approx(rate * cost / workers, rel=0.02), web
    # the users see the same requests: checks never count as arrived, served or failed
    a, b = free.totals(), paid.totals()
    assert (a["arrived"], a["served"] + a["in_flight"], a["failed"]) == (b["arrived"], b["served"] + b["in_flight"],
                                                                      b["failed"])
    assert b["arrived"] == b["served"] + b["failed"] + b["in_flight"]
    assert b["mean_ms"] > a["mean_ms"]


def test_every_balancer_checks_every_backend_so_a_redundant_pair_doubles_the_load():
    d = with_cost(balanced(100, 2, 200, "round_robin", seed=3, interval=0.1, workers=2), 8.0)
    d.add_node(NodeData("lb2", "load_balancer", params={"capacity_rps": 10_000_000, "health_interval_s": 0.1,
                                                         "health_check_cost_ms": 8.0}))
    d.add_edge("users", "lb2")
    d.set_params("users", {"entry_policy": "failover"})   # lb2 is passive: it only checks
    for web in ("web1", "web2"):
        d.add_edge("lb2", web)
    base = balanced(100, 2, 200, "round_robin", seed=3, interval=0.1, workers=2)
    with_cost(base, 0.0)
    pair, alone = Simulation(d), Simulation(base)
    pair.advance(40)
    alone.advance(40)
    assert pair.metrics.flow[("users", "lb2")].sum() == 0
    for web in ("web1", "web2"):
        added = utilization(pair, web) - utilization(alone, web)
        assert added == pytest.approx(2 * 10 * 0.008 / 2, rel=0.02)   # 2 balancers × 10/s × 8 ms / 2 workers


def test_at_a_high_check_rate_user_latency_follows_pollaczek_khinchine():
    # M/M/1 users (λ = 50, μ = 100) plus a deterministic 5 ms check every 50 ms (+10 % work).
    lam, mu, r, c = 50.0, 100.0, 20.0, 0.005
    d = with_cost(balanced(lam, 1, mu, "round_robin", seed=11, interval=1 / r), c * 1000)
    sim = Simulation(d)
    sim.advance(1200)
    t = sim.totals()
    # the server's work: users and checks; mean wait by Pollaczek–Khinchine for the mixture
    rho = lam / mu + r * c
    wait = (lam * 2 / mu**2 + r * c**2) / (2 * (1 - rho))
    assert t["mean_ms"] == pytest.approx(1000 * (wait + 1 / mu), rel=0.03)
    assert utilization(sim, "web1") == pytest.approx(rho, rel=0.02)
    # clearly slower than the same server without checks (M/M/1: 20 ms), but faster than an M/M/1 whose
    # capacity shrank by the checks' share (25 ms): a check is short and regular, not a slower request
    assert 1.1 * 1000 / (mu - lam) < t["mean_ms"] < 0.96 * 1000 / (mu * (1 - r * c) - lam)


def test_the_default_check_costs_next_to_nothing_at_the_lectures_half_second():
    # default cost 2 ms, every 0.5 s, 4 workers: 4 × 0.002 / 4 = 0.1 % of a server
    d = balanced(100, 2, 200, "round_robin", seed=4, interval=0.5, workers=4)
    free = Simulation(with_cost(balanced(100, 2, 200, "round_robin", seed=4, interval=0.5, workers=4), 0.0))
    sim = Simulation(d)
    sim.advance(60)
    free.advance(60)
    added = utilization(sim, "web1") - utilization(free, "web1")
    assert added == pytest.approx(2 * 0.002 / 4, rel=0.05)
    assert sim.totals()["mean_ms"] == pytest.approx(free.totals()["mean_ms"], rel=0.01)


def test_a_dead_backend_costs_nothing_and_a_dead_balancer_checks_nothing():
    d = with_cost(balanced(0, 2, 200, "round_robin", seed=5, interval=0.1, workers=1), 10.0)
    add_event(d, 10.0, "fail", "web2")
    add_event(d, 20.0, "fail", "lb")
    sim = Simulation(d)
    sim.advance(30)
    for web in ("web1", "web2"):
        assert np.mean(sim.metrics.util[web][1:9]) == pytest.approx(10 * 0.010, rel=0.02)   # checks only
    assert np.mean(sim.metrics.util["web1"][11:19]) == pytest.approx(0.1, rel=0.02)
    assert np.all(sim.metrics.util["web1"][21:] == 0)      # the balancer is dead: no checks
    assert sim.totals()["arrived"] == 0


@pytest.mark.parametrize("algorithm,events", [("round_robin", True), ("least_connections", False)])
def test_checks_do_not_depend_on_how_the_run_is_sliced(algorithm, events):
    # least connections admits its backends' requests tick by tick: checks join them in time order
    def make():
        d = with_cost(balanced(300, 3, 150, algorithm, seed=8, interval=0.07, workers=2), 6.0)
        if events:
            add_event(d, 12.5, "fail", "web2")
            add_event(d, 25.0, "recover", "web2")
        return Simulation(d)
    whole, steps, rand = make(), make(), make()
    whole.advance(40)
    for _ in range(40):
        steps.advance(1.0)
    rng = np.random.default_rng(1)
    while rand.now < 40 - 1e-9:   # least connections decides on the tick grid: slices of whole ticks there
        step = float(rng.uniform(0.003, 2.5)) if algorithm == "round_robin" else int(rng.integers(1, 250)) * 0.01
        rand.advance(min(step, 40 - rand.now))
    assert whole.totals() == steps.totals() == rand.totals()
    for sim in (steps, rand):
        np.testing.assert_allclose(whole.metrics.util["web1"], sim.metrics.util["web1"], rtol=1e-9, atol=1e-12)


def test_checks_on_a_single_worker_server_wait_their_turn_in_fifo_order():
    # A saturated single-worker server: checks queue behind users; a check that would wait longer than
    # the server's timeout never runs; conservation holds exactly all along.
    d = with_cost(balanced(99, 1, 100, "round_robin", seed=6, interval=0.05), 2.0)
    d.set_params("web1", {**BIG_QUEUE, "timeout_s": 2.0})
    sim = Simulation(d)
    for _ in range(30):
        sim.advance(1.0)
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    assert np.mean(sim.metrics.util["web1"][10:]) > 0.99
