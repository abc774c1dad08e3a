"""One variant of a comparison or a sweep: a run reduced to plain numbers.

:func:`run_variant` is a pure function of (document, seed, duration): it returns a
:class:`VariantResult` of totals and per-second arrays (numpy, picklable), never the
:class:`~simulation.engine.Simulation` itself, so that variants can later run in other
processes. It runs in slices of simulated time, reporting progress through a callback
and checking a cancel flag between slices (the designer runs it on a worker thread).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .document import Document
from .parallel import Cancelled  # noqa: F401 - raised here, caught by the callers as variant_run.Cancelled

SLICE_S = 1.0    # simulated seconds between two progress reports / cancel checks

Progress = Callable[[float], None]      # simulated seconds done in this variant
Cancel = Callable[[], bool]             # true: stop as soon as possible


class VariantError(ValueError):
    """A variant cannot run; the message names it (``B (b.scalelab): ...``)."""


@dataclass
class VariantResult:
    """What a run leaves: ``totals`` (``Simulation.totals()`` plus ``cost_server_s`` and
    ``served_share``), and per-row arrays: ``columns`` (``Metrics.COLUMNS``), ``failed_by_cause``
    and ``util`` per node (rows are seconds, merged in long runs: see ``span_s``)."""

    seed: int
    duration_s: float
    totals: dict[str, Any]
    columns: dict[str, np.ndarray]
    failed_by_cause: dict[str, np.ndarray]
    util: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.columns.get("time_s", ()))

    def __getattr__(self, name: str) -> Any:
        # Reads like the engine's Metrics (``result.served_rps``), so the plots can show it.
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(name)


def total_cost(columns: dict[str, np.ndarray]) -> float:
    """Server-seconds over the run: replicas that exist, per row, times the row's length."""
    cost, span = columns.get("cost_server_s"), columns.get("span_s")
    if cost is None or not len(cost):
        return 0.0
    span = np.ones(len(cost)) if span is None or len(span) != len(cost) else span
    return float(np.sum(np.asarray(cost, dtype=float) * np.asarray(span, dtype=float)))


def served_share(totals: dict[str, Any]) -> float:
    """Served requests as a share of those that finished (served or failed); NaN if none did."""
    done = totals["served"] + totals["failed"]
    return totals["served"] / done if done else math.nan


def run_variant(document: Document, seed: int, duration_s: float, progress: Progress | None = None,
                cancel: Cancel | None = None) -> VariantResult:
    """Run ``document`` for ``duration_s`` simulated seconds with ``seed``.

    Raises :class:`Cancelled` when ``cancel()`` turns true, ``SimulationError`` (a
    ValueError) when the engine refuses the document."""
    from .engine import Simulation
    from .metrics import Metrics

    sim = Simulation(document, seed=int(seed), duration_s=float(duration_s))
    while sim.now < duration_s - 1e-9:
        if cancel is not None and cancel():
            raise Cancelled("cancelled")
        sim.advance(min(SLICE_S, duration_s - sim.now))
        if progress is not None:
            progress(float(sim.now))
    m = sim.metrics
    columns = {c: np.array(getattr(m, c), dtype=float) for c in Metrics.COLUMNS}
    totals = dict(sim.totals())
    totals["cost_server_s"] = total_cost(columns)
    totals["served_share"] = served_share(totals)
    return VariantResult(int(seed), float(duration_s), totals, columns,
                         {c: np.array(v, dtype=float) for c, v in m.failed_by_cause.items()},
                         {n: np.array(v, dtype=float) for n, v in m.util.items()})


def run_variants(jobs: list[tuple[str, Document]], seed: int, duration_s: float,
                 progress: Callable[[float, float], None] | None = None,
                 cancel: Cancel | None = None,
                 done: Callable[[int, VariantResult], None] | None = None,
                 processes: int = 1) -> list[VariantResult]:
    """Run each ``(name, document)`` on the same seed and duration.

    ``progress(done_s, total_s)`` counts simulated seconds over all variants; ``done(i,
    result)`` is called in order as each variant finishes. A variant the engine refuses
    raises :class:`VariantError` with its name in front of the engine's message.
    ``processes`` > 1 runs the variants in that many worker processes (``parallel.py``;
    ``cancel`` is then asked every 0.1 s and stops them); the results are the same as
    one after the other. Either way a cancel raises :class:`Cancelled`."""
    from .parallel import run_tasks

    total = len(jobs) * float(duration_s)
    report = None if progress is None else (lambda s: progress(s, total))

    def serial(i: int, report_i: Callable[[float], None]) -> VariantResult:
        name, doc = jobs[i]
        return _named_run(name, doc, seed, duration_s, report_i, cancel)

    tasks = [(_variant_task, (name, doc, seed, duration_s)) for name, doc in jobs]
    return run_tasks(tasks, processes, [float(duration_s)] * len(jobs), report, done, serial, cancel)


def _named_run(name: str, doc: Document, seed: int, duration_s: float, progress: Progress | None,
               cancel: Cancel | None) -> VariantResult:
    try:
        return run_variant(doc, seed, duration_s, progress, cancel)
    except Cancelled:
        raise
    except ValueError as e:
        raise VariantError(f"{name}: {e}") from None


def _variant_task(name: str, doc: Document, seed: int, duration_s: float) -> VariantResult:
    """One variant in a worker process (``parallel.run_tasks``), reporting its progress."""
    from .parallel import report
    return _named_run(name, doc, seed, duration_s, report, None)
