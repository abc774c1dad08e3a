"""The ledger: what happened, booked by simulated second until the second closes.

The engine books every arrival, completion, failure, routed request and busy
interval with its exact time; the ledger sorts them into one-second rows, so
that a window of the engine may span several seconds and still give exact
per-second metrics.
"""
from __future__ import annotations

import numpy as np

from .metrics import N_BINS, latency_bins


class Ledger:
    def __init__(self, first_second: int, n_causes: int, n_stations: int, n_edges: int) -> None:
        self.base = first_second          # the oldest open second
        self.n_causes, self.n_stations, self.n_edges = n_causes, n_stations, n_edges
        self._alloc(4)

    def _alloc(self, rows: int) -> None:
        self.rows = rows
        self.offered = np.zeros(rows, dtype=np.int64)
        self.served = np.zeros(rows, dtype=np.int64)
        self.lat_sum = np.zeros(rows)
        self.hist = np.zeros((rows, N_BINS), dtype=np.int64)
        self.failed = np.zeros((rows, self.n_causes), dtype=np.int64)
        self.busy = np.zeros((rows, self.n_stations))
        self.done = np.zeros((rows, self.n_stations), dtype=np.int64)
        self.edges = np.zeros((rows, self.n_edges), dtype=np.int64)

    def _grow(self, need: int) -> None:
        if need <= self.rows:
            return
        old = {k: getattr(self, k) for k in ("offered", "served", "lat_sum", "hist", "failed", "busy", "done", "edges")}
        self._alloc(max(need, 2 * self.rows))
        for k, v in old.items():
            getattr(self, k)[:len(v)] = v

    def _rows_of(self, times: np.ndarray) -> np.ndarray:
        r = np.floor(times).astype(np.int64) - self.base
        r = np.maximum(r, 0)
        if len(r):
            self._grow(int(r.max()) + 1)
        return r

    # ----- booking ----------------------------------------------------------------------
    def book_offered(self, times: np.ndarray) -> None:
        r = self._rows_of(times)
        self.offered[:self.rows] += np.bincount(r, minlength=self.rows)[:self.rows]

    def book_served(self, times: np.ndarray, latency: np.ndarray) -> None:
        r = self._rows_of(times)
        self.served += np.bincount(r, minlength=self.rows)[:self.rows]
        self.lat_sum += np.bincount(r, weights=latency, minlength=self.rows)[:self.rows]
        flat = r * N_BINS + latency_bins(latency)
        self.hist += np.bincount(flat, minlength=self.rows * N_BINS)[:self.rows * N_BINS].reshape(self.rows, N_BINS)

    def book_failed(self, cause: int, times: np.ndarray) -> None:
        r = self._rows_of(np.atleast_1d(times))
        self.failed[:, cause] += np.bincount(r, minlength=self.rows)[:self.rows]

    def book_done(self, stations: np.ndarray, times: np.ndarray) -> None:
        self._book_2d("done", stations, times, self.n_stations)

    def book_edges(self, edges: np.ndarray, times: np.ndarray) -> None:
        keep = edges >= 0
        self._book_2d("edges", edges[keep], times[keep], self.n_edges)

    def _book_2d(self, attr: str, cols: np.ndarray, times: np.ndarray, width: int) -> None:
        if not len(cols) or width == 0:
            return
        r = self._rows_of(times)
        arr = getattr(self, attr)
        arr += np.bincount(r * width + cols, minlength=self.rows * width)[:self.rows * width].reshape(self.rows, width)

    def book_busy(self, stations: np.ndarray, start: np.ndarray, fin: np.ndarray, t0: float, t1: float) -> None:
        """Busy time of service intervals [start, fin) clipped to the window, split by second."""
        lo = np.maximum(start, t0)
        hi = np.minimum(fin, t1)
        keep = hi > lo
        if not keep.any():
            return
        s, lo, hi = stations[keep], lo[keep], hi[keep]
        first = int(np.floor(t0)) - self.base
        last = int(np.ceil(t1)) - self.base
        self._grow(last)
        for k in range(max(first, 0), last):
            a, b = k + self.base, k + self.base + 1.0
            ov = np.minimum(hi, b) - np.maximum(lo, a)
            m = ov > 0
            if m.any():
                self.busy[k] += np.bincount(s[m], weights=ov[m], minlength=self.n_stations)

    # ----- closing ------------------------------------------------------------------------
    def pop_second(self) -> dict[str, np.ndarray]:
        """Remove and return the oldest open second's row."""
        self._grow(1)
        row = {k: getattr(self, k)[0].copy() for k in ("offered", "served", "lat_sum", "hist", "failed", "busy",
                                                        "done", "edges")}
        for k in ("offered", "served", "lat_sum", "hist", "failed", "busy", "done", "edges"):
            a = getattr(self, k)
            a[:-1] = a[1:]
            a[-1] = 0
        self.base += 1
        return row

    def resize(self, n_stations: int, n_edges: int, station_map: np.ndarray) -> None:
        """After a recompile: re-index station columns (old index -> new or -1); edges restart."""
        busy, done = self.busy, self.done
        self.n_stations, self.n_edges = n_stations, n_edges
        self.busy = np.zeros((self.rows, n_stations))
        self.done = np.zeros((self.rows, n_stations), dtype=np.int64)
        self.edges = np.zeros((self.rows, n_edges), dtype=np.int64)
        ok = station_map >= 0
        self.busy[:, station_map[ok]] = busy[:, ok]
        self.done[:, station_map[ok]] = done[:, ok]
