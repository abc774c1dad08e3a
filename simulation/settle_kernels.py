"""Settling a level, compiled (simulation/compiled.py): the ledger's bookings and the
random balancer's pick, each in one pass over the requests.

Every kernel gives the numbers of the numpy code it stands for, bit for bit: counts are
integers, and each float sum adds the same terms in the same order as numpy does
(``np.bincount`` with weights adds in index order into a fresh zero array, which is then
added to the ledger's row). The numpy code stays the path taken until the kernels are
loaded, and without numba (``SCALELAB_JIT=0``, the packaged app); tests pin the two
paths together (tests/simulation/test_settle_kernels.py).
"""
from __future__ import annotations

import numpy as np

from .compiled import kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)   # randomness.py's constants (mix64, uniform)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD6E8FEB86659FD93)
_HOP = np.uint64(0xA0761D6478BD642F)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0
_NS = np.int64(1_000_000_000)


def _scan_sample() -> tuple:
    i64 = np.int64
    return (np.array([0, 1, 1], dtype=i64), np.array([0.2, 0.5, 1.5]), np.array([0.7, 1.6, 2.5]),
            np.array([0.1, 0.2, 1.2]), np.zeros(3, dtype=np.int8), 4, 64, 0.0, 3.0, 0,
            np.zeros((4, 2), dtype=i64), np.array([1.0, 2.0]), np.zeros((2, 2), dtype=i64),
            np.zeros(3, dtype=np.bool_), np.zeros((4, 2), dtype=i64))


@kernel(sample=_scan_sample)
def scan_level(st, start, fin, arr, flags, skip, internal, t0, t1, base, busy, marks, snap, done, done_rows):
    """One pass over a level's requests in the window [t0, t1):

    - busy time of [start, fin) clipped to the window, by second and station, into
      ``busy`` (integer nanoseconds, rows from ``base``), leaving out requests with a
      ``skip`` flag: as ``Ledger.book_busy``;
    - if ``marks`` (whole seconds in the window) is not empty: per mark and station, the
      requests waiting then (arr <= mark < start), into ``snap``: as ``_snap_waiting``;
    - if ``done`` is not empty: whether each request finishes before ``t1`` and, for the
      finished user requests (no ``internal`` flag), per second and station, into
      ``done_rows``: as ``Ledger.book_done``.

    ``busy`` and ``done_rows`` must have at least ``max(ceil(t1) - base, 1)`` rows.
    Returns (finished, finished internal, the flags of the finished ones or-ed together)."""
    n = len(st)
    width = busy.shape[1]
    rlo = max(np.int64(np.floor(t0)) - base, 0)
    rhi = max(np.int64(np.ceil(t1)) - 1 - base, 0)
    nr = max(rhi - rlo + 1, 0)   # none if t1 < t0: nothing is booked then
    same = np.zeros((nr, width), dtype=np.int64)
    cross = np.zeros((nr, width), dtype=np.int64)
    any_cross = False
    n_marks = len(marks)
    m0 = marks[0] if n_marks else 0.0
    m_last = marks[n_marks - 1] if n_marks else 0.0
    step = n_marks > 0 and m0 == np.floor(m0) and abs(m0) < 2.0**52   # marks m0, m0 + 1, ...: no search
    for j in range(n_marks):
        if marks[j] != m0 + j:
            step = False
    want_done = len(done) > 0
    n_done = 0
    n_internal = 0
    union = 0
    # Requests come grouped by station: consecutive ones usually add to the same cell, so
    # its running sum stays in a register until the cell changes (the same additions, in
    # the same order, without a store and load between two of them).
    cell = -1       # same's flat cell being summed in ``acc``
    acc = np.int64(0)
    d_row = -1      # done_rows' cell being counted in ``d_count``
    d_st = 0
    d_count = 0
    flat = same.reshape(nr * width)
    for i in range(n):
        s = st[i]
        a_s = start[i]
        f = fin[i]
        fl = flags[i]
        if n_marks and a_s > m0 and arr[i] <= m_last and np.ceil(arr[i]) < a_s:   # waits across a mark
            if step:   # the marks below x: ceil(x) - m0 of them, for m0 < x <= the last
                lo_m = 0 if arr[i] <= m0 else np.int64(np.ceil(arr[i]) - m0)
                hi_m = n_marks if a_s > m_last else np.int64(np.ceil(a_s) - m0)
            else:
                lo_m = np.searchsorted(marks, arr[i], side="left")
                hi_m = np.searchsorted(marks, a_s, side="left")
            for j in range(lo_m, hi_m):
                snap[j, s] += 1
        if want_done:
            d = f < t1
            done[i] = d
            if d:
                n_done += 1
                union |= fl
                if (fl & internal) != 0:
                    n_internal += 1
                else:
                    r = max(np.int64(np.floor(f)) - base, 0)
                    if r != d_row or s != d_st:
                        if d_count:
                            done_rows[d_row, d_st] += d_count
                        d_row, d_st, d_count = r, s, 0
                    d_count += 1
        if (fl & skip) != 0:
            continue
        lo_s = a_s if a_s > t0 else t0
        hi_s = f if f < t1 else t1
        if a_s != a_s or f != f or not hi_s > lo_s:   # NaN or empty: as numpy's clip and ``keep``
            continue
        lo = np.int64(np.floor(lo_s * 1e9 + 0.5))   # whole nanoseconds, as ledger.nanoseconds
        hi = np.int64(np.floor(hi_s * 1e9 + 0.5))
        if not hi > lo:
            continue
        r0 = max(lo // _NS - base, 0)
        r1 = max((hi - 1) // _NS - base, 0)
        if r0 == r1:
            c = (r0 - rlo) * width + s
            if c != cell:
                if cell >= 0:
                    flat[cell] = acc
                cell = c
                acc = flat[c]
            acc += hi - lo
        else:
            any_cross = True
            for k in range(r0, r1 + 1):
                a = (k + base) * _NS
                b = a + _NS
                ov = (hi if hi < b else b) - (lo if lo > a else a)
                if ov > 0:
                    cross[k - rlo, s] += ov
    if cell >= 0:
        flat[cell] = acc
    if d_count:
        done_rows[d_row, d_st] += d_count
    for r in range(nr):
        for c in range(width):
            busy[rlo + r, c] += same[r, c]
    if any_cross:
        for r in range(nr):
            for c in range(width):
                busy[rlo + r, c] += cross[r, c]
    return n_done, n_internal, union


def _rows_sample() -> tuple:
    return np.array([0.5, 1.5, 3.2]), np.array([0, 1, -1], dtype=np.int64), 0, np.zeros((4, 2), dtype=np.int64)


@kernel(sample=_rows_sample)
def count_rows(times, cols, base, out):
    """Count each (second of ``times[i]``, ``cols[i]``) into ``out`` (rows from ``base``),
    skipping negative columns: as ``Ledger._book_2d``. Writes nothing and returns the rows
    needed when ``out`` has too few; else returns 0."""
    need = 0
    for i in range(len(times)):
        if cols[i] >= 0:
            r = max(np.int64(np.floor(times[i])) - base, 0)
            if r + 1 > need:
                need = r + 1
    if need > out.shape[0]:
        return need
    for i in range(len(times)):
        c = cols[i]
        if c >= 0:
            out[max(np.int64(np.floor(times[i])) - base, 0), c] += 1
    return 0


def _flow_sample() -> tuple:
    i64 = np.int64
    return (np.array([0, 1], dtype=i64), np.array([1, 2], dtype=i64), np.array([0.5, 2.5]),
            np.array([0, 1, 1], dtype=i64), np.array([[-1, 0], [-1, -1]], dtype=i64), 0,
            np.zeros((4, 1), dtype=i64))


@kernel(sample=_flow_sample)
def count_flows(src_st, dst_st, times, st_node, table, base, out):
    """Count requests on each edge (``table[node a, node b]``: the edge number, or -1) by
    second, into ``out``: as ``Routing._flow`` with a dense edge table. Returns the rows
    needed when ``out`` has too few (and writes nothing), else 0."""
    need = 0
    for i in range(len(times)):
        if table[st_node[src_st[i]], st_node[dst_st[i]]] >= 0:
            r = max(np.int64(np.floor(times[i])) - base, 0)
            if r + 1 > need:
                need = r + 1
    if need > out.shape[0]:
        return need
    for i in range(len(times)):
        e = table[st_node[src_st[i]], st_node[dst_st[i]]]
        if e >= 0:
            out[max(np.int64(np.floor(times[i])) - base, 0), e] += 1
    return 0


def _served_sample() -> tuple:
    i64 = np.int64
    return (np.zeros(0, dtype=np.bool_), np.array([0.5, 2.5]), np.array([0.1, 0.2]), np.array([3, 4], dtype=i64), 0,
            np.zeros(4, dtype=i64), np.zeros(4), np.zeros((4, 8), dtype=i64), np.zeros(8, dtype=i64))


@kernel(sample=_served_sample)
def book_served(mask, fin, lat, bins, base, served, lat_sum, hist, hist_total):
    """Served requests by second of ``fin`` (all of them, or those where ``mask`` is true
    if it is not empty): counts, latency sums in whole nanoseconds (added in index order,
    as ``np.bincount`` does) and latency histogram (``bins``: ``metrics.latency_bins(lat)``),
    plus the run's histogram ``hist_total``: as ``Ledger.book_served`` and
    ``Routing._finish``. Returns the sum of the latencies in integer nanoseconds, or -1
    (writing nothing) when the ledger has too few rows."""
    n = len(fin)
    every = len(mask) == 0
    rows = served.shape[0]
    for i in range(n):
        if (every or mask[i]) and max(np.int64(np.floor(fin[i])) - base, 0) >= rows:
            return -1
    tmp = np.zeros(rows)
    total = 0
    for i in range(n):
        if every or mask[i]:
            r = max(np.int64(np.floor(fin[i])) - base, 0)
            ns = np.rint(lat[i] * 1e9)
            served[r] += 1
            tmp[r] += ns
            hist[r, bins[i]] += 1
            hist_total[bins[i]] += 1
            total += np.int64(ns)
    for r in range(rows):
        lat_sum[r] += tmp[r]
    return total


def _pick_sample() -> tuple:
    return np.array([1, 2, 3], dtype=np.uint64), np.array([0, 1, 2], dtype=np.int8), 5, 3


@kernel(sample=_pick_sample)
def random_pick(keys, hops, salt, n):
    """Positions in 0..n-1: ``min(int(uniform(keys, hops, salt) * n), n - 1)`` with
    randomness.uniform's splitmix64 hash, in integer arithmetic (the same numbers)."""
    out = np.empty(len(keys), dtype=np.int64)
    salted = np.uint64(salt) * _SALT
    for i in range(len(keys)):
        z = (keys[i] ^ salted ^ (np.uint64(hops[i]) * _HOP)) + _GOLDEN
        z = (z ^ (z >> _S30)) * _MUL1
        z = (z ^ (z >> _S27)) * _MUL2
        z = z ^ (z >> _S31)
        p = np.int64(np.float64(z >> _S11) * _UNIT * n)
        out[i] = p if p < n - 1 else n - 1
    return out


def _compress_sample() -> tuple:
    n, i64, i8 = 3, np.int64, np.int8
    return (np.array([True, False, True]), 2, np.zeros(n, dtype=i64), np.zeros(n), np.zeros(n), np.zeros(n),
            np.zeros(n), np.zeros(n, dtype=i8), np.zeros(n, dtype=i64), np.zeros(n, dtype=i8),
            np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=i8), np.zeros(n, dtype=i64))


@kernel(sample=_compress_sample)
def compress(mask, m, st, birth, arr, start, fin, cls, user, flags, key, hop, item):
    """A Batch's fields (flight.FIELDS order) where ``mask`` is true (``m`` of them), in
    one pass over the mask: ``Batch.take(mask)``."""
    o_st, o_birth, o_arr = np.empty(m, dtype=st.dtype), np.empty(m, dtype=birth.dtype), np.empty(m, dtype=arr.dtype)
    o_start, o_fin, o_cls = np.empty(m, dtype=start.dtype), np.empty(m, dtype=fin.dtype), np.empty(m, dtype=cls.dtype)
    o_user, o_flags, o_key = np.empty(m, dtype=user.dtype), np.empty(m, dtype=flags.dtype), np.empty(m, dtype=key.dtype)
    o_hop, o_item = np.empty(m, dtype=hop.dtype), np.empty(m, dtype=item.dtype)
    j = 0
    for i in range(len(mask)):
        if mask[i]:
            o_st[j], o_birth[j], o_arr[j], o_start[j] = st[i], birth[i], arr[i], start[i]
            o_fin[j], o_cls[j], o_user[j], o_flags[j] = fin[i], cls[i], user[i], flags[i]
            o_key[j], o_hop[j], o_item[j] = key[i], hop[i], item[i]
            j += 1
    return o_st, o_birth, o_arr, o_start, o_fin, o_cls, o_user, o_flags, o_key, o_hop, o_item
