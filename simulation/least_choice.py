"""Load-aware balancing decided request by request (least connections, least
response time, power of two), as HAProxy's ``leastconn``, NGINX's ``least_conn``
and ``least_time`` and Envoy's P2C do.

When a request reaches the balancer at time t, the balancer counts the requests
at each candidate backend at t: those admitted there before (in earlier windows,
or a moment ago by this same balancer or another one in front of the same
backends) that arrived by t and have not finished by t. Because a FIFO station
fixes a request's start and end the moment it is admitted, the choice and the
admission are one sequential pass over the requests in time order: the kernel
:func:`choose_and_admit` does both, on copies of the stations' state, with the
exact integer-nanosecond arithmetic of ``Stations.admit`` (the same
``admission_kernel.admit_one``). It only returns the targets (and, for the tests, the end times): the engine then admits the
requests through the ordinary ``Stations.admit``, which computes the same times.
So nothing depends on the tick nor on how a run is sliced into windows.

Least response time keeps, per backend, an EWMA of its recent response times,
updated when each response completes, in time order (ties by end time, then
response time): the kernel applies the departures it passes, ``ewma_apply`` the
ones the engine settles; a per-station mark (``upto``) makes each departure count
exactly once, whichever of the two sees it first.
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import GIVES_UP, NS, QUEUE_FULL, admit_one
from .compiled import helper, kernel

ALGO_FIXED, ALGO_LC, ALGO_LRT, ALGO_P2C = 0, 1, 2, 3
ALGO_CODE = {"least_connections": ALGO_LC, "least_response_time": ALGO_LRT, "power_of_two": ALGO_P2C}
EWMA_ALPHA = 0.1        # weight of a new response time (least_response_time)
LAT_FLOOR = 1e-6        # a backend's EWMA is at least 1 µs in the score


@helper
def _score(s, lrt, conn, ewma):
    """What a balancer minimises: requests in progress, or (those + 1) × the recent
    response time (least response time)."""
    if lrt:
        return (conn[s] + 1.0) * max(ewma[s], LAT_FLOOR)
    return conn[s] + 0.0


@helper
def choose_backend(i, b, algo, cand_ptr, cand_st, conn, ewma, u_tie, u_a, u_b):
    """The backend balancer ``b`` picks for request ``i`` (-1: none) among its candidates
    ``cand_st[cand_ptr[b]:cand_ptr[b + 1]]``, with ``conn`` requests in progress at each
    station: the lowest score (ties: the request's draw ``u_tie`` picks among the tied,
    in candidate order), or the fewer of two drawn with ``u_a``/``u_b`` (power of two).
    Shared with balanced_events.py."""
    lo = cand_ptr[b]
    m = cand_ptr[b + 1] - lo
    if m == 0:
        return -1
    if algo[b] == ALGO_P2C:
        if m == 1:
            return cand_st[lo]
        x = min(int(u_a[i] * m), m - 1)
        y = min(int(u_b[i] * (m - 1)), m - 2)
        if y >= x:
            y += 1
        sx = cand_st[lo + x]
        sy = cand_st[lo + y]
        return sx if conn[sx] <= conn[sy] else sy
    lrt = algo[b] == ALGO_LRT
    best = np.inf
    ties = 0
    for q in range(lo, lo + m):
        c = _score(cand_st[q], lrt, conn, ewma)
        if c < best:
            best = c
            ties = 1
        elif c == best:
            ties += 1
    pick = min(int(u_tie[i] * ties), ties - 1)
    for q in range(lo, lo + m):
        if _score(cand_st[q], lrt, conn, ewma) == best:
            if pick == 0:
                return cand_st[q]
            pick -= 1
    return -1


@helper
def presence_push(hf, hs, hr, size, fin, s, rt):
    """Add a request in progress at ``s`` until ``fin`` (response time ``rt``, -1: not an
    EWMA sample) to the heap of the first ``size`` entries; returns size + 1."""
    k = size
    while k > 0:
        p = (k - 1) // 2
        if fin < hf[p] or (fin == hf[p] and (s < hs[p] or (s == hs[p] and rt < hr[p]))):
            hf[k] = hf[p]
            hs[k] = hs[p]
            hr[k] = hr[p]
            k = p
        else:
            break
    hf[k] = fin
    hs[k] = s
    hr[k] = rt
    return size + 1


@helper
def presence_until(t, hf, hs, hr, size, conn, ewma, upto, track):
    """Take the requests that finished by ``t`` out of the count ``conn`` (and into their
    station's EWMA, in order, when ``track`` and not counted before: ``upto``); returns
    the heap's new size."""
    while size > 0 and hf[0] <= t:
        s = hs[0]
        conn[s] -= 1
        r = hr[0]
        if track != 0 and r >= 0.0 and hf[0] > upto[s]:
            ewma[s] += EWMA_ALPHA * (r - ewma[s])
        size -= 1
        lf = hf[size]
        ls = hs[size]
        lr = hr[size]
        k = 0
        while True:
            ch = 2 * k + 1
            if ch >= size:
                break
            if ch + 1 < size:
                d = ch + 1
                if hf[d] < hf[ch] or (hf[d] == hf[ch] and (hs[d] < hs[ch] or (hs[d] == hs[ch] and hr[d] < hr[ch]))):
                    ch = d
            if hf[ch] < lf or (hf[ch] == lf and (hs[ch] < ls or (hs[ch] == ls and hr[ch] < lr))):
                hf[k] = hf[ch]
                hs[k] = hs[ch]
                hr[k] = hr[ch]
                k = ch
            else:
                break
        if size > 0:
            hf[k] = lf
            hs[k] = ls
            hr[k] = lr
    return size


def _sample() -> tuple:
    n_st, c = 3, 1
    f = np.zeros(1)
    i = np.zeros(1, dtype=np.int64)
    return (f, i, f, f, f, i, i, i, i, f, f, f,
            np.array([ALGO_LC], dtype=np.int64), np.array([0, 2], dtype=np.int64), np.array([1, 2], dtype=np.int64),
            np.zeros((n_st, c)), np.zeros(0), np.zeros(n_st, dtype=np.int64), np.zeros(n_st, dtype=np.int64),
            np.zeros(n_st, dtype=np.int64), np.ones(n_st, dtype=np.int64), np.full(n_st, 10, dtype=np.int64),
            np.full(n_st, 1.0), np.full(n_st, 10**9, dtype=np.int64), np.full(n_st, 100.0), np.full(n_st, 0.01),
            np.full(n_st, 0.01), np.zeros(n_st, dtype=np.int64), np.ones(n_st), np.ones(n_st, dtype=np.int64),
            np.full(n_st, 0.01), np.full(n_st, -np.inf), 1, np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64),
            np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.int64))


@kernel(sample=_sample)
def choose_and_admit(t_s, a_ns, draw, session_draw, svc_fixed, cls, flags, bal, fixed, u_tie, u_a, u_b,
                     algo, cand_ptr, cand_st,
                     free, ring, ring_off, ring_len, count, up, limit, timeout_s, timeout_ns, rate,
                     mean_read, mean_write, det, nm_cost, kind, ewma, upto, track,
                     pre_arr, pre_fin, pre_st, pre_rt, target, fin_out, start_out, state):
    """Choose a backend for each request (in time order) and admit it there.

    Per request i: ``t_s``/``a_ns`` its arrival (s, ns), ``draw`` its standard
    exponential service draw, ``session_draw`` that of the session read a store adds
    (a server keeping sessions in the database sent it; else < 0), ``svc_fixed`` its service in s when fixed (health
    checks; else < 0), ``flags`` bit 1 a 304 answer, bit 2 a health check (occupies
    a worker, not a connection), ``bal`` its balancer (an index into ``algo``),
    ``fixed`` a station it must go to (a cookie, a blind balancer, a check; else -1;
    -2: the station chosen for request ``-3 - fixed``, an earlier request of the
    same new user). ``cand_ptr``/``cand_st``: each balancer's candidate stations.
    The station arrays are copies (modified). ``pre_*``: the requests already at the
    candidates, by arrival (``pre_rt`` -1 where not an EWMA sample). ``kind`` per
    station: 1 a server, 2 a store (database or cache), 0 else. Writes
    ``target`` (station, -1: none), ``fin_out``, ``start_out`` and ``state`` (0
    admitted, 1 queue full, 2 down, 3 gives up at its patience, -1 no backend);
    returns the last time seen."""
    n = len(t_s)
    n_st = len(up)
    cap = len(pre_arr) + n + 1
    hf = np.empty(cap)
    hs = np.empty(cap, dtype=np.int64)
    hr = np.empty(cap)
    size = 0
    conn = np.zeros(n_st, dtype=np.int64)
    j = 0
    n_pre = len(pre_arr)
    last_t = -np.inf
    for i in range(n):
        t = t_s[i]
        last_t = t
        # the requests already there that arrived by t join the count (and the departures)
        while j < n_pre and pre_arr[j] <= t:
            s = pre_st[j]
            conn[s] += 1
            size = presence_push(hf, hs, hr, size, pre_fin[j], s, pre_rt[j])
            j += 1
        # those that finished by t leave (in time order: the EWMA sees them so)
        size = presence_until(t, hf, hs, hr, size, conn, ewma, upto, track)
        # the choice
        s = fixed[i]
        if s == -2:
            s = -1
        elif s < -2:
            s = target[-3 - s]
        elif s == -1:
            s = choose_backend(i, bal[i], algo, cand_ptr, cand_st, conn, ewma, u_tie, u_a, u_b)
        target[i] = s
        if s < 0:
            fin_out[i] = t
            start_out[i] = t
            state[i] = -1
            continue
        # admission at s: Stations.admit's arithmetic
        a_s = t
        a = a_ns[i]
        if up[s] == 0:
            fin_out[i] = a_s
            start_out[i] = a_s
            state[i] = 2
            continue
        if svc_fixed[i] >= 0.0:
            service = svc_fixed[i]
        else:
            mean = mean_write[s] if cls[i] == 1 else mean_read[s]
            service = mean if det[s] != 0 else draw[i] * mean
            if session_draw[i] >= 0.0 and kind[s] == 2:   # Stations._service_ns's session read
                service += session_draw[i] * mean_read[s]
            if (flags[i] & 1) != 0 and kind[s] == 1:
                service = service * nm_cost[s]
        svc = np.int64(np.rint(service * NS))
        if svc < 0:
            svc = np.int64(0)
        code, t0, w = admit_one(s, a, a_s, svc, False, free, ring, ring_off, ring_len, count, limit, timeout_ns,
                                rate)
        if code == QUEUE_FULL:
            fin_out[i] = (t0 + svc) / NS
            start_out[i] = t0 / NS
            state[i] = 1
            continue
        check = (flags[i] & 2) != 0
        if code == GIVES_UP:
            fin = a_s + timeout_s[s]
            start_out[i] = fin
            state[i] = 3
            rt = -1.0
        else:
            fin = (t0 + svc) / NS
            start_out[i] = t0 / NS
            state[i] = 0
            rt = fin - a_s
        fin_out[i] = fin
        if check:
            continue
        conn[s] += 1
        size = presence_push(hf, hs, hr, size, fin, s, rt)
    return last_t


@kernel(sample=lambda: (np.zeros(1, dtype=np.int64), np.zeros(1), np.full(1, 0.01), np.full(1, 0.01),
                        np.full(1, -np.inf)))
def ewma_apply(st, fin, rt, ewma, upto):
    """The responses that completed (sorted by station, then end), in time order into
    each station's EWMA (equal ends: by response time, as the choice kernel's heap),
    skipping those already counted (end ≤ ``upto``)."""
    n = len(st)
    i = 0
    while i < n:
        s = st[i]
        f = fin[i]
        j = i + 1
        while j < n and st[j] == s and fin[j] == f:
            j += 1
        if f > upto[s]:
            if j - i == 1:
                ewma[s] += EWMA_ALPHA * (rt[i] - ewma[s])
            else:
                run = np.sort(rt[i:j])
                for q in range(j - i):
                    ewma[s] += EWMA_ALPHA * (run[q] - ewma[s])
        i = j
    for i in range(n):
        s = st[i]
        if fin[i] > upto[s]:
            upto[s] = fin[i]
    return 0

