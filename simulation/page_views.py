"""Page views: what users see, browser cache included.

A *request* reaches the system (it is counted as arrived, then served, failed or in
flight: the conservation law). A *page view* is everything a user asks for: the
requests, plus the views the browser answers from its own cache (``browser_hits``),
which never leave the browser and take ``BROWSER_HIT_MS`` (0 ms: no network, no
server; a real browser needs a few ms to read its disk cache, which we ignore).

- ``page_views`` = arrived + browser hits;
- ``page_view_mean_ms`` = (Σ latency of the served requests + browser hits × 0 ms)
  / (served + browser hits): exact, from the same latency sums as ``mean_ms``
  (failed requests have no latency, as in ``mean_ms``);
- ``browser_hit_share`` = browser hits / page views;
- ``stale_page_views``: browser hits that showed a copy older than the item on the
  server. A copy fetched at age 0 is fresh for M = max-age; the views it answers come
  at a constant rate during [0, M], so their age a is uniform on [0, M]; the item is
  written (by anyone) at rate w, so such a view is stale with probability 1 − e^{−wa},
  on average :func:`stale_share` = 1 − (1 − e^{−wM}) / (wM).
"""
from __future__ import annotations

import math

import numpy as np

BROWSER_HIT_MS = 0.0
PAGE_VIEW_COLUMNS = ("page_views", "page_view_mean_ms", "browser_hit_share")


def stale_share(w: np.ndarray | float, max_age_s: float) -> np.ndarray:
    """The share of browser hits that show a stale copy: 1 − (1 − e^{−wM}) / (wM), for an item
    written at rate ``w`` per second and a copy fresh for M = ``max_age_s``."""
    x = np.asarray(w, dtype=float) * float(max_age_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = 1.0 + np.expm1(-x) / np.where(x > 0, x, 1.0)
    return np.where(x > 1e-9, share, x / 2.0)   # small x: 1 − (1 − e^{−x})/x ≈ x/2


def page_view_columns(offered: np.ndarray, served: np.ndarray, lat_ns: np.ndarray,
                      counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-second page-view columns from a ledger's rows (``counts`` in COUNTERS order)."""
    from .ledger import COUNTERS
    hits = counts[:, COUNTERS.index("browser_hits")].astype(float)
    views = offered.astype(float) + hits
    answered = served.astype(float) + hits
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(answered > 0, (lat_ns + hits * BROWSER_HIT_MS * 1e6) / np.maximum(answered, 1) / 1e6,
                        np.nan)
        share = np.where(views > 0, hits / np.maximum(views, 1), np.nan)
    return {"page_views": views, "page_view_mean_ms": mean, "browser_hit_share": share}


def page_view_totals(arrived: int, served: int, lat_ns_total: int, browser_hits: int) -> dict[str, float]:
    """The run's page-view totals (see the module's docstring)."""
    views = arrived + browser_hits
    answered = served + browser_hits
    return {
        "page_views": int(views),
        "page_view_mean_ms": (lat_ns_total / 1e6 + browser_hits * BROWSER_HIT_MS) / answered if answered else math.nan,
        "browser_hit_share": browser_hits / views if views else math.nan,
    }
