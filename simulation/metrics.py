"""Metrics: one row per simulated second, in preallocated arrays that grow.

Latencies go into log-spaced histograms (1 % wide bins from 10 µs to 10⁴ s,
like HdrHistogram), one for the current second and one for the whole run, so
percentiles are accurate to about half a percent whatever the rate, and the
mean is kept exactly as a sum.
"""
from __future__ import annotations

import math

import numpy as np

from .state import FAILURE_CAUSES

LAT_MIN_MS = 0.01
BIN_RATIO = 1.01
N_BINS = int(math.ceil(math.log(1e7 / LAT_MIN_MS) / math.log(BIN_RATIO))) + 1
_LOG_RATIO = math.log(BIN_RATIO)


def latency_bins(latency_s: np.ndarray) -> np.ndarray:
    ms = np.maximum(np.asarray(latency_s) * 1000.0, LAT_MIN_MS)
    return np.minimum((np.log(ms / LAT_MIN_MS) / _LOG_RATIO).astype(np.int64), N_BINS - 1)


def percentile_ms(hist: np.ndarray, q: float) -> float:
    """The q-quantile (0..1) of a latency histogram, interpolated within its bin."""
    total = hist.sum()
    if total <= 0:
        return math.nan
    cum = np.cumsum(hist)
    target = q * total
    i = int(np.searchsorted(cum, target, side="left"))
    i = min(i, N_BINS - 1)
    below = cum[i - 1] if i > 0 else 0
    frac = (target - below) / hist[i] if hist[i] > 0 else 0.0
    return float(LAT_MIN_MS * BIN_RATIO ** (i + frac))


class Series:
    """A growable float array, NaN-filled."""

    def __init__(self, capacity: int) -> None:
        self.data = np.full(capacity, np.nan)

    def ensure(self, n: int) -> None:
        if n > len(self.data):
            new = np.full(max(n, 2 * len(self.data)), np.nan)
            new[:len(self.data)] = self.data
            self.data = new


class Metrics:
    """Per-second series. Read the public attributes (arrays of length ``n``)."""

    COLUMNS = ("time_s", "offered_rps", "served_rps", "failed_rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
               "active_servers", "sessions_lost", "cost_server_s")

    def __init__(self, capacity: int = 256) -> None:
        self.n = 0
        self._cap = capacity
        self._cols = {c: Series(capacity) for c in self.COLUMNS}
        self._causes = {c: Series(capacity) for c in FAILURE_CAUSES}
        self._util: dict[str, Series] = {}
        self._queue: dict[str, Series] = {}
        self._replicas: dict[str, Series] = {}
        self._flow: dict[tuple[str, str], Series] = {}

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("_cols")
        if cols is not None and name in cols:
            return cols[name].data[:self.n]
        raise AttributeError(name)

    @property
    def failed_by_cause(self) -> dict[str, np.ndarray]:
        return {c: s.data[:self.n] for c, s in self._causes.items()}

    @property
    def util(self) -> dict[str, np.ndarray]:
        return {k: s.data[:self.n] for k, s in self._util.items()}

    @property
    def queue(self) -> dict[str, np.ndarray]:
        return {k: s.data[:self.n] for k, s in self._queue.items()}

    @property
    def replicas_up(self) -> dict[str, np.ndarray]:
        return {k: s.data[:self.n] for k, s in self._replicas.items()}

    @property
    def flow(self) -> dict[tuple[str, str], np.ndarray]:
        return {k: s.data[:self.n] for k, s in self._flow.items()}

    def append(self, row: dict[str, float], causes: dict[str, float], util: dict[str, float],
               queue: dict[str, float], replicas: dict[str, float], flow: dict[tuple[str, str], float]) -> None:
        i = self.n
        for group, values in ((self._cols, row), (self._causes, causes)):
            for key, s in group.items():
                s.ensure(i + 1)
                s.data[i] = values.get(key, 0.0)
        for group, values in ((self._util, util), (self._queue, queue), (self._replicas, replicas),
                              (self._flow, flow)):
            for key, v in values.items():
                s = group.get(key)
                if s is None:
                    s = group[key] = Series(max(self._cap, i + 1))
                s.ensure(i + 1)
                s.data[i] = v
        self.n = i + 1

    def row_dicts(self) -> list[dict[str, float]]:
        """Rows for CSV export: the fixed columns, then util:<node> and failed:<cause>."""
        rows = []
        util = self.util
        causes = self.failed_by_cause
        for i in range(self.n):
            row = {c: float(self._cols[c].data[i]) for c in self.COLUMNS}
            for node, arr in util.items():
                row[f"util:{node}"] = float(arr[i])
            for cause, arr in causes.items():
                row[f"failed:{cause}"] = float(arr[i])
            rows.append(row)
        return rows
