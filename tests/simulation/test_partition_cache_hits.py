"""The structural analysis estimates a cache's hit ratio from the rate that reaches it.
With partitioned tables, a cache in front of one database sees that database's tables'
share of the traffic (not a split of everything by capacity, as for a pool). Checked
against the TTL hit ratio computed here, the engine's cache, and check --empirical."""
from __future__ import annotations

import numpy as np
import pytest

from simulation import analysis
from simulation.document import NodeData
from simulation.engine import Simulation

from test_partitioning import BIG, mean_util, partitioned

RATE, RR, USERS, ITEMS, ZIPF, TTL = 400.0, 0.9, 0.3, 5000, 0.8, 2.0


def cached_users():
    """web → cache (50,000 req/s) → db_u (users), and web → db_f (flights, 4,000 req/s)."""
    d = partitioned(RATE, {"users": USERS, "flights": 1 - USERS}, tables={"db_f": ["flights"]}, read_ratio=RR,
                    connections=20, capacity=4000)
    d.set_params("c", {"items": ITEMS, "zipf_s": ZIPF})
    d.add_node(NodeData("cache", "cache", params={"capacity_items": 100_000, "capacity_rps": 50_000,
                                                  "connections": 8, "ttl_s": TTL}))
    d.add_node(NodeData("db_u", "database", params={"read_capacity_rps": 4000, "write_capacity_rps": 4000,
                                                    "connections": 20, "tables": ["users"], **BIG}))
    d.add_edge("web", "cache")
    d.add_edge("cache", "db_u")
    return d


def ttl_hit_ratio(reads: float, writes: float) -> float:
    """A cache that holds every item, entries living TTL s or until a write (on_write):
    per item h = λ·L / (1 + λ·L), L = (1 − e^(−w·TTL)) / w; weighted by popularity."""
    k = np.arange(1, ITEMS + 1, dtype=float)
    p = k ** -ZIPF
    p /= p.sum()
    lam, w = reads * p, writes * p
    life = -np.expm1(-w * TTL) / w
    return float(np.dot(p, lam * life / (1 + lam * life)))


def test_a_cache_in_front_of_a_partition_sees_its_tables_share():
    d = cached_users()
    users = RATE * USERS
    h = ttl_hit_ratio(users * RR, users * (1 - RR))
    pool = ttl_hit_ratio(RATE * RR * 50 / 54, RATE * (1 - RR) * 50 / 54)   # split by capacity 50,000 : 4,000
    assert pool - h > 0.1     # the two estimates differ: the test can tell them apart
    assert analysis._cache_hits(d)["cache"] == pytest.approx(h, abs=1e-9)
    # the users database loses the users' misses and writes while it is down
    spof = analysis.structural_spof(d)["db_u"]
    assert spof.share == pytest.approx(USERS * (RR * (1 - h) + (1 - RR)), abs=1e-9)
    # the engine's cache: the users database serves the misses and the writes (5 ms per query on 20 connections)
    sim = Simulation(d)
    sim.advance(160)
    served = mean_util(sim, "db_u", 40) * 20 / 0.005
    measured = 1 - (served - users * (1 - RR)) / (users * RR)
    assert measured == pytest.approx(h, abs=0.04)
    assert abs(measured - h) < abs(measured - pool) / 3
    # and failing it in the engine loses what the structure says
    lost = analysis.empirical_spof(d, 60, overload=False)["db_u"]
    assert lost.kind == "partial" and lost.spof_share == pytest.approx(spof.share, abs=0.03)
