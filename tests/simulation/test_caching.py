"""Caches: hit ratio from popularity, size and TTL; stale reads; cold start."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulation.caching import che_time, zipf_cdf
from simulation.document import Document, NodeData
from simulation.engine import Simulation


def cached(rate: float, items: int, zipf_s: float, size: int, ttl: float, invalidation: str = "on_write",
           read_ratio: float = 1.0, seed: int = 3) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "items": items, "zipf_s": zipf_s,
                                                   "read_ratio": read_ratio}))
    d.add_node(NodeData("app", "server", params={"capacity_rps": 20_000, "workers": 64}))
    d.add_node(NodeData("cache", "cache", params={"capacity_items": size, "ttl_s": ttl,
                                                  "invalidation": invalidation}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 20_000, "write_capacity_rps": 20_000,
                                                  "connections": 64}))
    d.add_edge("users", "app")
    d.add_edge("app", "cache")
    d.add_edge("cache", "db")
    d.set_settings(seed=seed)
    return d


def miss_share(sim: Simulation, skip: int) -> float:
    f = sim.metrics.flow
    return f[("cache", "db")][skip:].sum() / f[("app", "cache")][skip:].sum()


def test_che_approximation_for_zipf_popularity():
    items, s, size, rate = 5000, 0.9, 500, 500.0
    sim = Simulation(cached(rate, items, s, size, ttl=1e6))
    sim.advance(150)
    p = np.diff(np.r_[0.0, zipf_cdf(items, s)])
    t_c = che_time(rate * p, size)
    expected_hit = float(np.sum(p * -np.expm1(-rate * p * t_c)))
    # the bisection itself: the cache holds `size` items on average
    assert np.sum(-np.expm1(-rate * p * t_c)) == pytest.approx(size, rel=1e-6)
    assert 1 - miss_share(sim, 60) == pytest.approx(expected_hit, abs=0.03)


def test_a_short_ttl_caps_the_hit_ratio():
    items, rate, ttl = 200, 400.0, 0.25
    sim = Simulation(cached(rate, items, 0.0, size=10_000, ttl=ttl))
    sim.advance(60)
    lam = rate / items
    expected = lam * ttl / (1 + lam * ttl)   # one miss, then λ·TTL hits per cycle
    assert 1 - miss_share(sim, 30) == pytest.approx(expected, abs=0.03)


def test_ttl_only_serves_stale_reads_invalidation_on_write_does_not():
    kw = dict(rate=500.0, items=100, zipf_s=0.5, size=1000, ttl=20.0, read_ratio=0.9)
    stale = Simulation(cached(invalidation="ttl_only", **kw))
    stale.advance(60)
    fresh = Simulation(cached(invalidation="on_write", **kw))
    fresh.advance(60)
    assert stale.totals()["stale_reads"] > 0.2 * stale.totals()["arrived"]
    assert fresh.totals()["stale_reads"] == 0
    # invalidating on every write costs hits: more reads reach the database
    assert miss_share(fresh, 30) > miss_share(stale, 30) + 0.05


def test_a_new_cache_starts_cold_and_warms_up():
    sim = Simulation(cached(400.0, 1000, 1.0, 300, ttl=1e6))
    sim.advance(60)
    f = sim.metrics.flow
    early = f[("cache", "db")][0] / f[("app", "cache")][0]
    late = f[("cache", "db")][40:].sum() / f[("app", "cache")][40:].sum()
    assert early > 0.8 and late < 0.5


def test_che_time_is_infinite_when_everything_fits():
    assert math.isinf(che_time(np.array([1.0, 2.0, 0.0]), 2))
