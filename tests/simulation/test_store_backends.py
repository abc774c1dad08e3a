"""Load-aware balancers in front of caches decide request by request, in the compiled
pass (exact_balance.py), as in front of servers: the numbers do not change with
``tick_ms``. A session read that a server keeping sessions in the database asks of the
cache behind the balancer adds its service there, in the pass as in the stations' own
admission.

Before 2026-12-01 these backends took the slower tick-by-tick path: over four caches
behind power of two at 85 % load, the mean response was 2.97 ms at ``tick_ms`` 1,
3.55 ms at 10 (the default) and 3.79 ms at 20, where an event simulation of power of
two gives 2.86 ms."""
from __future__ import annotations

import numpy as np
import pytest

from simulation import exact_balance
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from test_slow_path_choices import WARM, caches_behind_power_of_two, power_of_two_ms

from wallclock import within


def _mean_after_warmup(sim: Simulation) -> float:
    m = sim.metrics
    rows = np.arange(m.n) >= WARM
    return float(np.nansum((m.mean_ms * m.served_rps)[rows]) / m.served_rps[rows].sum())


def test_power_of_two_over_caches_is_the_event_simulations_whatever_the_tick():
    reference = np.mean([power_of_two_ms(seed, 80.0) for seed in (11, 12, 13)])   # 2.86 ms
    got = {}
    with within(300, "three ticks"):
        for tick_ms in (1.0, 10.0, 20.0):
            runs = []
            for seed in (1, 2):
                sim = Simulation(caches_behind_power_of_two(tick_ms, seed, 80.0))
                sim.run_until(80.0)
                runs.append(sim)
            got[tick_ms] = (np.mean([_mean_after_warmup(s) for s in runs]),
                            [(s.totals()["served"], s.totals()["failed"]) for s in runs])
    # the same requests served, whatever the tick, and the same mean (to rounding)
    assert got[1.0][1] == got[10.0][1] == got[20.0][1]
    assert got[1.0][0] == pytest.approx(got[10.0][0], rel=1e-9) == pytest.approx(got[20.0][0], rel=1e-9)
    # two seeds of 60 s at 3,400 req/s: the mean of the two within ±4 % of the event simulation's
    assert reference * 0.96 < got[10.0][0] < reference * 1.04, (got, reference)


CACHE_RPS, RATE = 1000.0, 600.0


def sessions_behind_least_connections(tick_ms: float, seed: int = 3,
                                      algorithm: str = "least_connections") -> Document:
    """Users → a server keeping sessions in the database → a load-aware balancer → two
    caches (2 connections each) → a database; the server also queries the database
    straight (the format asks a server keeping sessions there to call a store). A request
    through the balancer reads its session at the cache: two lookups' work."""
    d = Document()
    d.add_node(NodeData("c", "client", params={"rate_rps": RATE, "read_ratio": 0.9, "users": 5000}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 1e5, "workers": 64, "sessions": "database"}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm, "capacity_rps": 1e6,
                                                       "health_check_cost_ms": 0.0}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 1e5, "write_capacity_rps": 1e5}))
    d.add_edge("c", "web")
    d.add_edge("web", "lb")
    d.add_edge("web", "db")
    for i in (1, 2):
        d.add_node(NodeData(f"cache{i}", "cache", params={"capacity_rps": CACHE_RPS, "connections": 2}))
        d.add_edge("lb", f"cache{i}")
        d.add_edge(f"cache{i}", "db")
    d.set_settings(seed=seed, tick_ms=tick_ms, duration_s=40.0)
    return d


def test_a_session_read_behind_the_balancer_doubles_the_caches_work():
    # independent count: the requests through the balancer, each one lookup and one session
    # read of 2 / 1,000 s on one of 2 connections: the two caches busy λ × 2 × 2 / 1,000 / 4
    sim = Simulation(sessions_behind_least_connections(10.0))
    sim.run_until(40.0)
    util = sim.metrics.util
    lam = float(sim.metrics.flow[("web", "lb")][5:].mean())
    assert 0.2 * RATE < lam <= RATE
    both = np.mean([util["cache1"][5:].mean(), util["cache2"][5:].mean()])
    assert both == pytest.approx(lam * 2 * 2 / CACHE_RPS / 4, rel=0.05)
    assert sim.totals()["failed"] == 0


@pytest.mark.parametrize("algorithm", ["least_connections", "least_response_time", "power_of_two"])
def test_the_pass_admits_session_reads_at_caches_as_the_stations_do(algorithm, monkeypatch):
    # the compiled pass's own admission against admitting again through Stations.admit (which
    # adds the session read in Stations._service_ns): the same run, row by row, bit for bit
    runs = []
    for readmit in (False, True):
        monkeypatch.setattr(exact_balance, "READMIT", readmit)
        sim = Simulation(sessions_behind_least_connections(10.0, algorithm=algorithm))
        sim.run_until(12.0)
        assert sim.__dict__.get("_last_exact") is not None   # the compiled pass decided
        runs.append((sim.totals(), sim.metrics.mean_ms, sim.metrics.served_rps, sim.metrics.util["cache1"],
                     sim.stations.free.copy(), sim.ewma.copy()))
    a, b = runs
    assert a[0] == b[0]
    for x, y in zip(a[1:], b[1:]):
        assert np.array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float), equal_nan=True)


def test_least_connections_over_caches_does_not_change_with_the_tick():
    runs = []
    for tick_ms in (1.0, 10.0, 25.0):
        sim = Simulation(sessions_behind_least_connections(tick_ms))
        sim.run_until(20.0)
        runs.append((sim.totals()["served"], sim.metrics.served_rps.tolist(), sim.metrics.util["cache1"]))
    for other in runs[1:]:
        assert other[0] == runs[0][0] and other[1] == runs[0][1]
        assert np.allclose(other[2], runs[0][2], rtol=1e-9)
