"""Page views: browser hits count as views answered in 0 ms, stale views follow their closed form,
the means are exact, and the browser-caching lesson shows what max-age and ETags do, in numbers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation import metrics as metrics_module
from simulation.analysis import _cache_hits
from simulation.engine import Simulation
from simulation.fileformat import load, loads
from simulation.page_views import stale_share

LESSON = Path(__file__).parents[2] / "resources" / "lessons" / "browser_caching.scalelab"


def _doc(duration: float, client: dict, server: dict) -> dict:
    return {"format": "scalelab", "version": 1, "simulation": {"duration_s": duration, "seed": 9},
            "nodes": [{"id": "u", "kind": "client", "params": client},
                      {"id": "web", "kind": "server", "params": {"machine": "m5.4xlarge", **server}}],
            "edges": [{"source": "u", "target": "web"}]}


def _monte_carlo(r: float, w: float, m: float, horizon: float, seed: int) -> tuple[int, int, int]:
    """One user and one item, event by event: reads at rate r, writes at rate w, a copy fresh for m.
    Returns (reads, browser hits, stale hits)."""
    rng = np.random.default_rng(seed)
    reads = np.cumsum(rng.exponential(1 / r, int(horizon * r * 1.2) + 50))
    reads = reads[reads < horizon]
    writes = np.cumsum(rng.exponential(1 / w, int(horizon * w * 1.2) + 50))
    writes = writes[writes < horizon]
    fetched = -np.inf
    hits = stale = 0
    for t in reads:
        if t - fetched < m:
            hits += 1
            # written since the copy was fetched?
            i = np.searchsorted(writes, fetched, side="right")
            stale += bool(i < len(writes) and writes[i] < t)
        else:
            fetched = t
    return len(reads), hits, stale


@pytest.mark.parametrize("r, w, m", [(2.0, 0.05, 10.0), (1.0, 0.5, 4.0), (5.0, 2.0, 1.0)])
def test_stale_share_matches_a_monte_carlo_of_one_browser(r, w, m):
    n, hits, stale = _monte_carlo(r, w, m, horizon=20_000 / r, seed=int(r * 100 + w * 10 + m))
    assert hits / n == pytest.approx(r * m / (1 + r * m), abs=0.015)          # renewal: rM / (1 + rM)
    p = float(stale_share(w, m))
    assert stale / hits == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / hits) + 0.01)


def test_stale_share_limits():
    assert float(stale_share(0.0, 30.0)) == 0.0
    assert float(stale_share(1e-12, 30.0)) == pytest.approx(1.5e-11)            # ≈ wM / 2
    assert float(stale_share(100.0, 30.0)) == pytest.approx(1 - 1 / 3000)


def test_engine_counts_page_views_browser_hits_and_stale_views():
    """One item: every user reads it at r = R·read/U, it is written at w = R·(1 − read)."""
    rate, users, read, m, horizon = 400.0, 50, 0.98, 5.0, 60.0
    doc = loads(json.dumps(_doc(horizon, {"rate_rps": rate, "users": users, "items": 1, "read_ratio": read},
                                {"cache_max_age_s": m})))
    sim = Simulation(doc)
    sim.run_until(horizon)
    t = sim.totals()
    r, w = rate * read / users, rate * (1 - read)
    # expected browser hits: ∫ R·read · (1 − e^{−rt}) · rM/(1 + rM) dt over the run
    expected = rate * read * r * m / (1 + r * m) * (horizon - (1 - np.exp(-r * horizon)) / r)
    assert t["browser_hits"] == pytest.approx(expected, rel=0.03)
    p = float(stale_share(w, m))
    assert t["stale_page_views"] == pytest.approx(p * t["browser_hits"], abs=4 * np.sqrt(t["browser_hits"] * p))
    assert t["page_views"] == t["arrived"] + t["browser_hits"]
    assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]          # requests still conserved
    assert t["browser_hit_share"] == pytest.approx(t["browser_hits"] / t["page_views"])
    # exact: the browser hits add views answered in 0 ms to the same latency sum
    assert t["page_view_mean_ms"] * (t["served"] + t["browser_hits"]) == pytest.approx(t["mean_ms"] * t["served"],
                                                                                      rel=1e-12)
    assert t["page_view_mean_ms"] < 0.5 * t["mean_ms"]


def test_per_second_page_views_stay_exact_when_rows_merge(monkeypatch):
    monkeypatch.setattr(metrics_module, "MAX_ROWS", 8)
    monkeypatch.setattr(metrics_module, "MIN_ROWS", 4)
    doc = loads(json.dumps(_doc(40.0, {"rate_rps": 200.0, "users": 20, "items": 30, "read_ratio": 0.95},
                                {"cache_max_age_s": 3.0})))
    sim = Simulation(doc)
    sim.run_until(40.0)
    m = sim.metrics
    assert m.width > 1 and m.n <= 8                                             # rows did merge
    assert m.page_views == pytest.approx(m.offered_rps + m.browser_hits)
    assert m.browser_hit_share == pytest.approx(m.browser_hits / m.page_views)
    assert m.page_view_mean_ms * (m.served_rps + m.browser_hits) == pytest.approx(m.mean_ms * m.served_rps)
    t = sim.totals()
    assert float((m.page_views * m.span_s).sum()) == pytest.approx(t["page_views"])
    assert float((m.stale_page_views * m.span_s).sum()) == pytest.approx(t["stale_page_views"])


def test_no_browser_cache_no_stale_views_and_views_equal_requests():
    doc = loads(json.dumps(_doc(20.0, {"rate_rps": 200.0, "users": 20, "items": 5, "read_ratio": 0.5}, {})))
    sim = Simulation(doc)
    sim.run_until(20.0)
    t = sim.totals()
    assert t["browser_hits"] == t["stale_page_views"] == 0
    assert t["page_views"] == t["arrived"] and t["page_view_mean_ms"] == t["mean_ms"]


# ----- the lesson ---------------------------------------------------------------------------------
def _closed_form(p: dict, max_age: float, horizon: float) -> dict[str, float]:
    """Expected browser hits, 304s and stale views of a client over a run (docs/engine.md)."""
    rate, read, users = p["rate_rps"], p["read_ratio"], p["users"]
    pmf = np.arange(1, p["items"] + 1, dtype=float) ** -p["zipf_s"]
    pmf /= pmf.sum()
    r, w = rate * read / users * pmf, rate * (1 - read) * pmf
    fresh = r * max_age / (1 + r * max_age)
    had_copy = horizon - (1 - np.exp(-r * horizon)) / r                         # ∫ (1 − e^{−rt}) dt
    reads = rate * read * pmf * had_copy
    unchanged = np.exp(-w * max_age) * r / (r + w)
    return {"browser_hits": float((reads * fresh).sum()), "not_modified": float((reads * (1 - fresh) * unchanged).sum()),
            "stale_page_views": float((reads * fresh * stale_share(w, max_age)).sum())}


def _run(doc, **server) -> Simulation:
    doc.set_params("app", server)
    sim = Simulation(doc)
    sim.run_until(doc.settings["duration_s"])
    return sim


def through_share(sim: Simulation) -> float:
    """The share of the reads arriving at the CDN in the second half of the run that it passed on."""
    half = sim.metrics.time_s > sim.metrics.time_s[-1] / 2
    arrived = sim.metrics.flow[("users", "cdn")][half].sum()
    writes = arrived * (1 - sim.document.params("users")["read_ratio"])
    return float((sim.metrics.flow[("cdn", "app")][half].sum() - writes) / (arrived - writes))


def test_browser_caching_lesson_public_responses_are_answered_by_the_cdn():
    doc = load(LESSON)
    assert doc.params("app")["cache_control"] == "public" and doc.kind("cdn") == "cache"
    public = _run(doc)
    private = _run(doc, cache_control="private")
    assert _cache_hits(doc) == {"cdn": 0.0}                          # a shared cache stores no private page
    doc.set_params("app", {"cache_control": "public"})
    assert _cache_hits(doc)["cdn"] == pytest.approx(1 - through_share(public), abs=0.05)   # the analysis agrees
    through = {name: float(sim.metrics.flow[("cdn", "app")].sum()) for name, sim in
               (("public", public), ("private", private))}
    assert through["private"] == pytest.approx(private.totals()["arrived"], rel=0.01)   # everything passes
    assert through["public"] < 0.6 * through["private"]
    assert public.metrics.util["app"].mean() < 0.7 * private.metrics.util["app"].mean()
    # the browser does not care: a private page is still kept by its own user's browser
    assert public.totals()["browser_hits"] == private.totals()["browser_hits"] > 0


def test_browser_caching_lesson():
    doc = load(LESSON)
    assert not doc.params("app")["etag"]                  # the lesson says: turn it on
    doc.set_params("app", {"cache_control": "private", "etag": True})   # every request reaches the server
    horizon = doc.settings["duration_s"]
    client = doc.params("users")
    age = doc.params("app")["cache_max_age_s"]
    assert age > 0
    cached = _run(doc)
    t = cached.totals()
    expected = _closed_form(client, age, horizon)
    for key, value in expected.items():
        assert t[key] == pytest.approx(value, rel=0.06), key
    assert t["stale_page_views"] > 0.1 * t["browser_hits"]             # long max-age, pages that change
    # without max-age every view is a request: the page-view mean is ≥ 2.5× higher, nothing is stale
    plain = _run(doc, cache_max_age_s=0.0, etag=False).totals()
    assert plain["browser_hits"] == plain["stale_page_views"] == plain["not_modified"] == 0
    assert plain["page_views"] == t["page_views"]                      # the same clicks either way
    assert plain["page_view_mean_ms"] >= 2.5 * t["page_view_mean_ms"]
    # 304s cut the server's work by their share × (1 − not_modified_cost)
    full = _run(doc, cache_max_age_s=age, etag=False)
    busy_with, busy_without = cached.metrics.util["app"].sum(), full.metrics.util["app"].sum()
    saved = expected["not_modified"] / full.totals()["arrived"] * (1 - doc.params("app")["not_modified_cost"])
    assert 1 - busy_with / busy_without == pytest.approx(saved, rel=0.08)
    assert saved > 0.15


def test_a_shared_cache_stores_nothing_in_front_of_a_private_server():
    from simulation.caching import may_store
    doc = loads(json.dumps({
        "format": "scalelab", "version": 1,
        "nodes": [{"id": "u", "kind": "client"}, {"id": "cdn", "kind": "cache"}, {"id": "lb", "kind": "load_balancer"},
                  {"id": "a", "kind": "server"}, {"id": "b", "kind": "server", "params": {"cache_control": "private"}},
                  {"id": "redis", "kind": "cache"}, {"id": "db", "kind": "database"}],
        "edges": [{"source": "u", "target": "cdn"}, {"source": "cdn", "target": "lb"}, {"source": "lb", "target": "a"},
                  {"source": "lb", "target": "b"}, {"source": "a", "target": "redis"}, {"source": "b", "target": "redis"},
                  {"source": "redis", "target": "db"}]}))
    assert not may_store(doc, "cdn")          # one private server behind the balancer: the strictest wins
    assert may_store(doc, "redis")            # an application cache in front of a database
    doc.set_params("b", {"cache_control": "public"})
    assert may_store(doc, "cdn")
