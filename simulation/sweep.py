"""A load test: run one topology at each value of one numeric parameter, and find the knee.

``--vary NODE.PARAM=START:STOP:STEP`` names a node (by id, or by its label) and one of
its numeric parameters; the values run from START to STOP inclusive (STEP may be
negative, to put the lightest load first). Each value makes a variant document through
the file loader itself, so a value the loader would refuse is refused here with the
loader's words. Every variant runs on the same seed for the same duration
(``variant_run``: a pure function of document, seed and duration).

The knee (:func:`find_knee`): the first value, in sweep order, where the p95 latency
exceeds :data:`KNEE_P95_FACTOR` times its value at the first value of the sweep, or where
more than :data:`KNEE_FAILED_SHARE` of the arrived requests failed.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any, Callable

from .document import Document
from .fileformat import document_from_dict, document_to_dict
from .kinds import KINDS
from .params import FormatError
from .params import _fmt as fmt_number
from .variant_run import Cancel, VariantResult, run_variants

MAX_VALUES = 200
KNEE_P95_FACTOR = 3.0
KNEE_FAILED_SHARE = 0.01
KNEE_RULE = (f"the first value where p95 exceeds {KNEE_P95_FACTOR:g}× its value at the first value, "
             f"or more than {KNEE_FAILED_SHARE * 100:g} % of requests fail")
CSV_COLUMNS = ("value", "offered_rps", "throughput_rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
               "arrived", "served", "failed", "failed_share", "knee")


class VaryError(ValueError):
    """A ``--vary`` that cannot be used; ``usage`` when it is wrong whatever the file."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Range:
    """``NODE.PARAM=START:STOP:STEP`` as written, before the file is consulted."""

    text: str
    node: str
    param: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Vary:
    """A range resolved against a document: the node's id and the parameter's declaration."""

    text: str
    node_id: str
    param: str
    values: tuple[float | int, ...]

    @property
    def name(self) -> str:
        return self.param


@dataclass
class Point:
    """One value of the sweep and what the run at it gave."""

    value: float | int
    result: VariantResult

    @property
    def duration_s(self) -> float:
        return self.result.duration_s

    @property
    def totals(self) -> dict[str, Any]:
        return self.result.totals

    @property
    def offered_rps(self) -> float:
        return self.totals["arrived"] / self.duration_s

    @property
    def throughput_rps(self) -> float:
        return self.totals["served"] / self.duration_s

    def latency(self, q: str) -> float | None:
        v = self.totals[f"{q}_ms"]
        return None if v is None or not math.isfinite(v) else float(v)

    @property
    def failed_share(self) -> float:
        arrived = self.totals["arrived"]
        return self.totals["failed"] / arrived if arrived else 0.0


@dataclass(frozen=True)
class Knee:
    index: int
    value: float | int
    reason: str        # "p95", "failures" or "both"
    p95_before: float | None
    p95_at: float | None
    failed_share: float


# ----- the range ---------------------------------------------------------------------------------
def _number(part: str, what: str, text: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise VaryError(f"--vary {text}: {what} {part.strip()[:30]!r} is not a number", usage=True) from None
    if not math.isfinite(value):
        raise VaryError(f"--vary {text}: {what} must be a finite number, got {part.strip()[:30]!r}", usage=True)
    return value


def parse_range(text: str, max_values: int = MAX_VALUES) -> Range:
    """Read ``NODE.PARAM=START:STOP:STEP``; :class:`VaryError` (usage) when malformed."""
    shape = f"--vary must look like NODE.PARAM=START:STOP:STEP (e.g. users.rate_rps=100:1000:100), got {text[:60]!r}"
    target, eq, spec = text.rpartition("=")
    node, dot, param = target.rpartition(".")
    parts = spec.split(":")
    if not eq or not dot or not node or not param or len(parts) != 3:
        raise VaryError(shape, usage=True)
    start, stop, step = (_number(p, w, text) for p, w in zip(parts, ("START", "STOP", "STEP")))
    if step == 0:
        raise VaryError(f"--vary {text}: STEP must not be 0", usage=True)
    if (stop - start) * step < 0:
        raise VaryError(f"--vary {text}: STEP {fmt_number(step)} goes away from STOP "
                        f"(use {'-' if step > 0 else ''}{fmt_number(abs(step))})", usage=True)
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > max_values:
        raise VaryError(f"--vary {text} gives {count:,} values; at most {max_values} (use a larger STEP)",
                        usage=True)
    values = tuple(float(f"{start + i * step:.12g}") for i in range(count))
    return Range(text, node.strip(), param.strip(), values)


def _find_node(doc: Document, name: str, text: str) -> str:
    if name in doc:
        return name
    labelled = [n for n in doc.node_ids() if doc.node(n).label == name]
    if len(labelled) == 1:
        return labelled[0]
    if len(labelled) > 1:
        raise VaryError(f"--vary {text}: the label {name!r} names {len(labelled)} nodes "
                        f"({', '.join(labelled[:5])}); use a node id")
    ids = doc.node_ids()
    shown = ", ".join(ids[:12]) + (", ..." if len(ids) > 12 else "")
    raise VaryError(f"--vary {text}: there is no node {name!r} (by id or label; ids: {shown})")


def numeric_params(kind: str) -> list[str]:
    return [p.name for p in KINDS[kind].params if p.type in ("int", "float")]


def resolve(doc: Document, rng: Range) -> Vary:
    """Find the node and the parameter, and check every value with the loader's rules."""
    node_id = _find_node(doc, rng.node, rng.text)
    kind = KINDS[doc.kind(node_id)]
    numeric = numeric_params(kind.name)
    if rng.param not in kind.param_names:
        raise VaryError(f"--vary {rng.text}: a {kind.label.lower()} has no parameter {rng.param!r} "
                        f"(numeric ones: {', '.join(numeric)})")
    if rng.param not in numeric:
        raise VaryError(f"--vary {rng.text}: {rng.param} is not a numeric parameter "
                        f"(numeric ones of a {kind.label.lower()}: {', '.join(numeric)})")
    integer = kind.param(rng.param).type == "int"
    values = tuple(int(v) if integer and float(v).is_integer() else v for v in rng.values)
    vary = Vary(rng.text, node_id, rng.param, values)
    data = document_to_dict(doc)
    for v in values:
        _variant_from(data, vary, v)   # refused with the loader's message (the document is dropped)
    return vary


def _variant_from(data: dict, vary: Vary, value: float | int) -> Document:
    node = next(n for n in data["nodes"] if n["id"] == vary.node_id)
    old = node["params"]
    node["params"] = dict(old, **{vary.param: value})
    try:
        return document_from_dict(data)
    except FormatError as e:
        raise VaryError(f"--vary {vary.text}: at {vary.param} = {fmt_number(value)}: {e}") from None
    finally:
        node["params"] = old


def variant(doc: Document, vary: Vary, value: float | int) -> Document:
    """A copy of ``doc`` with the parameter set to ``value`` (checked as the loader does)."""
    return _variant_from(document_to_dict(doc), vary, value)


# ----- running -----------------------------------------------------------------------------------
def sweep(doc: Document, vary: Vary, seed: int, duration_s: float,
          progress: Callable[[float, float], None] | None = None, cancel: Cancel | None = None,
          on_point: Callable[[Point], None] | None = None, processes: int = 1) -> list[Point]:
    """Run the document at each value. ``progress(done_s, total_s)`` in simulated seconds over
    the whole sweep; ``on_point(point)`` as each value finishes, in order; ``cancel()`` stops it
    (raising ``Cancelled``); ``processes`` > 1 runs the values in worker processes (same numbers)."""
    data = document_to_dict(doc)
    jobs = [(f"{vary.param} = {fmt_number(v)}", _variant_from(data, vary, v)) for v in vary.values]
    points: list[Point] = []

    def finished(i: int, result: VariantResult) -> None:
        points.append(Point(vary.values[i], result))
        if on_point is not None:
            on_point(points[-1])

    run_variants(jobs, seed, duration_s, progress, cancel, finished, processes=processes)
    return points


def find_knee(points: list[Point]) -> Knee | None:
    """The knee of the sweep (see the module's docstring), or None."""
    if not points:
        return None
    base = points[0].latency("p95")
    for i, p in enumerate(points):
        p95 = p.latency("p95")
        slow = i > 0 and base is not None and p95 is not None and p95 > KNEE_P95_FACTOR * base
        failing = p.failed_share > KNEE_FAILED_SHARE
        if slow or failing:
            reason = "both" if slow and failing else ("p95" if slow else "failures")
            return Knee(i, p.value, reason, base, p95, p.failed_share)
    return None


def knee_text(knee: Knee | None, vary: Vary, points: list[Point]) -> str:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:,.0f} ms"

    if knee is None:
        if not points:
            return "no values were run"
        return (f"no knee up to {vary.param} = {fmt_number(points[-1].value)}: p95 stays within "
                f"{KNEE_P95_FACTOR:g}× of {ms(points[0].latency('p95'))} and failures at most "
                f"{KNEE_FAILED_SHARE * 100:g} %")
    head = f"knee at {vary.param} = {fmt_number(knee.value)}: "
    share = f"{knee.failed_share * 100:.1f} %"
    if knee.reason == "failures":
        return head + f"failures reach {share} (p95 {ms(knee.p95_before)} at first, {ms(knee.p95_at)} here)"
    text = head + f"p95 jumps from {ms(knee.p95_before)} to {ms(knee.p95_at)}"
    return text + (f", failures reach {share}" if knee.reason == "both" else "")


# ----- output ------------------------------------------------------------------------------------
def table(vary: Vary, points: list[Point]) -> list[str]:
    knee = find_knee(points)

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:,.1f}"

    head = (vary.param, "offered/s", "served/s", "p50 ms", "p95 ms", "p99 ms", "failed", "")
    cells = [(fmt_number(p.value), f"{p.offered_rps:,.1f}", f"{p.throughput_rps:,.1f}", ms(p.latency("p50")),
              ms(p.latency("p95")), ms(p.latency("p99")),
              f"{p.totals['failed']:,} ({p.failed_share * 100:.1f} %)",
              "← knee" if knee is not None and i == knee.index else "") for i, p in enumerate(points)]
    widths = [max(len(c[i]) for c in cells + [head]) for i in range(len(head))]
    return ["  ".join(c[i].rjust(widths[i]) for i in range(len(head))).rstrip() for c in [head] + cells]


def csv_text(vary: Vary, points: list[Point]) -> str:
    """One row per value: :data:`CSV_COLUMNS` (``knee`` is 1 on the knee's row)."""
    knee = find_knee(points)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def cell(v: float | None) -> str:
        return "" if v is None else f"{v:.6g}"

    for i, p in enumerate(points):
        t = p.totals
        writer.writerow([fmt_number(p.value), cell(p.offered_rps), cell(p.throughput_rps), cell(p.latency("p50")),
                         cell(p.latency("p95")), cell(p.latency("p99")), cell(p.latency("mean")),
                         t["arrived"], t["served"], t["failed"], cell(p.failed_share),
                         int(knee is not None and knee.index == i)])
    return out.getvalue()
