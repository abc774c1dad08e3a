"""Browser caching from the server's Cache-Control max-age, and ETag revalidation (304)."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.document import Document, NodeData
from simulation.engine import Simulation


def site(max_age: float, etag: bool, read_ratio: float = 1.0, users: int = 20, items: int = 10,
         rate: float = 200.0, seed: int = 1) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users, "items": items,
                                                   "zipf_s": 0.0, "read_ratio": read_ratio}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 1000, "workers": 8, "cache_max_age_s": max_age,
                                                 "etag": etag, "not_modified_cost": 0.2}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 5000, "connections": 20}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=seed)
    return d


def test_max_age_lets_the_browser_answer_repeat_views():
    m = 2.0
    sim = Simulation(site(max_age=m, etag=False))
    sim.advance(60)
    t = sim.totals()
    views = t["browser_hits"] + t["arrived"]
    r = 200.0 / 20 / 10                         # one user's views of one page per second
    # after the first fetch, a fresh copy answers r·M of every 1 + r·M views
    late = sim.metrics.browser_hits[20:].sum() / (sim.metrics.browser_hits[20:] + sim.metrics.offered_rps[20:]).sum()
    assert late == pytest.approx(r * m / (1 + r * m), abs=0.03)
    assert views == pytest.approx(200 * 60, rel=0.05)
    none = Simulation(site(max_age=0, etag=False))
    none.advance(60)
    assert none.totals()["browser_hits"] == 0


def test_etag_turns_unchanged_pages_into_cheap_304s_without_database_calls():
    with_etag = Simulation(site(max_age=0, etag=True, read_ratio=0.9))
    with_etag.advance(60)
    plain = Simulation(site(max_age=0, etag=False, read_ratio=0.9))
    plain.advance(60)
    t = with_etag.totals()
    # r = 0.9 per user per page, w = 2 per page (20 % writes of 200 req/s over 10 pages):
    # a copy is unchanged with probability r / (r + w)
    r, w = 200 * 0.9 / 20 / 10, 200 * 0.1 / 10
    reads = t["arrived"] * 0.9
    assert t["not_modified"] / reads == pytest.approx(r / (r + w), abs=0.04)
    flow = with_etag.metrics.flow[("web", "db")][10:].sum() / plain.metrics.flow[("web", "db")][10:].sum()
    assert flow == pytest.approx(1 - 0.9 * r / (r + w), abs=0.05)
    assert np.mean(with_etag.metrics.util["web"][10:]) < 0.85 * np.mean(plain.metrics.util["web"][10:])
