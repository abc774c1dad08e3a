"""Comparing two topologies run on the same seed and duration: totals side by side.

:func:`compare` runs both variants (``variant_run``); :func:`rows` lines their totals up
with the difference B − A and its relative size; :func:`text`, :func:`csv_text` and
:func:`json_dict` are what ``scalelab compare`` prints and writes (and the designer's
table shows the same rows).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any, Callable

from .document import Document
from .ledger import COUNTERS
from .state import CAUSE_LABELS, FAILURE_CAUSES
from .variant_run import Cancel, VariantResult, run_variants

COUNTER_LABELS = {"forged_accepted": "forged cookies believed", "forged_rejected": "forged cookies refused",
                  "stale_reads": "stale reads", "browser_hits": "browser hits", "not_modified": "304 answers",
                  "write_conflicts": "write conflicts", "id_collisions": "id collisions"}


@dataclass(frozen=True)
class Row:
    """One line of the comparison. ``unit`` is ``""`` (a count), ``"ms"``, ``"%"`` (a share,
    kept as 0..1; its difference is in percentage points) or ``"s"``."""

    key: str
    label: str
    a: float | None
    b: float | None
    unit: str = ""

    @property
    def diff(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return self.b - self.a

    @property
    def relative(self) -> float | None:
        """(B − A) / A, None when A is 0 or missing (or for shares: their difference says it)."""
        if self.diff is None or self.unit == "%" or not self.a:
            return None
        return self.diff / abs(self.a)


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[Row]:
    """The totals of two runs, line by line. Failure causes and counters that are zero in
    both runs are left out; the main lines are always there."""
    out = [Row("arrived", "arrived", a["arrived"], b["arrived"]),
           Row("served", "served", a["served"], b["served"]),
           Row("failed", "failed", a["failed"], b["failed"])]
    for cause in FAILURE_CAUSES:
        ca, cb = a["failed_by_cause"].get(cause, 0), b["failed_by_cause"].get(cause, 0)
        if ca or cb:
            out.append(Row(f"failed:{cause}", f"  {CAUSE_LABELS.get(cause, cause).lower()}", ca, cb))
    out += [Row("in_flight", "in flight", a["in_flight"], b["in_flight"]),
            Row("served_share", "served share", _number(a["served_share"]), _number(b["served_share"]), "%")]
    for q in ("mean", "p50", "p95", "p99"):
        out.append(Row(f"{q}_ms", f"{q} latency", _number(a[f"{q}_ms"]), _number(b[f"{q}_ms"]), "ms"))
    out += [Row("sessions_lost", "sessions lost", a["sessions_lost"], b["sessions_lost"]),
            Row("cost_server_s", "cost (server-s)", a["cost_server_s"], b["cost_server_s"], "s")]
    for name in COUNTERS:
        if a.get(name) or b.get(name):
            out.append(Row(name, COUNTER_LABELS.get(name, name), a.get(name, 0), b.get(name, 0)))
    return out


def compare(doc_a: Document, doc_b: Document, seed: int, duration_s: float,
            names: tuple[str, str] = ("A", "B"), progress: Callable[[float, float], None] | None = None,
            cancel: Cancel | None = None, processes: int = 1) -> tuple[VariantResult, VariantResult]:
    """Run A and B on the same seed for the same duration (each a pure function of
    (document, seed, duration)); ``progress(done_s, total_s)`` over both; ``processes``
    > 1: both at once in worker processes (same numbers)."""
    a, b = run_variants([(names[0], doc_a), (names[1], doc_b)], seed, duration_s, progress, cancel,
                        processes=processes)
    return a, b


def default_duration(doc_a: Document, doc_b: Document) -> float:
    """The longer of the two files' durations."""
    return float(max(doc_a.settings["duration_s"], doc_b.settings["duration_s"]))


# ----- text --------------------------------------------------------------------------------------
def value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{value * 100:.2f} %"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:,.0f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def diff_text(row: Row) -> str:
    d = row.diff
    if d is None:
        return "—"
    if d == 0:
        return "0"
    if row.unit == "%":
        return f"{d * 100:+.2f} pt"
    if row.unit == "ms":
        return f"{d:+,.1f} ms"
    return f"{d:+,.0f}" if float(d).is_integer() else f"{d:+,.2f}"


def relative_text(row: Row) -> str:
    r = row.relative
    return "" if r is None else f"{r * 100:+.1f} %"


def table(lines: list[Row], heads: tuple[str, str] = ("A", "B")) -> list[str]:
    cells = [(r.label, value_text(r.a, r.unit), value_text(r.b, r.unit), diff_text(r), relative_text(r))
             for r in lines]
    header = ("", heads[0], heads[1], "B − A", "%")
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(5)]
    fmt = lambda c: "  ".join([c[0].ljust(widths[0])] + [c[i].rjust(widths[i]) for i in range(1, 5)]).rstrip()
    return [fmt(header)] + [fmt(c) for c in cells]


def text(a: VariantResult, b: VariantResult, files: tuple[str, str], titles: tuple[str, str],
         wall_s: float) -> str:
    head = [f"{label}: {f}" + (f" — {t}" if t else "") for label, f, t in zip("AB", files, titles)]
    head.append(f"{a.duration_s:g} s simulated each, seed {a.seed}, in {wall_s:.1f} s")
    return "\n".join(head + [""] + table(rows(a.totals, b.totals)))


def csv_text(a: VariantResult, b: VariantResult) -> str:
    """Both runs' per-second rows, one under the other, told apart by the first column
    ``variant`` (``A`` or ``B``); a ``util:<node>`` column for every node of either
    (empty for the variant that does not have it)."""
    from .metrics import Metrics

    nodes = list(a.util) + [n for n in b.util if n not in a.util]
    columns = (["variant"] + list(Metrics.COLUMNS) + [f"failed:{c}" for c in FAILURE_CAUSES]
               + [f"util:{n}" for n in nodes])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for label, r in (("A", a), ("B", b)):
        series = ([r.columns[c] for c in Metrics.COLUMNS] + [r.failed_by_cause.get(c) for c in FAILURE_CAUSES]
                  + [r.util.get(n) for n in nodes])
        for i in range(r.n):
            writer.writerow([label] + [_cell(s[i]) if s is not None else "" for s in series])
    return out.getvalue()


def _cell(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return ""
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def _plain(totals: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in totals.items()}


def json_dict(a: VariantResult, b: VariantResult, files: tuple[str, str]) -> dict[str, Any]:
    """Both totals (with ``file``), the seed and duration, and ``difference``: B − A per line."""
    return {"seed": a.seed, "duration_s": a.duration_s,
            "A": dict(_plain(a.totals), file=files[0]), "B": dict(_plain(b.totals), file=files[1]),
            "difference": {r.key: r.diff for r in rows(a.totals, b.totals)}}
