"""Grading: measure a file's goals (``goals.py``) on a finished run.

Numbers come from the run's totals (the JSON summary of ``scalelab simulate``)
or, for a goal with a window, from the per-second rows that start inside it
(the CSV's rows): counts are rate × span summed, shares are ratios of those
sums, percentiles come from the rows' merged latency histograms (exact, not an
average of percentiles). ``no_single_point_of_failure`` reads the structural
analysis; ``survives_any_single_failure`` runs the engine once per machine
(``spof_measure.py``), which takes a while: callers may measure it beforehand
(:func:`survival`, on a worker thread in the designer) and pass the result in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .analysis import Measured
from .document import Document
from .goals import Goal, format_value
from .metrics import percentile_ms

COUNTS = ("sessions_lost", "stale_reads", "forged_accepted", "write_conflicts", "id_collisions", "stale_page_views")
PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
Losses = dict[str, Measured]


@dataclass(frozen=True)
class GoalResult:
    """One goal, measured. ``met`` is None when it was not checked (e.g. cancelled)."""
    goal: Goal
    measured: float
    met: bool | None
    detail: str = ""       # what the number is about, e.g. "when Database fails"

    @property
    def title(self) -> str:
        return self.goal.title()

    @property
    def target(self) -> str:
        return self.goal.target()

    @property
    def measured_text(self) -> str:
        g = self.goal
        if self.met is None:
            return self.detail or "not checked"
        if g.metric == "no_single_point_of_failure":
            return "none" if self.met else f"{int(self.measured)}: {self.detail}"
        kind = "share" if g.metric == "survives_any_single_failure" else g.spec.kind
        near = g.loss_limit if g.metric == "survives_any_single_failure" else (
            g.at_most if g.at_most is not None and self.measured > g.at_most else g.at_least)
        text = format_value(kind, self.measured, near)
        if math.isnan(self.measured):
            text = self.detail or "nothing measured"
        elif self.detail:
            text += f" ({self.detail})"
        return text

    @property
    def mark(self) -> str:
        return "?" if self.met is None else "✓" if self.met else "✗"

    @property
    def text(self) -> str:
        """One line a student reads: ``p95 latency ≤ 200 ms — measured 143 ms ✓``."""
        head = f"{self.title} {self.target}".strip()
        if self.goal.metric == "survives_any_single_failure" and self.met is not None:
            return f"{head} — worst loss {self.measured_text} {self.mark}"
        if self.goal.metric == "no_single_point_of_failure" and self.met is not None:
            return f"{head} — {'none found' if self.met else 'found ' + self.measured_text} {self.mark}"
        return f"{head} — measured {self.measured_text} {self.mark}"

    def to_dict(self) -> dict[str, Any]:
        value = None if math.isnan(self.measured) else self.measured
        return {**self.goal.to_dict(), "measured": value, "met": self.met, "text": self.text}


# ----- numbers from the run -----------------------------------------------------------------------
def _window_rows(sim: Any, goal: Goal) -> np.ndarray:
    """Which per-second rows a window covers: those whose span starts in [from_s, to_s)."""
    m = sim.metrics
    start = m.time_s - m.span_s
    lo = -math.inf if goal.from_s is None else goal.from_s - 1e-9
    hi = math.inf if goal.to_s is None else goal.to_s - 1e-9
    return (start >= lo) & (start < hi)


def measure_number(sim: Any, goal: Goal) -> float:
    """The measured value of a numeric goal (NaN when there is nothing to measure)."""
    metric = goal.metric
    m = sim.metrics
    if not goal.windowed:
        t = sim.totals()
        if metric == "served_share":
            return t["served"] / t["arrived"] if t["arrived"] else math.nan
        if metric == "failed_share":
            return t["failed"] / t["arrived"] if t["arrived"] else math.nan
        if metric == "throughput":
            return t["served"] / sim.now if sim.now > 0 else math.nan
        if metric in ("cost_server_s", "cost_usd"):
            return float(np.sum(getattr(m, metric) * m.span_s))
        return float(t[metric])
    rows = _window_rows(sim, goal)
    if not rows.any():
        return math.nan
    span = m.span_s[rows]

    def total(column: str) -> float:
        return float(np.sum(getattr(m, column)[rows] * span))

    if metric in ("served_share", "failed_share"):
        arrived = total("offered_rps")
        done = total("served_rps" if metric == "served_share" else "failed_rps")
        return done / arrived if arrived else math.nan
    if metric == "throughput":
        return total("served_rps") / float(span.sum())
    if metric in ("cost_server_s", "cost_usd"):
        return total(metric)
    if metric in COUNTS:
        return float(round(total(metric)))
    hist, served, lat_ns = m.latency_of_rows(rows)
    if not served:
        return math.nan
    if metric == "mean_ms":
        return lat_ns / served / 1e6
    return percentile_ms(hist, PERCENTILES[metric])


def survival(doc: Document, seconds: float, seed: int | None = None,
             progress: Callable[[int, int], None] | None = None, processes: int = 1,
             cancel: Callable[[], bool] | None = None) -> Losses:
    """Fail each node's machine in turn (``spof_measure.measure``, on ``processes``
    worker processes if > 1; ``cancel`` as there): ``{node: Measured}``."""
    from .spof_measure import measure
    return measure(doc, seconds=seconds, seed=seed, progress=progress, processes=processes, cancel=cancel)


def survival_runs(doc: Document) -> int:
    """Engine runs one :func:`survival` makes (for a progress bar)."""
    return 2 * (sum(doc.kind(n) != "client" for n in doc.node_ids()) + 1)


def _survives(doc: Document, goal: Goal, losses: Losses) -> GoalResult:
    if not losses:
        return GoalResult(goal, 0.0, True, "no machine to fail")
    node, worst = max(losses.items(), key=lambda kv: -1.0 if math.isnan(kv[1].share) else kv[1].share)
    share = worst.share
    if math.isnan(share):
        return GoalResult(goal, math.nan, False, "nothing was served")
    name = doc.node(node).label or node
    return GoalResult(goal, share, share <= goal.loss_limit, f"when {name} fails" if share >= 0.0005 else "")


def _no_spof(doc: Document, goal: Goal) -> GoalResult:
    from .analysis import structural_spof
    full = [n for n, s in structural_spof(doc).items() if s.full]
    names = ", ".join(doc.node(n).label or n for n in full)
    return GoalResult(goal, float(len(full)), not full, names)


def evaluate(goals: list[Goal], doc: Document, sim: Any, losses: dict[float, Losses] | None = None,
             seed: int | None = None, progress: Callable[[int, int], None] | None = None,
             processes: int = 1) -> list[GoalResult]:
    """Measure every goal on the finished (or paused) run ``sim`` of ``doc``.

    ``losses`` maps a ``seconds`` value to what :func:`survival` measured for it (None:
    cancelled, the goal is not checked); a
    survives_any_single_failure goal whose seconds are missing is measured here
    (with ``seed``, default the run's; ``progress(done, total)`` after each engine run;
    on ``processes`` worker processes if > 1)."""
    losses = {} if losses is None else losses
    out = []
    for goal in goals:
        if goal.metric == "no_single_point_of_failure":
            out.append(_no_spof(doc, goal))
        elif goal.metric == "survives_any_single_failure":
            if goal.run_seconds not in losses:
                losses[goal.run_seconds] = survival(doc, goal.run_seconds,
                                                    getattr(sim, "seed", None) if seed is None else seed, progress,
                                                    processes)
            measured = losses[goal.run_seconds]
            out.append(GoalResult(goal, math.nan, None, "not checked (cancelled)") if measured is None
                       else _survives(doc, goal, measured))
        else:
            value = measure_number(sim, goal)
            detail = ""
            if math.isnan(value):
                detail = ("no second of the run is in this window" if goal.windowed and not _window_rows(sim, goal).any()
                          else "nothing was served" if goal.spec.kind in ("ms", "share", "rate") else "")
            out.append(GoalResult(goal, value, goal.met_by(value), detail))
    return out


def not_checked(goals: list[Goal], why: str) -> list[GoalResult]:
    return [GoalResult(g, math.nan, None, why) for g in goals]
