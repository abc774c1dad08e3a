"""The metrics' latency histogram of each row, stored over the bins that are used.

A run's latencies usually fill a few hundred of the 2,084 bins (latency_hist.py), so
the rows keep only a window of bins ``[lo, hi)`` (in steps of ``CHUNK``) that covers
every count so far; the bins outside it are zero. The window widens when a latency
falls outside it (a few times per run). Counts are ``uint32``, at most ``HIST_MAX``
per bin (they saturate). Merged rows, windows of rows and percentiles give exactly
what full-width rows would.

Room for rows is made ahead (Metrics asks for all the rows a run keeps at once), but
uninitialised: a row is defined once written (``write``), so memory is only touched,
and copied when the array is replaced, for the rows in use.
"""
from __future__ import annotations

import numpy as np

from .latency_hist import N_BINS, exponents_numpy, ms_of, percentile_exponents, percentiles_ms

HIST_MAX = np.iinfo(np.uint32).max
_QS: dict[tuple, np.ndarray] = {}   # quantiles as arrays, by tuple
CHUNK = 256     # the window's ends are multiples of this (or N_BINS): it widens a few times at most


class HistRows:
    """Rows × bins counts (``data``: rows × (hi - lo), the columns are bins lo..hi-1). Rows
    from the first one not yet written on are undefined: callers say how many are in use."""

    def __init__(self) -> None:
        self.data = np.zeros((0, 0), dtype=np.uint32)
        self.lo = 0
        self.hi = 0

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def __len__(self) -> int:
        return len(self.data)

    def grow(self, size: int, used: int) -> None:
        """Room for ``size`` rows; the first ``used`` are kept."""
        if size > len(self.data):
            new = np.empty((size, self.data.shape[1]), dtype=np.uint32)
            new[:used] = self.data[:used]
            self.data = new

    def _cover(self, colmax: np.ndarray, used: int) -> None:
        """Widen the window to the bins where ``colmax`` (per bin, full width) is not zero (the
        first ``used`` rows are kept)."""
        nz = np.flatnonzero(colmax)
        if not len(nz):
            return
        a, b = int(nz[0]), int(nz[-1]) + 1
        if self.hi > self.lo:
            a, b = min(a, self.lo), max(b, self.hi)
        if a >= self.lo and b <= self.hi:
            return
        a, b = a // CHUNK * CHUNK, min(-(-b // CHUNK) * CHUNK, N_BINS)
        new = np.empty((len(self.data), b - a), dtype=np.uint32)
        new[:used] = 0
        if self.hi > self.lo:
            new[:used, self.lo - a:self.hi - a] = self.data[:used]
        self.data, self.lo, self.hi = new, a, b

    def write(self, i0: int, counts: np.ndarray) -> None:
        """Rows i0.. := ``counts`` (rows × N_BINS, non-negative integers), saturated at HIST_MAX."""
        if not counts.size:
            return
        if counts[:, :self.lo].any() or counts[:, self.hi:].any():    # one pass over the counts, usually
            self._cover(counts.max(axis=0), i0)
        np.minimum(counts[:, self.lo:self.hi], HIST_MAX, out=self.data[i0:i0 + len(counts)], casting="unsafe")

    def add(self, row: int, counts: np.ndarray) -> None:
        """Row ``row`` += ``counts`` (N_BINS), saturated at HIST_MAX."""
        self._cover(counts, row + 1)
        cur = self.data[row].astype(np.int64) + counts[self.lo:self.hi]
        self.data[row] = np.minimum(cur, HIST_MAX)

    def merge_pairs(self, n: int) -> None:
        """Rows (0,1), (2,3), ... of the first ``n`` become rows 0, 1, ...; an odd last row moves alone."""
        h = self.data
        half, m = n // 2, (n + 1) // 2
        h[:half] = np.minimum(h[0:2 * half:2].astype(np.int64) + h[1:2 * half:2], HIST_MAX)
        if n % 2:
            h[half] = h[n - 1]
        h[m:n] = 0

    def sum_rows(self, rows: np.ndarray) -> np.ndarray:
        """The merged histogram (N_BINS, int64) of the rows selected by ``rows`` (a boolean mask)."""
        out = np.zeros(N_BINS, dtype=np.int64)
        out[self.lo:self.hi] = self.data[:len(rows)][rows].sum(axis=0, dtype=np.int64)
        return out

    def dense(self, a: int, b: int) -> np.ndarray:
        """Rows a..b at full width (int64)."""
        out = np.zeros((b - a, N_BINS), dtype=np.int64)
        out[:, self.lo:self.hi] = self.data[a:b]
        return out

    def percentiles_ms(self, a: int, b: int, qs: tuple[float, ...]) -> np.ndarray:
        """Quantiles of rows a..b, as ``latency_hist.percentiles_ms`` of their full-width rows."""
        q = _QS.get(qs)
        if q is None:
            q = _QS[qs] = np.asarray(qs, dtype=np.float64)
        if len(q) and not (0 < q.min() and q.max() <= 1):     # the window's bins would not do: the first bin, or the last
            return percentiles_ms(self.dense(a, b), qs)
        block = self.data[a:b]
        if percentile_exponents.compiled and b > a:
            expo = np.empty((len(q), b - a))
            total = np.empty(b - a, dtype=np.int64)
            percentile_exponents(block, self.lo, q, expo, total)
        else:
            expo, total = exponents_numpy(block, q, self.lo)
        return ms_of(expo, total)
