"""Stations' admission of a whole batch, compiled (simulation/compiled.py).

The same integer-nanosecond arithmetic and tie rules as the numpy path
(admission_numpy.py): once ``admission_order.order_by_station`` has put a batch in
the order ``Stations.admit`` admits it (by station, then arrival, ties in batch
order) and :func:`uniform_draws` has hashed its service draws, :func:`admit_sorted`
admits it: single-worker stations whose waiting room cannot
overflow in closed form (Lindley's recursion as a running maximum, the numpy
path's very formula), the others request by request through :func:`admit_one`,
which the balancers' kernel (least_choice.py) calls too. With numba installed,
stations.py takes this path once the kernels are loaded (:func:`load_in_background`);
until then, or without numba, its numpy path (same numbers).
"""
from __future__ import annotations

import threading

import numpy as np

from .compiled import helper, kernel, numba_installed
from .flight import FLAG_CHECK, FLAG_NOT_MODIFIED, FLAG_TIMEOUT
from .network import SERVER
from .randomness import _GOLDEN, _HOP, _MUL1, _MUL2, _SALT

NS = 1e9
TIE_S = 1e-7    # see stations.py
TIE_NS = 100
RING_CAP = 4096
NEVER_NS = 2**62
MAX_I64 = 2**63 - 1
ADMITTED, QUEUE_FULL, DOWN = 0, 1, 2
GIVES_UP = 3    # admit_one: admitted, but gives up at its patience (nothing committed)


@helper
def decide_one(s, a, t, f, ring, ring_off, ring_len, count, limit, timeout_ns, rate):
    """What ``admit_one`` decides for a request arriving at ``a`` ns (``t`` s) at station
    ``s`` (up) whose earliest worker is free at ``f`` ns, without committing anything:
    ``(state, t0, slot)``, its start ``t0 = max(f, a)`` and its place in the ring."""
    n_ring = len(ring)
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
    if lim > RING_CAP:   # beyond the ring: estimate the waiting line from the wait itself
        full = (t0 - a) / NS * rate[s] >= lim
    if full:
        return QUEUE_FULL, t0, slot
    if (t0 - a) > timeout_ns[s] + TIE_NS:   # it keeps its place until it gives up (FIFO: in order)
        return GIVES_UP, t0, slot
    return ADMITTED, t0, slot


@helper
def admit_one(s, a, t, svc, held, free, ring, ring_off, ring_len, count, limit, timeout_ns, rate):
    """``admit_at`` looking at every column of ``free`` (those beyond a station's workers
    are never free: the same worker and times)."""
    return admit_at(s, a, t, svc, held, free, free.shape[1], ring, ring_off, ring_len, count, limit, timeout_ns, rate)


@helper
def admit_at(s, a, t, svc, held, free, c, ring, ring_off, ring_len, count, limit, timeout_ns, rate):
    """One request at station ``s`` (up, ``c`` workers), arriving at ``a`` ns (``t`` s),
    service ``svc`` ns: it takes the first worker with the earliest free time at
    ``t0 = max(free, a)``. Returns ``(state, t0, worker)``: ADMITTED (committed: the
    worker is busy until ``t0 + svc``, or for ever when ``held``, the ring and count move
    on), QUEUE_FULL (its waiting room is full: changes nothing) or GIVES_UP (it would
    wait past its patience: it holds its place in the waiting room until then, so the
    ring records its give-up time and the count moves on; no worker is taken)."""
    w = 0
    fw = free[s, 0]
    for q in range(1, c):
        if free[s, q] < fw:
            fw = free[s, q]
            w = q
    f = np.int64(NEVER_NS) if fw == np.inf else np.int64(np.rint(fw * NS))
    state, t0, slot = decide_one(s, a, t, f, ring, ring_off, ring_len, count, limit, timeout_ns, rate)
    if state == QUEUE_FULL:
        return QUEUE_FULL, t0, w
    if state == GIVES_UP:
        if ring_len[s] > 0:
            ring[slot] = (a + timeout_ns[s]) / NS
        count[s] += 1
        return GIVES_UP, t0, w
    free[s, w] = np.inf if held else (t0 + svc) / NS
    if ring_len[s] > 0:
        ring[slot] = t0 / NS
    count[s] += 1
    return ADMITTED, t0, w


@kernel(sample=lambda: (np.arange(3, dtype=np.uint64), np.ones(3, dtype=np.int8), np.uint64(1), np.zeros(3)))
def uniform_draws(key, hop, salt, out):
    """``randomness.uniform(key, hop, salt)`` into ``out``: the same integer hash (the
    exponential's logarithm stays in numpy, which may round differently from numba's)."""
    salt_mix = salt * _SALT
    for i in range(len(key)):
        z = (key[i] ^ salt_mix ^ (np.uint64(hop[i]) * _HOP)) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    return 0


@helper
def _service_ns(m, v, f, item, at_server, nm_cost, check_cost):
    """One request's service in ns (``Stations._service_ns``): ``v`` its work at mean ``m``."""
    if f & FLAG_CHECK:
        v = check_cost[item] if at_server else m
    elif f & FLAG_NOT_MODIFIED and at_server:
        v = v * nm_cost
    v = np.rint(v * NS)
    return np.int64(v) if not v <= 0.0 else np.int64(0)   # np.maximum(v, 0): NaN stays NaN


@helper
def _group_end(st, lo):
    """The end of the run of requests at station ``st[lo]`` (a batch sorted by station)."""
    s = st[lo]
    hi = lo + 1
    while hi < len(st) and st[hi] == s:
        hi += 1
    return hi


def _sorted_sample() -> tuple:
    n_st, c, n = 2, 2, 3
    i64 = np.int64
    return (np.array([0, 0, 1], dtype=i64), np.array([0.0, 5e-9, 9e-9]), np.zeros(n, dtype=np.int8),
            np.zeros(n, dtype=np.int8), np.ones(n), np.full(n, 10**7, dtype=i64), True,
            np.zeros(n_st, dtype=i64), np.array([1, 2], dtype=i64), np.ones(n_st, dtype=np.bool_),
            np.full(n_st, 4, dtype=i64), np.zeros(n_st, dtype=np.bool_), np.ones(n_st),
            np.full(n_st, 10**9, dtype=i64), np.full(n_st, 100.0), np.full(n_st, 0.01), np.full(n_st, 0.02),
            np.zeros(n_st, dtype=np.bool_), np.zeros(n, dtype=i64), np.full(1, 0.001), np.ones(n_st, dtype=i64),
            np.full(n_st, 0.2), np.zeros((n_st, c)), np.full(8, -np.inf), np.array([0, 4], dtype=i64),
            np.full(n_st, 4, dtype=i64), np.zeros(n_st, dtype=i64), np.zeros(n), np.zeros(n),
            np.zeros(n, dtype=np.int8), np.zeros(n, dtype=i64), np.zeros(3 * n + n_st, dtype=i64))


@kernel(sample=_sorted_sample)
def admit_sorted(st, a_s, cls, flags, draws, svc, svc_given, in_system, workers, up, limit, hold, timeout_s,
                 timeout_ns, rate, mean_read, mean_write, det, item, check_cost, kind, nm_cost, free, ring, ring_off,
                 ring_len, count, start, fin, status, worker, work):
    """Admit a batch in ``order_by_station``'s order: ``a_s`` arrivals (s), ``svc``
    service (ns), ``in_system`` requests at each station when the window starts.
    Unless ``svc_given``, first writes ``svc`` as ``Stations._service_ns`` computes it
    when no request reads a session at a store: the station's mean (by ``cls``), times
    the request's standard exponential ``draws`` unless ``det``, times ``nm_cost`` for a
    304 at a server; a health check costs its balancer's (``item``) ``check_cost`` at a
    server (``kind``), the mean elsewhere. Updates ``free`` (s),
    ``ring`` and ``count``; writes ``start``, ``fin`` (s), ``status``, FLAG_TIMEOUT into
    ``flags`` (gives up at its patience, then ``start`` = ``fin`` = the give-up time) and,
    when ``worker`` is not empty, the worker each request holds (blocking servers' user
    requests; else -1). ``work``: int64 scratch of ``3 len(st) + len(up)`` at least.
    Returns (how many are not admitted, how many hold a worker).

    A group (one station's requests) is in closed form when its station has one
    worker, is up, holds no workers and its waiting room cannot overflow, unless a
    request of it would wait past its patience or wait at all with no waiting room:
    then, as the other groups, request by request. As in the numpy path, no group is
    in closed form when the offsets that path keeps its groups apart with would not
    fit in int64."""
    n = len(st)
    a_ns = work[:n]   # arrivals in ns (scratch kept by the caller: no page faults)
    for i in range(n):
        t = a_s[i]
        a_ns[i] = np.int64(np.rint(t * NS)) if np.isfinite(t) else np.int64(NEVER_NS)
    if not svc_given:
        bits = 0
        for i in range(n):
            bits |= flags[i]
        plain = (bits & (FLAG_CHECK | FLAG_NOT_MODIFIED)) == 0   # no health check, no 304
        lo = 0
        while lo < n:
            s = st[lo]
            hi = _group_end(st, lo)
            mr = mean_read[s]
            mw = mean_write[s]
            if not plain:
                at_server = kind[s] == SERVER
                for i in range(lo, hi):
                    m = mw if cls[i] == 1 else mr
                    svc[i] = _service_ns(m, m if det[s] else draws[i] * m, flags[i], item[i], at_server,
                                         nm_cost[s], check_cost)
            elif det[s]:
                for i in range(lo, hi):
                    v = np.rint((mw if cls[i] == 1 else mr) * NS)
                    svc[i] = np.int64(v) if not v <= 0.0 else np.int64(0)
            else:
                for i in range(lo, hi):
                    v = np.rint((draws[i] * (mw if cls[i] == 1 else mr)) * NS)
                    svc[i] = np.int64(v) if not v <= 0.0 else np.int64(0)
            lo = hi
    # pass 1: the easy groups in closed form (committed in pass 2 when the numpy path's
    # offsets fit), with the range of values those offsets must cover
    b_ns = work[2 * n:3 * n]      # closed-form starts in ns
    good = work[3 * n:]           # per station: its easy group kept its patience and waiting room
    n_easy = 0
    lo_v = np.int64(MAX_I64)
    hi_v = -lo_v - 1
    lo = 0
    while lo < n:
        s = st[lo]
        hi = _group_end(st, lo)
        if workers[s] == 1 and up[s] and in_system[s] + (hi - lo) <= limit[s] and not hold[s]:
            n_easy += 1
            g = free[s, 0]
            m = np.int64(np.rint(g * NS)) if np.isfinite(g) else np.int64(NEVER_NS)
            lo_v = min(lo_v, m)
            hi_v = max(hi_v, m)
            c = np.int64(0)
            wait = np.int64(-MAX_I64 - 1)    # the longest wait in the group
            for i in range(lo, hi):
                x = a_ns[i] - c              # a_k - C_{k-1}
                lo_v = min(lo_v, x)
                hi_v = max(hi_v, x)
                c += svc[i]
                m = max(m, x)
                b = (m + c) - svc[i]         # D_k = max(free, max_j a_j - C_{j-1}) + C_k; start D_k - S_k
                b_ns[i] = b
                wait = max(wait, b - a_ns[i])
            lim = limit[s]
            good[s] = not (wait > timeout_ns[s] + TIE_NS or (lim == 0 and wait > TIE_NS))
        lo = hi
    closed = n_easy > 0
    if closed:   # numpy: span * (groups + 1) >= 2**62 sends every group to the rounds
        if lo_v < 0 and hi_v > MAX_I64 + lo_v:
            closed = False
        elif hi_v - lo_v >= 2**62:
            closed = False
        else:
            closed = hi_v - lo_v + 1 < (2**62 + n_easy) // (n_easy + 1)
    # pass 2: commit the closed form, admit the other groups (stations are independent);
    # a start of b_ns and an end of b_ns + svc (ns) for all but those down or giving up
    special = 0
    rejected = 0
    holds = 0
    track = len(worker) > 0
    lo = 0
    while lo < n:
        s = st[lo]
        hi = _group_end(st, lo)
        size = hi - lo
        one_by_one = True
        if closed and workers[s] == 1 and up[s] and in_system[s] + size <= limit[s] and not hold[s] and good[s]:
            one_by_one = False
            status[lo:hi] = ADMITTED
            free[s, 0] = (b_ns[hi - 1] + svc[hi - 1]) / NS
            rlen = ring_len[s]
            if rlen > 0:   # the ring keeps the starts of the last ring_len requests
                k0 = max(size - rlen, 0)
                p = (count[s] + k0) % rlen
                off = ring_off[s]
                for k in range(lo + k0, hi):
                    ring[off + p] = b_ns[k] / NS
                    p += 1
                    if p == rlen:
                        p = 0
            count[s] += size
            if track:
                worker[lo:hi] = -1
        if one_by_one and not up[s]:   # a station that is down admits nothing
            one_by_one = False
            status[lo:hi] = DOWN
            rejected += size
            special += size
            if track:
                worker[lo:hi] = -1
        if one_by_one:
            for i in range(lo, hi):
                held = hold[s] and (flags[i] & FLAG_CHECK) == 0
                state, t0, w = admit_at(s, a_ns[i], a_s[i], svc[i], held, free, workers[s], ring, ring_off,
                                        ring_len, count, limit, timeout_ns, rate)
                if track:
                    worker[i] = -1
                status[i] = state
                b_ns[i] = t0
                if state == QUEUE_FULL:
                    rejected += 1
                elif state == GIVES_UP:
                    special += 1
                elif held:
                    holds += 1
                    if track:
                        worker[i] = w
        lo = hi
    for i in range(n):   # in s (one loop over all: vectorised)
        start[i] = b_ns[i] / NS
        fin[i] = (b_ns[i] + svc[i]) / NS
    if special:
        for i in range(n):
            if status[i] == DOWN:
                start[i] = a_s[i]
                fin[i] = a_s[i]
            elif status[i] == GIVES_UP:   # admitted: it gives up at its patience
                status[i] = ADMITTED
                flags[i] |= FLAG_TIMEOUT
                start[i] = a_s[i] + timeout_s[st[i]]
                fin[i] = a_s[i] + timeout_s[st[i]]
    return rejected, holds


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
