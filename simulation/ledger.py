"""The ledger: what happened, booked by simulated second until the second closes.

The engine books every arrival, completion, failure, routed request and busy
interval with its exact time; the ledger sorts them into one-second rows, so
that a window of the engine may span several seconds and still give exact
per-second metrics.
"""
from __future__ import annotations

import math

import numpy as np

from . import settle_kernels as _k
from .metrics import N_BINS, latency_bins

# Events that are neither served nor failed requests, counted per second.
COUNTERS = ("forged_accepted", "forged_rejected", "stale_reads", "browser_hits", "not_modified",
            "write_conflicts", "id_collisions", "stale_page_views")


_NS = 1_000_000_000
_NO_MARKS = np.zeros(0)
_NO_SNAP = np.zeros((0, 0), dtype=np.int64)
_NO_DONE = np.zeros(0, dtype=np.bool_)


def nanoseconds(t: np.ndarray) -> np.ndarray:
    """Times in seconds as whole nanoseconds (rounded half up). Busy time is booked in
    them: the pieces of an interval booked window by window then add up to exactly the
    same total however the run was cut into windows (floats would differ in the last
    bits, and a plot's number with them, with the step size)."""
    return np.floor(np.asarray(t, dtype=float) * 1e9 + 0.5).astype(np.int64)


def _fits(a: np.ndarray, dtype: type) -> bool:
    """Whether a kernel takes ``a`` as it is (another dtype or layout would compile it again)."""
    return isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous


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
        self.busy = np.zeros((rows, self.n_stations), dtype=np.int64)   # nanoseconds (``nanoseconds``)
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

    def book_served(self, times: np.ndarray, latency: np.ndarray, bins: np.ndarray | None = None) -> None:
        """Served requests by second of ``times``; ``bins``: ``latency_bins(latency)`` if known."""
        r = self._rows_of(times)
        self.served += np.bincount(r, minlength=self.rows)[:self.rows]
        # whole nanoseconds: float sums of integers below 2**53 are exact in any order
        self.lat_sum += np.bincount(r, weights=np.rint(latency * 1e9), minlength=self.rows)[:self.rows]
        flat = r * N_BINS + (latency_bins(latency) if bins is None else bins)
        self.hist += np.bincount(flat, minlength=self.rows * N_BINS)[:self.rows * N_BINS].reshape(self.rows, N_BINS)

    def book_answered(self, times: np.ndarray, latency: np.ndarray, hist_total: np.ndarray,
                      where: np.ndarray = _NO_DONE) -> int:
        """``book_served``, and the latencies into the run's histogram ``hist_total`` (in
        place); returns their sum in integer nanoseconds. One pass when compiled. With
        ``where`` (not empty): of the requests where it is true."""
        bins = latency_bins(latency)
        if _k.book_served.compiled:
            args = (where, times, latency, bins, self.base)
            total = _k.book_served(*args, self.served, self.lat_sum, self.hist, hist_total)
            if total < 0:   # a second beyond the open rows: make room, then book
                self._rows_of(times[where] if len(where) else times)
                total = _k.book_served(*args, self.served, self.lat_sum, self.hist, hist_total)
            return int(total)
        if len(where):
            times, latency, bins = times[where], latency[where], bins[where]
        self.book_served(times, latency, bins)
        hist_total += np.bincount(bins, minlength=N_BINS)
        return int(np.rint(latency * 1e9).astype(np.int64).sum())

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
        if _k.count_rows.compiled and _fits(edges, np.int64) and _fits(times, np.float64):
            self._book_2d("edges", edges, times, self.n_edges)   # the kernel skips edge -1
            return
        keep = edges >= 0
        self._book_2d("edges", edges[keep], times[keep], self.n_edges)

    def book_flows(self, table: np.ndarray, st_node: np.ndarray, src_st: np.ndarray, dst_st: np.ndarray,
                   times: np.ndarray) -> bool:
        """``book_edges(table[st_node[src_st], st_node[dst_st]], times)`` in one pass, when
        compiled (returns False otherwise: the caller books through ``book_edges``)."""
        if not (_k.count_flows.compiled and _fits(times, np.float64) and _fits(st_node, np.int64)
                and _fits(table, np.int64)):
            return False
        if len(times) and self.n_edges:
            src_st, dst_st = np.ascontiguousarray(src_st, dtype=np.int64), np.ascontiguousarray(dst_st, dtype=np.int64)
            need = _k.count_flows(src_st, dst_st, times, st_node, table, self.base, self.edges)
            if need:
                self._grow(need)
                _k.count_flows(src_st, dst_st, times, st_node, table, self.base, self.edges)
        return True

    def _book_2d(self, attr: str, cols: np.ndarray, times: np.ndarray, width: int) -> None:
        if not len(cols) or width == 0:
            return
        if _k.count_rows.compiled and _fits(cols, np.int64) and _fits(times, np.float64):
            need = _k.count_rows(times, cols, self.base, getattr(self, attr))
            if need:
                self._grow(need)
                _k.count_rows(times, cols, self.base, getattr(self, attr))
            return
        r = self._rows_of(times)
        arr = getattr(self, attr)
        arr += np.bincount(r * width + cols, minlength=self.rows * width)[:self.rows * width].reshape(self.rows, width)

    def book_busy(self, stations: np.ndarray, start: np.ndarray, fin: np.ndarray, t0: float, t1: float,
                  sign: int = 1) -> None:
        """Busy time of service intervals [start, fin) clipped to the window, split by second,
        in whole nanoseconds; ``sign=-1`` takes back time booked before (the same pieces in
        whole nanoseconds, so what is left is exactly what booking less would have left)."""
        if sign == 1 and self.can_scan(stations, start, fin, t0, t1):
            self.scan(stations, start, fin, start, np.zeros(len(stations), dtype=np.int8), 0, t0, t1)
            return
        lo = np.maximum(start, t0)
        hi = np.minimum(fin, t1)
        keep = hi > lo   # (not NaN, not empty)
        lo, hi = nanoseconds(lo[keep]), nanoseconds(hi[keep])
        more = hi > lo
        if not more.any():
            return
        s, lo, hi = stations[keep][more], lo[more], hi[more]
        last = int(np.ceil(t1)) - self.base
        self._grow(last)
        r0 = np.maximum(lo // _NS - self.base, 0)
        r1 = np.maximum((hi - 1) // _NS - self.base, 0)
        same = r0 == r1
        width = self.n_stations
        flat = self.busy.reshape(-1)
        # (integer sums of float64 weights: exact below 2**53 ns, about 104 days per cell)
        flat += sign * np.bincount(r0[same] * width + s[same], weights=(hi - lo)[same],
                                   minlength=flat.size)[:flat.size].astype(np.int64)
        if not same.all():  # intervals across a second boundary: split them second by second
            s, lo, hi, r0, r1 = s[~same], lo[~same], hi[~same], r0[~same], r1[~same]
            for k in range(int(r0.min()), int(r1.max()) + 1):
                a = (k + self.base) * _NS
                ov = np.minimum(hi, a + _NS) - np.maximum(lo, a)
                m = ov > 0
                if m.any():
                    self.busy[k] += sign * np.bincount(s[m], weights=ov[m], minlength=width).astype(np.int64)

    @staticmethod
    def can_scan(st: np.ndarray, start: np.ndarray, fin: np.ndarray, t0: float, t1: float) -> bool:
        """Whether :meth:`scan` applies: its kernel is loaded, the window is finite and the
        arrays have the kernel's dtypes (another dtype would compile it again)."""
        return (_k.scan_level.compiled and math.isfinite(t0) and math.isfinite(t1) and _fits(st, np.int64)
                and _fits(start, np.float64) and _fits(fin, np.float64))

    def scan(self, st: np.ndarray, start: np.ndarray, fin: np.ndarray, arr: np.ndarray, flags: np.ndarray,
             skip: int, t0: float, t1: float, marks: np.ndarray = _NO_MARKS, snap: np.ndarray = _NO_SNAP,
             done: np.ndarray = _NO_DONE, internal: int = 0) -> tuple[int, int, int]:
        """``book_busy`` of the requests without a ``skip`` flag, plus (optionally) the
        waiting counts at ``marks`` into ``snap`` and the finished requests (``done``, booked
        by ``book_done`` unless ``internal``), in one compiled pass (settle_kernels.scan_level).
        Returns (finished, finished internal, the flags of the finished or-ed together)."""
        self._grow(int(math.ceil(t1)) - self.base)
        return _k.scan_level(st, start, fin, arr, flags, skip, internal, float(t0), float(t1), self.base,
                             self.busy, marks, snap, done, self.done)

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

    def resize(self, n_stations: int, n_edges: int, station_map: np.ndarray, edge_map: np.ndarray) -> None:
        """After a recompile: re-index the station and edge columns (old index -> new or -1)."""
        old = (self.busy, self.done, self.edges)
        self.n_stations, self.n_edges = n_stations, n_edges
        self.busy = np.zeros((self.rows, n_stations), dtype=np.int64)
        self.done = np.zeros((self.rows, n_stations), dtype=np.int64)
        self.edges = np.zeros((self.rows, n_edges), dtype=np.int64)
        for new, prev, to in zip((self.busy, self.done, self.edges), old, (station_map, station_map, edge_map)):
            ok = to >= 0
            new[:, to[ok]] = prev[:, ok]


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
