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
    return float(percentiles_ms(np.asarray(hist)[None, :], (q,))[0, 0])


def percentiles_ms(hists: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles of each row of ``hists`` (rows × bins): an array rows × len(qs); NaN for empty rows."""
    hists = np.asarray(hists, dtype=np.float64)
    cum = np.cumsum(hists, axis=1)
    total = cum[:, -1]
    out = np.full((len(hists), len(qs)), np.nan)
    for j, q in enumerate(qs):
        target = q * total
        i = (cum < target[:, None]).sum(axis=1)
        i = np.minimum(i, N_BINS - 1)
        rows = np.arange(len(hists))
        below = np.where(i > 0, cum[rows, np.maximum(i - 1, 0)], 0.0)
        here = hists[rows, i]
        frac = np.where(here > 0, (target - below) / np.where(here > 0, here, 1.0), 0.0)
        out[:, j] = np.where(total > 0, LAT_MIN_MS * BIN_RATIO ** (i + frac), np.nan)
    return out


class Keyed:
    """Growable rows × keys series (one column per node or edge), NaN before a key appeared."""

    def __init__(self) -> None:
        self.keys: dict = {}
        self.data = np.full((0, 0), np.nan)

    def write(self, i0: int, keys: list, block: np.ndarray) -> None:
        """Write ``block`` (rows × len(keys)) at rows i0.. for these keys."""
        for k in keys:
            if k not in self.keys:
                self.keys[k] = len(self.keys)
        rows, cols = i0 + block.shape[0], len(self.keys)
        if rows > self.data.shape[0] or cols > self.data.shape[1]:
            new = np.full((max(rows, 2 * self.data.shape[0], 64), max(cols, self.data.shape[1])), np.nan)
            new[:self.data.shape[0], :self.data.shape[1]] = self.data
            self.data = new
        idx = [self.keys[k] for k in keys]
        self.data[i0:rows, idx] = block

    def view(self, n: int) -> dict:
        return {k: self.data[:n, j] for k, j in self.keys.items()}


class Metrics:
    """Per-second series. Read the public attributes (arrays of length ``n``)."""

    COLUMNS = ("time_s", "offered_rps", "served_rps", "failed_rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
               "active_servers", "sessions_lost", "cost_server_s", "forged_accepted", "forged_rejected",
               "stale_reads", "browser_hits", "not_modified")

    def __init__(self) -> None:
        self.n = 0
        self._cols = Keyed()
        self._causes = Keyed()
        self._util = Keyed()
        self._util_max = Keyed()
        self._queue = Keyed()
        self._replicas = Keyed()
        self._flow = Keyed()

    def __getattr__(self, name: str) -> np.ndarray:
        if name in Metrics.COLUMNS:
            cols = self.__dict__["_cols"]
            j = cols.keys.get(name)
            return cols.data[:self.n, j] if j is not None else np.zeros(0)
        raise AttributeError(name)

    @property
    def failed_by_cause(self) -> dict[str, np.ndarray]:
        return self._causes.view(self.n)

    @property
    def util(self) -> dict[str, np.ndarray]:
        return self._util.view(self.n)

    @property
    def util_max(self) -> dict[str, np.ndarray]:
        """Per node, the utilization of its busiest replica that is up."""
        return self._util_max.view(self.n)

    @property
    def queue(self) -> dict[str, np.ndarray]:
        return self._queue.view(self.n)

    @property
    def replicas_up(self) -> dict[str, np.ndarray]:
        return self._replicas.view(self.n)

    @property
    def flow(self) -> dict[tuple[str, str], np.ndarray]:
        return self._flow.view(self.n)

    def extend(self, columns: dict[str, np.ndarray], causes: np.ndarray, nodes: list[str], util: np.ndarray,
               queue: np.ndarray, replicas: np.ndarray, edges: list, flow: np.ndarray,
               util_max: np.ndarray | None = None) -> None:
        """Add k seconds at once: every array has k rows."""
        k = len(columns["time_s"])
        i0 = self.n
        self._cols.write(i0, list(self.COLUMNS), np.column_stack([columns[c] for c in self.COLUMNS]))
        self._causes.write(i0, list(FAILURE_CAUSES), causes)
        self._util.write(i0, nodes, util)
        self._util_max.write(i0, nodes, util if util_max is None else util_max)
        self._queue.write(i0, nodes, queue)
        self._replicas.write(i0, nodes, replicas)
        if edges:
            self._flow.write(i0, edges, flow)
        self.n = i0 + k
