"""Metrics: one row per simulated second, in arrays of bounded size.

Latencies go into log-spaced histograms (1 % wide bins from 10 µs to 10⁴ s,
like HdrHistogram), one per row and one for the whole run, so percentiles are
accurate to about half a percent whatever the rate, and the mean is kept
exactly as a sum.

Memory is bounded whatever the duration: the rows are kept at one second each
until there are ``row_cap`` of them (4,096 for a small network, fewer for a wide
one: see :func:`row_cap`); then neighbouring rows are merged in pairs and every
row covers twice as long (2 s, then 4 s, ...). Each row says what it covers:
``time_s`` is the end of its span and ``span_s`` its length. Rates, counts per
second, utilization, queues, replicas and flows of a merged row are averages
over its span; its percentiles come from the merged histograms and its mean
from the exact sums, so a merged row is exactly what a row of that length
would have been. The latest second and the last hour of utilization stay at
one-second resolution for the live display and the autoscaler (``latest``,
``recent_util``).
"""
from __future__ import annotations

import numpy as np

from .hist_rows import HistRows
from .keyed_rows import Keyed, group_mean
from .latency_hist import BIN_RATIO, LAT_MIN_MS, N_BINS, latency_bins, percentile_ms, percentiles_ms  # noqa: F401
from .page_views import BROWSER_HIT_MS
from .state import FAILURE_CAUSES

MAX_ROWS = 4096            # rows at one second each before they are merged in pairs
MIN_ROWS = 64              # the fewest rows a run keeps (the widest networks)
METRIC_CELLS = 16_000_000  # values in all rows together (~128 MB)
RECENT_S = 3600            # seconds of per-second utilization kept for the autoscaler (its longest interval)
RECENT_CELLS = 2_000_000   # ... but no more values than this (~16 MB)


def _nan_to_0(x: np.ndarray) -> np.ndarray:
    """``np.nan_to_num`` for counts (finite or NaN), without its overhead."""
    return np.where(np.isnan(x), 0.0, x)


def row_cap(columns: int) -> int:
    """Rows kept for this many values per row: a power of two in [MIN_ROWS, MAX_ROWS]."""
    fit = max(METRIC_CELLS // max(columns, 1), 1)
    return int(min(MAX_ROWS, max(MIN_ROWS, 1 << (fit.bit_length() - 1))))


class Metrics:
    """Per-second (or, in long runs, per-span) series. Read the public attributes
    (arrays of length ``n``); ``seconds`` is how many simulated seconds they cover."""

    COLUMNS = ("time_s", "offered_rps", "served_rps", "failed_rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
               "active_servers", "sessions_lost", "cost_server_s", "forged_accepted", "forged_rejected",
               "stale_reads", "browser_hits", "not_modified", "write_conflicts", "id_collisions", "cost_usd",
               "stale_page_views", "page_views", "page_view_mean_ms", "browser_hit_share", "span_s")

    def __init__(self) -> None:
        self.n = 0              # rows
        self.seconds = 0        # simulated seconds closed
        self.width = 1          # seconds per full row (a power of two)
        self._cols = Keyed()
        self._causes = Keyed()
        self._util = Keyed()
        self._util_max = Keyed()          # the busiest replica that is up, per node
        self._queue = Keyed()
        self._replicas = Keyed()
        self._flow = Keyed()
        self._hist = HistRows()           # latency histogram of each row
        self._served = np.zeros(0)        # requests served in each row (exact)
        self._lat_ns = np.zeros(0)        # their latencies, nanoseconds (exact)
        self._latest: dict[str, dict] = {}
        self._recent = Keyed()            # per-second utilization, a ring of the last seconds
        self._recent_len = 0

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

    def latency_of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, float, float]:
        """For a window of rows (a boolean mask over the ``n`` rows): their merged latency
        histogram, the requests served and the sum of their latencies (ns) (grading.py)."""
        rows = np.asarray(rows, dtype=bool)
        return (self._hist.sum_rows(rows), float(self._served[:self.n][rows].sum()),
                float(self._lat_ns[:self.n][rows].sum()))

    def cost_totals(self) -> dict[str, float]:
        """Money and server time of the closed seconds: ``cost_usd`` (dollars) and ``server_hours``
        (replica-hours, booting and draining replicas included)."""
        span = self.span_s
        return {"cost_usd": float(np.nansum(self.cost_usd * span)),
                "server_hours": float(np.nansum(self.cost_server_s * span)) / 3600.0}

    def latest(self, name: str) -> dict:
        """The last closed second's ``util``, ``queue``, ``replicas`` or ``flow``, by node or edge."""
        return self._latest.get(name, {})

    def recent_util(self, node: str, seconds: int) -> np.ndarray:
        """A node's utilization in each of the last ``seconds`` seconds (fewer if the run is
        younger, or than the kept ``RECENT_S``)."""
        j = self._recent.keys.get(node)
        if j is None or self._recent_len == 0:
            return np.zeros(0)
        r = self._recent.data.shape[0]
        k = min(max(int(seconds), 1), self._recent_len, r)
        rows = (self.seconds - k + np.arange(k)) % r
        return self._recent.data[rows, j]

    @property
    def row_cap(self) -> int:
        keyed = sum(k.width for k in (self._cols, self._causes, self._util, self._util_max, self._queue,
                                      self._replicas, self._flow))
        return row_cap(keyed + N_BINS // 2 + 2)

    # ----- adding seconds ---------------------------------------------------------------------
    def extend(self, columns: dict[str, np.ndarray], causes: np.ndarray, nodes: list[str], util: np.ndarray,
               queue: np.ndarray, replicas: np.ndarray, edges: list, flow: np.ndarray,
               hist: np.ndarray | None = None, lat_ns: np.ndarray | None = None,
               util_max: np.ndarray | None = None) -> None:
        """Add k seconds at once: every array has k rows (one per second). ``hist`` (k × bins) and
        ``lat_ns`` (k) let merged rows keep exact percentiles and means."""
        k = len(columns["time_s"])
        if k == 0:
            return
        if hist is None:
            hist = np.zeros((k, N_BINS), dtype=np.int64)
        if lat_ns is None:
            lat_ns = np.nan_to_num(columns["mean_ms"]) * 1e6 * columns["served_rps"]
        util_max = util if util_max is None else util_max
        self._remember(nodes, util, queue, replicas, edges, flow)
        self._latest["util_max"] = dict(zip(nodes, util_max[-1].tolist()))
        columns = {**columns, "span_s": np.ones(k)}
        parts = {"cols": np.column_stack([columns[c] for c in self.COLUMNS]), "causes": causes, "util": util,
                 "util_max": util_max, "queue": queue, "replicas": replicas, "flow": flow}
        keys = {"cols": list(self.COLUMNS), "causes": list(FAILURE_CAUSES), "util": nodes, "util_max": nodes,
                "queue": nodes, "replicas": nodes, "flow": list(edges)}
        served = np.asarray(columns["served_rps"], dtype=float)
        first = 0
        spans = self._cols.data[:self.n, self._cols.keys["span_s"]] if self.n else np.zeros(0)
        if self.n and spans[-1] < self.width:      # fill the last, partial row first
            first = int(min(k, self.width - spans[-1]))
            self._fill_last(parts, keys, first, served[:first], lat_ns[:first], hist[:first])
        if first < k:
            self._append(parts, keys, first, served[first:], lat_ns[first:], hist[first:])
        self.seconds += k
        cap = self.row_cap
        while self.n > cap:
            self._merge_pairs()

    def _grouped(self, parts: dict, keys: dict, lo: int, starts: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, block in parts.items():
            if name == "flow" and not keys["flow"]:
                continue
            out[name] = group_mean(np.asarray(block, dtype=float)[lo:], starts)
        return out

    def _keyed(self, name: str) -> Keyed:
        return getattr(self, "_" + name)

    def _fill_last(self, parts: dict, keys: dict, m: int, served: np.ndarray, lat_ns: np.ndarray,
                   hist: np.ndarray) -> None:
        row = self.n - 1
        span = self._cols.data[row, self._cols.keys["span_s"]]
        means = self._grouped({k: np.asarray(v)[:m] for k, v in parts.items()}, keys, 0, np.array([0]))
        end_time = float(parts["cols"][m - 1, self.COLUMNS.index("time_s")])
        for name, block in means.items():
            self._keyed(name).combine(row, span, block[0], keys[name], float(m))
        self._served[row] += served.sum()
        self._lat_ns[row] += lat_ns.sum()
        self._hist.add(row, hist.sum(axis=0))
        self._finish_rows(row, row + 1, np.array([span + m]), np.array([end_time]))

    def _append(self, parts: dict, keys: dict, lo: int, served: np.ndarray, lat_ns: np.ndarray,
                hist: np.ndarray) -> None:
        k = len(served)
        starts = np.arange(0, k, self.width)
        rows = len(starts)
        i0 = self.n
        limit = self.row_cap + 2
        if self.width == 1:
            for name, block in parts.items():
                if name == "flow" and not keys["flow"]:
                    continue
                self._keyed(name).write(i0, keys[name], np.asarray(block, dtype=float)[lo:], limit)
        else:
            for name, block in self._grouped(parts, keys, lo, starts).items():
                self._keyed(name).write(i0, keys[name], block, limit)
        self._grow_exact(i0 + rows, limit)
        if self.width == 1:   # one second per row: the sums are the values
            self._served[i0:i0 + rows] = served
            self._lat_ns[i0:i0 + rows] = lat_ns
            self._hist.write(i0, hist)
        else:
            self._served[i0:i0 + rows] = np.add.reduceat(served, starts)
            self._lat_ns[i0:i0 + rows] = np.add.reduceat(lat_ns, starts)
            self._hist.write(i0, np.add.reduceat(hist.astype(np.int64), starts, axis=0))
        times = parts["cols"][lo:, self.COLUMNS.index("time_s")]
        self.n = i0 + rows
        if self.width == 1:
            self._finish_rows(i0, self.n, np.ones(k), times)
        else:
            self._finish_rows(i0, self.n, np.diff(np.r_[starts, k]).astype(float), times[np.r_[starts[1:] - 1, k - 1]])

    def _grow_exact(self, rows: int, limit: int) -> None:
        if rows <= len(self._served):
            return
        size = max(rows, min(2 * len(self._served), limit), 64)
        # room for the histograms of all the rows a run keeps at once: not copied as the rows grow
        # (and a row's memory is only touched when it is written: hist_rows.py)
        self._hist.grow(max(size, limit), self.n)
        for name in ("_served", "_lat_ns"):
            old = getattr(self, name)
            new = np.zeros((size,) + old.shape[1:], dtype=old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)

    def _finish_rows(self, a: int, b: int, spans: np.ndarray, ends: np.ndarray) -> None:
        """Rows a..b: set time and span, and the percentiles and mean from the exact sums."""
        c = self._cols
        c.data[a:b, c.keys["span_s"]] = spans
        c.data[a:b, c.keys["time_s"]] = ends
        pct = self._hist.percentiles_ms(a, b, (0.5, 0.95, 0.99))
        for j, name in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            c.data[a:b, c.keys[name]] = pct[:, j]
        served = self._served[a:b]
        with np.errstate(invalid="ignore", divide="ignore"):
            c.data[a:b, c.keys["mean_ms"]] = np.where(served > 0, self._lat_ns[a:b] / np.maximum(served, 1) / 1e6,
                                                      np.nan)
            # page views (page_views.py), from the same exact sums: browser hits answer in 0 ms
            hits = _nan_to_0(c.data[a:b, c.keys["browser_hits"]]) * spans
            views = _nan_to_0(c.data[a:b, c.keys["page_views"]]) * spans
            c.data[a:b, c.keys["page_view_mean_ms"]] = np.where(
                served + hits > 0, (self._lat_ns[a:b] / 1e6 + hits * BROWSER_HIT_MS) / np.maximum(served + hits, 1),
                np.nan)
            c.data[a:b, c.keys["browser_hit_share"]] = np.where(views > 0, hits / np.maximum(views, 1), np.nan)

    def _merge_pairs(self) -> None:
        """Halve the rows: each pair of neighbours becomes one row covering both spans."""
        n = self.n
        spans = self._cols.data[:n, self._cols.keys["span_s"]].copy()
        ends = self._cols.data[:n, self._cols.keys["time_s"]].copy()
        for keyed in (self._cols, self._causes, self._util, self._util_max, self._queue, self._replicas, self._flow):
            if keyed.width:
                keyed.merge_pairs(n, spans)
        half, m = n // 2, (n + 1) // 2
        for arr in (self._served, self._lat_ns):
            arr[:half] = arr[0:2 * half:2] + arr[1:2 * half:2]
            if n % 2:
                arr[half] = arr[n - 1]
            arr[m:n] = 0
        self._hist.merge_pairs(n)
        new_spans = np.add.reduceat(spans, np.arange(0, n, 2))
        new_ends = ends[np.r_[np.arange(1, n, 2), [n - 1] if n % 2 else []].astype(np.int64)]
        self.n = m
        self.width *= 2
        self._finish_rows(0, m, new_spans, new_ends)

    def _remember(self, nodes: list, util: np.ndarray, queue: np.ndarray, replicas: np.ndarray, edges: list,
                  flow: np.ndarray) -> None:
        """The last second at full resolution, and the recent per-second utilization."""
        self._latest = {"util": dict(zip(nodes, util[-1].tolist())), "queue": dict(zip(nodes, queue[-1].tolist())),
                        "replicas": dict(zip(nodes, replicas[-1].tolist())),
                        "flow": dict(zip(edges, flow[-1].tolist())) if edges else {}}
        r = self._recent
        size = min(RECENT_S, max(MIN_ROWS, RECENT_CELLS // max(len(nodes), 1)))
        if r.data.shape[0] != size:     # first call, or a different number of nodes: start the ring anew
            keep = self.recent_all() if self._recent_len else None
            r.keys, r.data = {}, np.full((size, 0), np.nan)
            self._recent_len = 0
            if keep is not None:
                block = np.column_stack(list(keep.values()))
                self._ring_write(list(keep), block, self.seconds - len(block))
        self._ring_write(nodes, util, self.seconds)

    def recent_all(self) -> dict[str, np.ndarray]:
        k = min(self._recent_len, self._recent.data.shape[0])
        return {node: self.recent_util(node, k) for node in self._recent.keys}

    def _ring_write(self, keys: list, block: np.ndarray, first_second: int) -> None:
        r = self._recent
        size = r.data.shape[0]
        for key in keys:
            if key not in r.keys:
                r.keys[key] = len(r.keys)
        if len(r.keys) > r.data.shape[1]:
            r.data = np.concatenate([r.data, np.full((size, len(r.keys) - r.data.shape[1]), np.nan)], axis=1)
        if len(block) > size:
            first_second += len(block) - size
            block = block[-size:]
        k = len(block)
        rows = (first_second + np.arange(k)) % size
        r.data[rows] = np.nan            # a key that is gone has no value in these seconds
        r.data[rows[:, None], np.array([r.keys[key] for key in keys], dtype=np.int64)[None, :]] = block
        self._recent_len = min(self._recent_len + k, size)
