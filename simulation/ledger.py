"""The ledger: what happened, booked by simulated second until the second closes.

The engine books every arrival, completion, failure, routed request and busy
interval with its exact time; the ledger sorts them into one-second rows, so
that a window of the engine may span several seconds and still give exact
per-second metrics.
"""
from __future__ import annotations

import numpy as np

from .metrics import N_BINS, latency_bins

# Events that are neither served nor failed requests, counted per second.
COUNTERS = ("forged_accepted", "forged_rejected", "stale_reads", "browser_hits", "not_modified",
            "write_conflicts", "id_collisions", "stale_page_views")


class Ledger:
    def __init__(self, first_second: int, n_causes: int, n_stations: int, n_edges: int) -> None:
        self.base = first_second          # the oldest open second
        self.n_causes, self.n_stations, self.n_edges = n_causes, n_stations, n_edges
        self._alloc(4)

    def _alloc(self, rows: int) -> None:
        self.rows = rows
        self.offered = np.zeros(rows, dtype=np.int64)
        self.served = np.zeros(rows, dtype=np.int64)
        self.lat_sum = np.zeros(rows)  # nanoseconds, integral
        self.hist = np.zeros((rows, N_BINS), dtype=np.int64)
        self.failed = np.zeros((rows, self.n_causes), dtype=np.int64)
        self.busy = np.zeros((rows, self.n_stations))
        self.done = np.zeros((rows, self.n_stations), dtype=np.int64)
        self.edges = np.zeros((rows, self.n_edges), dtype=np.int64)
        self.counts = np.zeros((rows, len(COUNTERS)), dtype=np.int64)   # see COUNTERS

    def _grow(self, need: int) -> None:
        if need <= self.rows:
            return
        old = {k: getattr(self, k) for k in ("offered", "served", "lat_sum", "hist", "failed", "busy", "done", "edges",
                                         "counts")}
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
        # whole nanoseconds: float sums of integers below 2**53 are exact in any order
        self.lat_sum += np.bincount(r, weights=np.rint(latency * 1e9), minlength=self.rows)[:self.rows]
        flat = r * N_BINS + latency_bins(latency)
        self.hist += np.bincount(flat, minlength=self.rows * N_BINS)[:self.rows * N_BINS].reshape(self.rows, N_BINS)

    def book_failed(self, cause: int, times: np.ndarray) -> None:
        r = self._rows_of(np.atleast_1d(times))
        self.failed[:, cause] += np.bincount(r, minlength=self.rows)[:self.rows]

    def book_count(self, counter: str, times: np.ndarray) -> None:
        if len(times):
            r = self._rows_of(times)
            self.counts[:, COUNTERS.index(counter)] += np.bincount(r, minlength=self.rows)[:self.rows]

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
        last = int(np.ceil(t1)) - self.base
        self._grow(last)
        r0 = np.maximum(np.floor(lo).astype(np.int64) - self.base, 0)
        r1 = np.maximum(np.ceil(hi).astype(np.int64) - 1 - self.base, 0)
        same = r0 == r1
        width = self.n_stations
        flat = self.busy.reshape(-1)
        flat += np.bincount(r0[same] * width + s[same], weights=(hi - lo)[same], minlength=flat.size)[:flat.size]
        if not same.all():  # intervals across a second boundary: split them second by second
            s, lo, hi, r0, r1 = s[~same], lo[~same], hi[~same], r0[~same], r1[~same]
            for k in range(int(r0.min()), int(r1.max()) + 1):
                a, b = k + self.base, k + self.base + 1.0
                ov = np.minimum(hi, b) - np.maximum(lo, a)
                m = ov > 0
                if m.any():
                    self.busy[k] += np.bincount(s[m], weights=ov[m], minlength=width)

    # ----- closing ------------------------------------------------------------------------
    FIELDS = ("offered", "served", "lat_sum", "hist", "failed", "busy", "done", "edges", "counts")

    def pop_seconds(self, k: int) -> dict[str, np.ndarray]:
        """Remove and return the ``k`` oldest open seconds (arrays with k rows)."""
        self._grow(k)
        out = {}
        for name in self.FIELDS:
            a = getattr(self, name)
            out[name] = a[:k].copy()
            a[:-k] = a[k:]
            a[-k:] = 0
        self.base += k
        return out

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


class DenseEdges:
    """``compiler.EdgeLookup`` for small networks: ``lookup[a, b]`` reads an n × n table
    (edge number or -1) instead of a binary search per request."""
    MAX_NODES = 512   # 2 MB of int64

    def __init__(self, n_nodes: int, edge_index: dict[tuple[int, int], int]) -> None:
        n = max(n_nodes, 1)
        self.table = np.full((n, n), -1, dtype=np.int64)
        for (a, b), e in edge_index.items():
            self.table[a, b] = e

    def __getitem__(self, pair: tuple) -> np.ndarray:
        return self.table[pair]
