"""What ``scalelab simulate`` writes and prints: the per-second CSV, the totals (JSON) and
the summary on the terminal (``cli.py``)."""
from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

# The CSV's first columns, fixed by DESIGN.md; the engine's other per-second columns follow.
CSV_COLUMNS = ("time_s", "offered_rps", "served_rps", "failed_rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
               "active_servers")


def _cell(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def csv_text(sim: Any) -> str:
    """One row per simulated second: the fixed columns, ``util:<node>``, ``failed:<cause>``."""
    from .state import FAILURE_CAUSES

    m = sim.metrics
    util = m.util
    ids = sim.document.node_ids()
    shard_cols = [f"{n}#{s}" for n in ids for s in range(64) if f"{n}#{s}" in util]   # sharding.py
    order = ([n for n in ids if n in util] + shard_cols
             + sorted(set(util) - set(ids) - set(shard_cols)))
    causes = m.failed_by_cause
    fixed = list(CSV_COLUMNS) + [c for c in getattr(m, "COLUMNS", ()) if c not in CSV_COLUMNS]
    several = [n for n in order if n in sim.net.node_ids
               and len(sim.net.node_stations[sim.net.node_ids.index(n)]) > 1] if hasattr(sim, "net") else []
    util_max = m.util_max
    columns = (fixed + [f"util:{n}" for n in order] + [f"util_max:{n}" for n in several]
               + [f"failed:{c}" for c in FAILURE_CAUSES])
    series = ([getattr(m, c) for c in fixed] + [util[n] for n in order] + [util_max[n] for n in several]
              + [causes.get(c, np.zeros(m.n)) for c in FAILURE_CAUSES])   # (no second closed yet: none)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for i in range(m.n):
        writer.writerow([_cell(float(s[i])) for s in series])
    return out.getvalue()


def summary_dict(sim: Any, duration_s: float, seed: int, file: str) -> dict[str, Any]:
    """``sim.totals()`` plus what the run was; NaN (nothing served) becomes null."""
    totals = dict(sim.totals())
    for key, value in totals.items():
        if isinstance(value, float) and not math.isfinite(value):
            totals[key] = None
    totals.update(duration_s=duration_s, seed=seed, file=file, seconds_written=int(sim.metrics.n))
    return totals


def summary_text(s: dict[str, Any], wall_s: float) -> str:
    arrived = s["arrived"]

    def share(n: int) -> str:
        return f" ({n / arrived * 100:.1f} %)" if arrived else ""

    def ms(key: str) -> str:
        return "—" if s[key] is None else f"{s[key]:.1f} ms"

    causes = ", ".join(f"{c} {n:,}" for c, n in s["failed_by_cause"].items() if n)
    lines = [
        f"{s['file']}: {s['duration_s']:g} s simulated (seed {s['seed']}) in {wall_s:.1f} s",
        f"  arrived        {arrived:,}",
        f"  served         {s['served']:,}{share(s['served'])}",
        f"  failed         {s['failed']:,}{share(s['failed'])}" + (f": {causes}" if causes else ""),
        f"  in flight      {s['in_flight']:,}",
        f"  latency        mean {ms('mean_ms')}, p50 {ms('p50_ms')}, p95 {ms('p95_ms')}, p99 {ms('p99_ms')}",
        f"  sessions lost  {s['sessions_lost']:,}",
    ]
    for key, label in (("browser_hits", "browser hits"), ("not_modified", "304 answers"),
                       ("stale_reads", "stale reads"), ("forged_accepted", "forged cookies believed"),
                       ("forged_rejected", "forged cookies refused"), ("write_conflicts", "write conflicts"),
                       ("id_collisions", "id collisions")):
        if s.get(key):
            lines.append(f"  {label:<14} {s[key]:,}")
    if s.get("browser_hits"):
        lines.append(f"  page views     {s['page_views']:,}: {s['browser_hit_share'] * 100:.1f} % from the browser "
                     f"cache, mean {ms('page_view_mean_ms')}" + (f", {s['stale_page_views']:,} stale"
                                                                 if s.get("stale_page_views") else ""))
    whole = int(math.floor(s["duration_s"] + 1e-9))
    if s.get("seconds_written", whole) < whole:   # seconds stay open while a request waits undecided
        lines.append(f"  per second     {s['seconds_written']:,} of {whole:,} seconds written: the others still wait "
                     f"for requests queued at servers with blocking_calls (run longer to see them)")
    if s.get("server_hours"):
        lines.append(f"  cost           ${s['cost_usd']:,.{2 if s['cost_usd'] >= 1 else 4}f}, "
                     f"{s['server_hours']:,.3g} server-hours")
    return "\n".join(lines)
