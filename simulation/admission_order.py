"""The order in which ``Stations.admit`` admits a batch, compiled (simulation/compiled.py):
by station, then arrival time, ties in batch order, as numpy's ``lexsort((arr, st))``
(or its stable argsort by station when the arrivals are in time order) but in linear
time for the usual batch: a window's requests in time order, perhaps followed by a
few stragglers of earlier windows.
"""
from __future__ import annotations

import numpy as np

from .compiled import helper, kernel


def _order_sample() -> tuple:
    return (np.array([1, 0, 1], dtype=np.int64), np.array([0.2, 0.1, 0.1]), np.zeros(3, dtype=np.int64),
            np.zeros(2, dtype=np.int64), np.zeros(order_work(3, 2), dtype=np.int64), np.zeros(6),
            np.zeros(3, dtype=np.int64), np.zeros(3))


def order_work(n: int, n_stations: int) -> int:
    """How many int64 of scratch ``order_by_station`` needs (and 2 n float64)."""
    return 3 * n + 1 + n_stations


@kernel(sample=_order_sample)
def order_by_station(st, arr, perm, counts, work, fwork, st_out, arr_out):
    """The order in which ``Stations.admit`` admits a batch: by station, then arrival,
    ties in batch order (numpy: ``lexsort((arr, st))``, or the stable argsort by station
    when the arrivals are in time order). Writes ``counts`` (requests per station) and,
    unless it returns 0 (one station, arrivals in time order: the batch's own order),
    ``perm`` and the sorted stations and arrivals (``st_out``, ``arr_out``); returns 1. A batch out of time order is a few runs in time order (windows
    concatenated): a natural merge sort puts it in time order first (stable), then a
    counting sort by station (stable). ``work``/``fwork``: scratch (see :func:`order_work`;
    the caller keeps it, as fresh memory costs a page fault every 4 kB)."""
    n = len(st)
    counts[:] = 0
    s0 = st[0]
    runs = 1
    single = True
    for i in range(1, n):
        if arr[i] < arr[i - 1]:
            runs += 1
        if st[i] != s0:
            single = False
    if runs == 1 and single:
        counts[s0] = n
        return 0
    for i in range(n):
        counts[st[i]] += 1
    pos = work[3 * n + 1:3 * n + 1 + len(counts)]
    acc = 0
    for s in range(len(counts)):
        pos[s] = acc
        acc += counts[s]
    if runs == 1:
        for i in range(n):   # a counting sort: stable
            s = st[i]
            p = pos[s]
            perm[p] = i
            st_out[p] = s
            arr_out[p] = arr[i]
            pos[s] = p + 1
    else:
        by_time = _merge_runs(arr, runs, work, fwork)
        for k in range(n):
            i = by_time[k]
            s = st[i]
            p = pos[s]
            perm[p] = i
            st_out[p] = s
            arr_out[p] = arr[i]
            pos[s] = p + 1
    return 1


@helper
def _merge_runs(arr, runs, work, fwork):
    """The stable order of ``arr`` by value, ``arr`` being ``runs`` non-decreasing runs:
    adjacent runs merged pairwise until one is left (in ``work[:2 n]``, ``fwork``)."""
    n = len(arr)
    bounds = work[2 * n:2 * n + runs + 1]
    bounds[0] = 0
    r = 1
    for i in range(1, n):
        if arr[i] < arr[i - 1]:
            bounds[r] = i
            r += 1
    bounds[runs] = n
    src, key = work[:n], fwork[:n]
    dst, dkey = work[n:2 * n], fwork[n:2 * n]
    for i in range(n):
        src[i] = i
        key[i] = arr[i]
    while runs > 1:
        merged = 0
        for r in range(0, runs, 2):
            lo = bounds[r]
            if r + 1 == runs:
                dst[lo:n] = src[lo:n]
                dkey[lo:n] = key[lo:n]
            else:
                _merge(src, key, lo, bounds[r + 1], bounds[r + 2], dst, dkey)
            bounds[merged] = lo
            merged += 1
        bounds[merged] = n
        runs = merged
        src, dst = dst, src
        key, dkey = dkey, key
    return src


@helper
def _merge(src, key, lo, mid, hi, dst, dkey):
    """Merge the sorted runs [lo, mid) and [mid, hi) of (src, key) into dst, dkey (stable:
    on equal keys the first run first). A run much shorter than the other is placed
    by binary search (a window's late stragglers), else a linear merge."""
    na, nb = mid - lo, hi - mid
    if nb * 20 < na:
        _insert_run(src, key, lo, mid, mid, hi, dst, dkey, lo, True)
    elif na * 20 < nb:
        _insert_run(src, key, mid, hi, lo, mid, dst, dkey, lo, False)
    else:
        i, j, k = lo, mid, lo
        while i < mid and j < hi:
            if key[j] < key[i]:
                dst[k] = src[j]
                dkey[k] = key[j]
                j += 1
            else:
                dst[k] = src[i]
                dkey[k] = key[i]
                i += 1
            k += 1
        dst[k:k + mid - i] = src[i:mid]
        dkey[k:k + mid - i] = key[i:mid]
        k += mid - i
        dst[k:hi] = src[j:hi]
        dkey[k:hi] = key[j:hi]


@helper
def _insert_run(src, key, lo, hi, s_lo, s_hi, dst, dkey, k, after_equal):
    """Merge the short run [s_lo, s_hi) into the long run [lo, hi), writing from ``k``:
    each short element goes after the long run's smaller keys, found by binary search,
    and after (``after_equal``: the short run is the later one) or before its equal ones."""
    a = lo
    for j in range(s_lo, s_hi):
        x = key[j]
        p, q = a, hi
        while p < q:
            m = (p + q) >> 1
            if key[m] < x or (after_equal and key[m] == x):
                p = m + 1
            else:
                q = m
        dst[k:k + p - a] = src[a:p]
        dkey[k:k + p - a] = key[a:p]
        k += p - a
        a = p
        dst[k] = src[j]
        dkey[k] = x
        k += 1
    dst[k:k + hi - a] = src[a:hi]
    dkey[k:k + hi - a] = key[a:hi]
