"""Stations' admission request by request, compiled (simulation/compiled.py).

The same integer-nanosecond arithmetic and tie rules as ``Stations._one_by_one``
and ``Stations._rounds`` (stations.py): a request arriving at ``a`` takes the
first worker with the earliest free time at ``max(free, a)``; it is refused when
its waiting room is full, gives up when it would wait past its patience. With
numba installed, stations.py admits every request that is not in closed form
through this kernel once it is loaded (:func:`load_in_background`); until then, or
without numba, through its own Python loops (same numbers).
"""
from __future__ import annotations

import threading

import numpy as np

from .compiled import kernel, numba_installed

NS = 1e9
TIE_S = 1e-7
TIE_NS = 100
RING_CAP = 4096
NEVER_NS = 2**62
ADMITTED, QUEUE_FULL, DOWN = 0, 1, 2


def _sample() -> tuple:
    n_st, c, n = 2, 2, 3
    i64 = np.int64
    return (np.array([0, 0, 1], dtype=i64), np.array([0, 5, 9], dtype=i64), np.array([0.0, 5e-9, 9e-9]),
            np.full(n, 10**7, dtype=i64), np.zeros(n, dtype=i64), np.zeros((n_st, c)), np.full(8, -np.inf),
            np.array([0, 4], dtype=i64), np.full(n_st, 4, dtype=i64), np.zeros(n_st, dtype=i64),
            np.ones(n_st, dtype=i64), np.full(n_st, 4, dtype=i64), np.ones(n_st), np.full(n_st, 10**9, dtype=i64),
            np.full(n_st, 100.0), np.zeros(n_st, dtype=i64), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int8),
            np.zeros(n, dtype=i64), np.zeros(n, dtype=i64))


@kernel(sample=_sample)
def admit_sequential(st, a_ns, a_s, svc, check, free, ring, ring_off, ring_len, count, up, limit, timeout_s,
                     timeout_ns, rate, hold, start, fin, status, late, worker):
    """Admit requests in station, arrival order (``a_ns``/``a_s``: arrival in ns and s,
    ``svc``: service in ns, ``check``: 1 for a health check). Updates ``free`` (s),
    ``ring`` and ``count`` in place; writes ``start``, ``fin`` (s), ``status``, ``late``
    (1: gives up at its patience) and ``worker`` (the worker it holds, for blocking
    servers' user requests; else -1). Returns how many hold a worker."""
    n_ring = len(ring)
    c = free.shape[1]
    holds = 0
    for k in range(len(st)):
        s = st[k]
        a = a_ns[k]
        t = a_s[k]
        worker[k] = -1
        late[k] = 0
        if up[s] == 0:
            status[k] = DOWN
            start[k] = t
            fin[k] = t
            continue
        w = 0
        fw = free[s, 0]
        for q in range(1, c):
            if free[s, q] < fw:
                fw = free[s, q]
                w = q
        f = np.int64(NEVER_NS) if fw == np.inf else np.int64(np.rint(fw * NS))
        t0 = max(f, a)
        cnt = count[s]
        rlen = ring_len[s]
        slot = ring_off[s] + (cnt % rlen if rlen > 0 else 0)
        oldest = ring[min(slot, n_ring - 1)] if rlen > 0 and n_ring > 0 else np.inf
        lim = limit[s]
        if lim == 0:
            full = t0 > a + TIE_NS
        else:
            full = cnt >= rlen and oldest > t + TIE_S
        if lim > RING_CAP:
            full = (t0 - a) / NS * rate[s] >= lim
        if full:
            status[k] = QUEUE_FULL
            start[k] = t0 / NS
            fin[k] = (t0 + svc[k]) / NS
            continue
        status[k] = ADMITTED
        if (t0 - a) > timeout_ns[s] + TIE_NS:
            late[k] = 1
            start[k] = t + timeout_s[s]
            fin[k] = t + timeout_s[s]
            continue
        t0_s = t0 / NS
        t1_s = (t0 + svc[k]) / NS
        start[k] = t0_s
        fin[k] = t1_s
        if hold[s] != 0 and check[k] == 0:
            free[s, w] = np.inf
            worker[k] = w
            holds += 1
        else:
            free[s, w] = t1_s
        if rlen > 0:
            ring[slot] = t0_s
        count[s] = cnt + 1
    return holds


_loader: threading.Thread | None = None


def load_in_background() -> None:
    """Import numba and load (or compile) the engine's kernels in a background thread,
    once per process. Until a kernel is ready the engine takes its Python path, which
    gives the same numbers: so a run never waits for numba (the app's window stays
    responsive) and switching mid-run changes nothing."""
    global _loader
    if _loader is None and numba_installed():
        _loader = threading.Thread(target=_load, name="scalelab-kernels", daemon=True)
        _loader.start()


def _load() -> None:
    from . import compiled
    compiled.load_all()
