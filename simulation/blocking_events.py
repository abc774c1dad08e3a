"""A window of a blocking tier, event by event (compiled: simulation/compiled.py).

The tier is blocking servers B (``blocking_calls``) and the stations downstream of them
D: servers that do not block and databases, which requests cross one after another
(a journey: each request's stations and services there are known in advance, its
splits being hashes of its key). A request takes a worker of B and holds it until it
leaves the network: when its last station answers it, or a station refuses it, or it
gives up. B's admission therefore needs release times that D decides later, which
the sweeps of blocking.py find with two trials per sweep, about one sweep of numpy
per request. This kernel decides the same in one pass over the window's events:

- B's requests are taken per station in arrival order (FIFO). A held worker whose
  release is still unknown has a lower bound of it: the end of its request's service
  at B (only B's failure, which loses the requests waiting at B too, frees it
  sooner); once its request is at a station after ``t1`` (or waits there past it),
  ``t1``, where a failure may lose it. A station's first waiting request is decided
  when ``admit_one``'s outcome is the same with the unknown workers free at their
  lower bounds as with them held for ever (the sweeps' two trials, for one request);
  it is then admitted with ``admit_one`` itself, on copies of the stations' arrays.
- D's arrivals are admitted (``admit_one``, on the copies) in time order, each once
  no request still undecided at B can reach D earlier. A journey's end frees its
  worker at B.

A station's undecided requests stay undecided (the rest of its arrivals too: FIFO),
as in the sweeps; blocking_window.py puts them back to wait for the next window.
Every step decides a request or moves a journey on by one station, so the loop ends
after at most (requests × stations on a journey) steps (by construction).

The engine then admits D itself, level by level, as it always does; blocking_window.py
checks that every release it sees is the one predicted here. Arrivals at one station
at one instant (deterministic service) are taken in the order of their keys, here and
there (blocking.py, ``_admit_arrivals``). Only a service of zero nanoseconds at B can
leave that order open: the kernel then gives up (TIE) and the window takes the sweeps.
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import ADMITTED, DOWN, GIVES_UP, NEVER_NS, NS, QUEUE_FULL, admit_at, decide_one
from .choice_kernel import chosen_service, round_robin_next
from .compiled import helper, kernel
from .least_choice import choose_backend, presence_push, presence_until

UNDECIDED = -1
TIE = -1   # the kernel's answer when D's order would depend on a tie
END = -1       # a journey's stations: no more
NOWHERE = -2   # the proxy knows of no copy of the database that can take it: it fails on leaving
CHOICE = -3    # CHOICE - c: the backend that balancer c gives it as it leaves (choice_hops.py)
NOT_STICKY = -2   # pins[c, :] of a balancer downstream without cookies (else: a backend station, or -1)


@helper
def _to_ns(x):
    return np.int64(NEVER_NS) if x == np.inf else np.int64(np.rint(x * NS))


@helper
def _set_min(tree, p2, s, v):
    """Set leaf ``s`` of a tree of minima (``tree[1]``: the least of the ``p2`` leaves)."""
    k = p2 + s
    tree[k] = v
    k //= 2
    while k >= 1:
        tree[k] = min(tree[2 * k], tree[2 * k + 1])
        k //= 2


@helper
def _heap_push(ht, hk, hi, n, t, key, i):
    """Push event ``i`` at time ``t`` on the binary heap of the first ``n`` entries of
    ``ht``/``hk``/``hi``, ordered by time, then request key; returns n + 1."""
    k = n
    while k > 0:
        p = (k - 1) // 2
        if ht[p] < t or (ht[p] == t and hk[p] <= key):
            break
        ht[k] = ht[p]
        hk[k] = hk[p]
        hi[k] = hi[p]
        k = p
    ht[k] = t
    hk[k] = key
    hi[k] = i
    return n + 1


@helper
def _heap_pop(ht, hk, hi, n):
    """Remove the top of the heap of ``n`` entries; returns n - 1."""
    n -= 1
    t = ht[n]
    key = hk[n]
    i = hi[n]
    k = 0
    while True:
        c = 2 * k + 1
        if c >= n:
            break
        if c + 1 < n and (ht[c + 1] < ht[c] or (ht[c + 1] == ht[c] and hk[c + 1] < hk[c])):
            c += 1
        if ht[c] > t or (ht[c] == t and hk[c] >= key):
            break
        ht[k] = ht[c]
        hk[k] = hk[c]
        hi[k] = hi[c]
        k = c
    if n > 0:
        ht[k] = t
        hk[k] = key
        hi[k] = i
    return n


@helper
def admit_parts(j, h, d, d_ns, px_first, px_n, px_st, px_svc, tie_st, last_d, free, workers, ring, ring_off,
                ring_len, count, limit, timeout_ns, timeout_s, rate, up):
    """Admit the parts of a cross-shard query (journey ``j`` at its ``h``-th station, at
    ``d``): an internal copy at every other shard, at once (sharding.py). Returns (the
    worst refusal: 0 none, 1 queue full, 2 down; the latest end of the admitted parts,
    their give-ups' times included; -1 when two arrivals at one instant at a replicated
    database make the order the engine's own, TIE)."""
    worst = 0
    rmax = -np.inf
    for q in range(px_first[j, h], px_first[j, h] + px_n[j, h]):
        ps = px_st[q]
        if tie_st[ps]:
            if d == last_d[ps]:
                return -1, rmax
            last_d[ps] = d
        if not up[ps]:
            worst = 2
            continue
        state, u0, _ = admit_at(ps, d_ns, d, px_svc[q], False, free, workers[ps], ring, ring_off, ring_len, count,
                                limit, timeout_ns, rate)
        if state == QUEUE_FULL:
            worst = max(worst, 1)
        elif state == GIVES_UP:
            rmax = max(rmax, d + timeout_s[ps])
        else:
            rmax = max(rmax, (u0 + px_svc[q]) / NS)
    return worst, rmax


def _sample() -> tuple:
    i64, f64, u64 = np.int64, np.float64, np.uint64
    n_st, c = 3, 2
    return (np.array([0, 0, 1], dtype=i64), np.array([0.1, 0.2, 0.15]), np.arange(3, dtype=u64),
            np.full(3, 10**6, dtype=i64), np.ones(3, dtype=np.bool_), np.ones(3, dtype=np.bool_),
            np.array([0.05]), np.array([7], dtype=u64), np.array([0], dtype=i64), np.array([0], dtype=i64),
            np.full((4, 1), 2, dtype=i64), np.full((4, 1), 5 * 10**5, dtype=i64),
            np.full((4, 1), -1, dtype=i64), np.zeros((4, 1), dtype=i64), np.zeros(1),
            np.zeros((4, 1), dtype=i64), np.zeros((4, 1), dtype=i64), np.zeros(0, dtype=i64), np.zeros(0, dtype=i64),
            np.zeros((4, 1)), np.zeros((4, 1), dtype=np.int8), np.zeros(1, dtype=i64), np.zeros(0, dtype=i64),
            np.zeros(0, dtype=i64), np.zeros(0, dtype=i64), np.zeros(4), np.zeros(4), np.zeros(4), np.zeros(0),
            np.zeros(0, dtype=i64), np.zeros(0), np.zeros(n_st), np.full(n_st, -np.inf), 0,
            np.zeros((4, 1), dtype=i64), np.zeros((4, 1), dtype=i64), np.zeros((0, n_st), dtype=np.bool_),
            np.zeros((0, 0), dtype=i64),
            np.ones(n_st), np.ones(n_st), np.zeros(n_st, dtype=np.bool_), np.ones(n_st),
            np.zeros(n_st, dtype=np.bool_),
            np.full((n_st, c), np.nan), np.zeros((n_st, c)), np.full(n_st, c, dtype=i64), np.full(12, -np.inf, dtype=f64),
            np.array([0, 4, 8], dtype=i64), np.full(n_st, 4, dtype=i64), np.zeros(n_st, dtype=i64),
            np.full(n_st, 4, dtype=i64), np.full(n_st, 10**9, dtype=i64), np.ones(n_st), np.full(n_st, 100.0),
            np.ones(n_st, dtype=np.bool_), 1.0,
            np.zeros(3, dtype=np.int8), np.zeros(3, dtype=i64), np.zeros(3, dtype=i64), np.zeros(3), np.zeros(1),
            np.zeros(4 * 4 + 3 * n_st, dtype=i64), np.zeros(4), np.zeros(4, dtype=u64))


@kernel(sample=_sample)
def blocking_events(c_st, c_a, c_key, c_svc, c_held, c_down, e_t, e_key, e_bst, e_bw, jp, js, ja_first, ja_n, e_delay,
                    px_first, px_n, px_st, px_svc, ch_u, ch_f, ch_ptr, ch_seq, ch_rr, ch_algo, u_tie, u_a, u_b,
                    pre_fin, pre_st, pre_rt, ewma, upto, track, ch_slot, ch_alt, ch_ok, pins,
                    mean_r, mean_w, det, nm_cost,
                    tie_st, unk, free, workers, ring, ring_off, ring_len, count, limit, timeout_ns, timeout_s, rate, up,
                    t1,
                    status, start, worker, c_rel, e_rel, work, fwork, kwork):
    """Decide a window of a blocking tier (see the module docstring).

    Candidates at B, sorted by station then arrival (``Stations.admit``'s order): station
    ``c_st``, arrival ``c_a`` (s), key ``c_key``, service ``c_svc`` (ns), ``c_held`` (takes and
    holds a worker: a user request), ``c_down`` (once served at B it goes on downstream;
    else it is answered at B). Journeys: row i < len(c_st) of ``jp`` (stations, -1 after
    the last) and ``js`` (services there, ns) is candidate i's after B; row len(c_st) + k
    is request k's, already on its way, reaching ``jp``'s first station at ``e_t[k]`` (s; inf:
    not yet, a replica's apply job that a write at its primary starts) and holding worker
    ``e_bw[k]`` of B station ``e_bst[k]`` (-1: none). A journey admitted at its h-th station
    starts journeys ``ja_first[j, h]`` to ``+ ja_n[j, h]`` there when it ends its service
    (a write at a primary: every replica applies it), each ``e_delay`` (per e row) later
    (another primary: after the lag). At stations ``tie_st`` (replicated
    databases, where the engine admits apply jobs after the other arrivals) two arrivals
    at one instant make the kernel give up (TIE). A cross-shard query's parts at the other
    shards (``px_*``: per journey row and hop the first part and how many; each part's
    station and service) are admitted with it; it ends with the slowest and fails at once
    when one is refused (``admit_parts``). A journey's station ``CHOICE - c`` is the backend
    balancer ``c`` gives the request as it leaves it (choice_kernel.py): ``ch_seq[ch_ptr[c]:
    ch_ptr[c + 1]]`` is its round-robin sequence (``ch_algo[c]`` 0; counter ``ch_rr[c]``,
    advanced) or its candidates (``ch_algo[c]``: least_choice's code; the draws ``u_tie``,
    ``u_a``, ``u_b`` at journey row * depth + hop; the requests in progress at the backends
    when the window starts: ``pre_fin``, ``pre_st``, ``pre_rt``; least response time's
    ``ewma``, ``upto`` and ``track``, copies; ``ch_algo[c]`` -1: a hash, the backend it gives
    at ``ch_alt``). A sticky balancer (``pins[c]``: each user slot's backend, -1 none; a
    copy of its cookies) sends the user of slot ``ch_slot[j, h]`` where the cookie says if
    that backend is a candidate (``ch_ok[c, station]``), else chooses and pins the user
    there; the service there comes from the draw ``ch_u``
    and flags ``ch_f`` of that hop and the stations' ``mean_r``, ``mean_w``, ``det``,
    ``nm_cost``. Two choices of one balancer at one instant make the kernel give up (TIE:
    the engine's order there is its own). ``unk[s, w]``: NaN
    where worker w of s is free at ``free[s, w]``; else it is held with its release
    unknown, at least ``unk`` (s). ``free``, ``ring``, ``count``: copies of the stations'
    arrays, updated; ``workers``: each station's.

    Writes per candidate ``status`` (ADMITTED, QUEUE_FULL, DOWN, GIVES_UP or UNDECIDED),
    ``start`` (ns), ``worker`` and ``c_rel`` (when its held worker is released, inf if
    not before ``t1``); ``e_rel`` likewise. Arrivals at one station at one instant are
    admitted in the order of their keys. Scratch: ``work`` int64 of at least
    ``3 (len(c_st) + len(e_t)) + 3 n_stations``, ``fwork`` float64 and ``kwork`` uint64 of
    at least ``len(c_st) + len(e_t)``. Returns how many candidates were decided, or TIE."""
    n = len(c_st)
    ne = len(e_t)
    n_st = free.shape[0]
    m = n + ne
    depth = jp.shape[1]
    hi = work[:m]             # heap: journey * depth + the station it arrives at (one event per journey)
    minsvc = work[m:m + n]    # the least service at B of the requests from i on at i's station that go to D
    head = work[2 * m:2 * m + n_st]
    gend = work[2 * m + n_st:2 * m + 2 * n_st]
    # per blocked station, no arrival downstream from it before this (ns): a tree of minima over the stations
    p2 = 1
    while p2 < n_st:
        p2 *= 2
    bound = np.full(2 * p2, np.int64(NEVER_NS))
    dirty = work[2 * m + 3 * n_st:3 * m + 3 * n_st]   # stack of stations to look at again
    ht = fwork[:m]
    hk = kwork[:m]
    for s in range(n_st):
        head[s] = -1
        gend[s] = -1
    for i in range(n):
        status[i] = UNDECIDED
        worker[i] = -1
        c_rel[i] = np.inf
    lo = 0
    while lo < n:   # the stations' groups, and their least services from the end
        s = c_st[lo]
        hi_ = lo + 1
        while hi_ < n and c_st[hi_] == s:
            hi_ += 1
        head[s] = lo
        gend[s] = hi_
        best = np.int64(NEVER_NS)
        for i in range(hi_ - 1, lo - 1, -1):
            if c_held[i] and c_down[i] and c_svc[i] < best:
                best = c_svc[i]
            minsvc[i] = best
        lo = hi_
    n_heap = 0
    last_d = np.full(n_st, -np.inf)   # the last arrival taken at each station of tie_st
    last_c = np.full(len(ch_ptr) - 1, -np.inf)   # the last choice of each balancer downstream
    # requests in progress at the load-aware balancers' backends: a heap of their ends
    n_pres = 0
    conn = np.zeros(n_st, dtype=np.int64)
    hf = np.empty(len(pre_fin) + m * depth + 1)
    hs = np.empty(len(pre_fin) + m * depth + 1, dtype=np.int64)
    hr = np.empty(len(pre_fin) + m * depth + 1)
    for q in range(len(pre_fin)):
        conn[pre_st[q]] += 1
        n_pres = presence_push(hf, hs, hr, n_pres, pre_fin[q], pre_st[q], pre_rt[q])
    for j in range(ne):
        e_rel[j] = np.inf
        if e_t[j] < np.inf:
            n_heap = _heap_push(ht, hk, hi, n_heap, e_t[j], e_key[j], (n + j) * depth)
    n_dirty = 0
    for s in range(n_st):
        if head[s] >= 0:
            dirty[n_dirty] = s
            n_dirty += 1
    decided = 0
    while True:
        # every station's first waiting request that can be decided now
        while n_dirty > 0:
            n_dirty -= 1
            s = dirty[n_dirty]
            while head[s] < gend[s]:
                i = head[s]
                a = np.int64(np.rint(c_a[i] * NS))
                if not up[s]:
                    status[i] = DOWN
                    start[i] = a
                    head[s] += 1
                    decided += 1
                    continue
                fk = np.inf
                fu = np.inf
                for w in range(workers[s]):
                    if free[s, w] < fk:
                        fk = free[s, w]
                    u = unk[s, w]
                    if u == u and u < fu:
                        fu = u
                fk_ns = _to_ns(fk)
                fo_ns = _to_ns(min(fk, fu))
                if fo_ns != fk_ns:
                    sp, tp, _ = decide_one(s, a, c_a[i], fk_ns, ring, ring_off, ring_len, count, limit, timeout_ns,
                                           rate)
                    so, to, _ = decide_one(s, a, c_a[i], fo_ns, ring, ring_off, ring_len, count, limit, timeout_ns,
                                           rate)
                    if sp != so or (sp == ADMITTED and tp != to):   # depends on a release still unknown
                        _set_min(bound, p2, s, (max(a, fo_ns) + minsvc[i]) if minsvc[i] < NEVER_NS else NEVER_NS)
                        break
                held = c_held[i]
                state, t0, w = admit_at(s, a, c_a[i], c_svc[i], held, free, workers[s], ring, ring_off, ring_len,
                                        count, limit, timeout_ns, rate)
                status[i] = state
                start[i] = t0
                head[s] += 1
                decided += 1
                if bound[p2 + s] != NEVER_NS:
                    _set_min(bound, p2, s, NEVER_NS)
                if state == ADMITTED and held:
                    worker[i] = w
                    fin = (t0 + c_svc[i]) / NS
                    if fin >= t1:   # only B's failure, which loses the requests waiting there, frees it sooner
                        unk[s, w] = fin
                    elif c_down[i]:
                        unk[s, w] = fin
                        n_heap = _heap_push(ht, hk, hi, n_heap, fin, c_key[i], i * depth)
                    else:   # answered at B: released at the end of its service
                        free[s, w] = fin
                        c_rel[i] = fin
        if n_heap == 0:
            break
        d = ht[0]
        d_ns = _to_ns(d)
        if d_ns >= bound[1]:   # an arrival downstream not yet known might tie with it (a zero service at B)
            return TIE
        x = hi[0]
        key = hk[0]
        n_heap = _heap_pop(ht, hk, hi, n_heap)
        j = x // depth   # journey j arrives at its h-th station downstream
        h = x - j * depth
        dst, dsvc = jp[j, h], js[j, h]
        aware = False
        if dst <= CHOICE:   # leaves a balancer: the backend it gives
            c = CHOICE - dst
            if d == last_c[c]:
                return TIE
            last_c[c] = d
            pinned = -1
            if pins.shape[1] and pins[c, ch_slot[j, h]] >= 0 and ch_ok[c, pins[c, ch_slot[j, h]]]:
                pinned = pins[c, ch_slot[j, h]]   # its cookie names a backend the balancer may use
            if ch_algo[c] > 0:
                aware = True
                n_pres = presence_until(d, hf, hs, hr, n_pres, conn, ewma, upto, track)
            if pinned >= 0:
                dst = pinned
            elif ch_algo[c] == 0:
                dst = round_robin_next(c, ch_ptr, ch_seq, ch_rr)
            elif ch_algo[c] < 0:
                dst = ch_alt[j, h]
            else:
                dst = choose_backend(x, c, ch_algo, ch_ptr, ch_seq, conn, ewma, u_tie, u_a, u_b)
            if pins.shape[1] and pinned < 0 and dst >= 0 and pins[c, ch_slot[j, h]] != NOT_STICKY:
                pins[c, ch_slot[j, h]] = dst
            if dst >= 0:
                dsvc = chosen_service(dst, ch_u[j, h], ch_f[j, h], mean_r, mean_w, det, nm_cost)
        if j < n:
            bs, bw = c_st[j], worker[j]
        else:
            bs, bw = e_bst[j - n], e_bw[j - n]
        r = d   # when it leaves the network (refused, nowhere to go, or its station is down: at once)
        onward = False
        if dst >= 0 and tie_st[dst]:
            if d == last_d[dst]:
                return TIE
            last_d[dst] = d
        state = DOWN
        if dst >= 0 and up[dst]:
            state, t0, w = admit_at(dst, d_ns, d, dsvc, False, free, workers[dst], ring, ring_off, ring_len, count,
                                    limit, timeout_ns, rate)
        if aware and dst >= 0 and up[dst] and (state == ADMITTED or state == GIVES_UP):   # in progress there
            conn[dst] += 1
            if state == ADMITTED:
                n_pres = presence_push(hf, hs, hr, n_pres, (t0 + dsvc) / NS, dst, (t0 + dsvc) / NS - d)
            else:
                n_pres = presence_push(hf, hs, hr, n_pres, d + timeout_s[dst], dst, -1.0)
        worst, rmax = 0, -np.inf
        if px_n[j, h] > 0:   # a cross-shard query: its parts at the other shards (even with no copy of its own)
            worst, rmax = admit_parts(j, h, d, d_ns, px_first, px_n, px_st, px_svc, tie_st, last_d, free, workers,
                                      ring, ring_off, ring_len, count, limit, timeout_ns, timeout_s, rate, up)
            if worst < 0:
                return TIE
        if dst >= 0 and up[dst]:
            if state == ADMITTED:   # a write ships its apply jobs when it ends (Replication._replication)
                own = (t0 + dsvc) / NS
                for q in range(ja_first[j, h], ja_first[j, h] + ja_n[j, h]):
                    if own + e_delay[q - n] < t1:   # another primary's: after the lag
                        n_heap = _heap_push(ht, hk, hi, n_heap, own + e_delay[q - n], e_key[q - n], q * depth)
            if state == ADMITTED and worst == 0:
                r = max((t0 + dsvc) / NS, rmax)   # a cross-shard query answers with its slowest part
                if h + 1 < depth and jp[j, h + 1] != END:   # then on to the next station
                    if r < t1:
                        n_heap = _heap_push(ht, hk, hi, n_heap, r, key, x + 1)
                        onward = True
                    else:
                        r = np.inf   # there after t1 (a failure at t1 may lose it there)
            elif state == GIVES_UP and worst == 0:
                r = max(d + timeout_s[dst], rmax)
        if bs >= 0:
            if onward:   # its release is no sooner than its next arrival (this keeps B's bounds above the heap's top)
                unk[bs, bw] = r
            elif r < t1:
                free[bs, bw] = r
                unk[bs, bw] = np.nan
                if j < n:
                    c_rel[j] = r
                else:
                    e_rel[j - n] = r
            else:
                unk[bs, bw] = t1
            if head[bs] >= 0 and head[bs] < gend[bs]:
                dirty[n_dirty] = bs
                n_dirty += 1
    return decided
