"""A window of blocking servers behind load-aware balancers, event by event (compiled).

Least connections and power of two choose, for each request, the backend with the
fewest requests in progress *at that instant* (HAProxy's ``leastconn``, Envoy's P2C).
In front of blocking servers B a request is in progress until it leaves the network,
which the stations downstream decide later; so here the window is played out as a
discrete-event simulation in time order, in which every count is known when it is
needed: each balancer's choice, B's FIFO queues and the journeys downstream (the
stations and services each request crosses after B, drawn in advance as for
blocking_events.py).

B's stations are FIFO with ``workers`` workers: a request that finds a worker free
starts at once (the one free the longest, as ``admit_at``); else it waits if fewer
than ``queue_limit`` wait (0: no waiting room), or is refused at once (queue full);
a waiting request gives up at its patience (arrival + ``timeout_s``); a freed worker
takes the first waiting request. A user request holds its worker until it leaves the
network (its journey's end, or a refusal or give-up downstream); a health check, for
its own cost only. Downstream stations admit in time order with ``admit_at``, as
everywhere.

Events at one instant: give-ups, then departures and freed workers, then arrivals
downstream, then arrivals at B (a request leaving at t is not counted by a choice at
t; a worker freed at t serves an arrival at t), each kind in the order of request keys.
Every event is handled once and adds at most a bounded number of later ones (a
request's journey has at most ``depth`` stations), so the loop ends (by construction).
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import ADMITTED, DOWN, GIVES_UP, NS, QUEUE_FULL, admit_at
from .blocking_events import END, TIE, UNDECIDED, admit_parts
from .compiled import kernel
from .balanced_steps import (NONE2, P_DOWN, P_EWMA, P_FREE, P_GIVE_UP, P_LEAVE, end_journey, enqueue, pop, push,
                             start_second)
from .least_choice import EWMA_ALPHA, choose_backend

NO_BACKEND = 4      # the balancer had no backend to offer (no_healthy_backend)
ALGO_LC, ALGO_LRT, ALGO_P2C = 1, 2, 3   # least_choice.ALGO_CODE


def _sample() -> tuple:
    i64, u64 = np.int64, np.uint64
    n, n_st, c = 3, 3, 2
    return (np.array([0.1, 0.2, 0.3]), np.arange(n, dtype=u64), np.array([-1, -1, 1], dtype=i64),
            np.zeros(n, dtype=i64), np.full((n, 1), 10**6, dtype=i64), np.ones(n, dtype=np.bool_),
            np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_), np.full(n, 0.5), np.full(n, 0.25),
            np.full(n, 0.75), np.array([ALGO_LC], dtype=i64), np.array([0, 2], dtype=i64),
            np.array([0, 1], dtype=i64), np.zeros(n_st, dtype=i64), np.zeros(n_st, dtype=i64),
            np.full(n_st, 0.01), np.full(n_st, -np.inf), np.full(n_st, -np.inf), np.zeros(0),
            np.zeros(0, dtype=i64), np.zeros(0),
            np.array([0.05]), np.array([7], dtype=u64), np.array([0], dtype=i64), np.array([0], dtype=i64),
            np.full((n + 1, 1), 2, dtype=i64), np.full((n + 1, 1), 5 * 10**5, dtype=i64),
            np.full((n + 1, 1), -1, dtype=i64), np.zeros((n + 1, 1), dtype=i64), np.zeros(1),
            np.zeros((n + 1, 1), dtype=i64), np.zeros((n + 1, 1), dtype=i64), np.zeros(0, dtype=i64),
            np.zeros(0, dtype=i64), np.zeros(n_st, dtype=np.bool_),
            np.array([0.5]), np.array([0], dtype=i64),
            np.zeros((n_st, c)), np.full(n_st, c, dtype=i64), np.full(12, -np.inf), np.array([0, 4, 8], dtype=i64),
            np.full(n_st, 4, dtype=i64), np.zeros(n_st, dtype=i64), np.full(n_st, 4, dtype=i64),
            np.full(n_st, 10**9, dtype=i64), np.ones(n_st), np.full(n_st, 100.0), np.ones(n_st, dtype=np.bool_),
            np.ones(n_st, dtype=np.bool_), np.full(n_st, -1, dtype=i64), np.full(1, -1, dtype=i64),
            np.full((1, 1), -1, dtype=i64), np.full((1, 1), -1, dtype=i64),
            np.full(n_st, -1, dtype=i64), np.zeros((n, 1), dtype=i64), np.ones((n, 1), dtype=np.bool_), 1.0,
            np.zeros(n, dtype=np.int8), np.zeros(n, dtype=i64), np.zeros(n, dtype=i64), np.zeros(n, dtype=i64),
            np.zeros(n), np.zeros(1),
            np.zeros((n + 1, 1), dtype=i64), np.zeros((n + 1, 1), dtype=i64), np.zeros((n + 1, 1), dtype=np.int8),
            np.zeros((n + 1, 1), dtype=i64), np.zeros((n + 1, 1), dtype=i64), np.zeros((n + 1, 1)),
            np.zeros((n + 1, 1)))


@kernel(sample=_sample)
def balanced_events(c_a, c_key, c_st, c_bal, c_svc, c_held, c_down, c_queued, u_tie, u_a, u_b,
                    algo, cand_ptr, cand_st, grp, pres, ewma, upto, last, w_t, w_st, w_rt,
                    e_t, e_key, e_bst, e_bw, jp, js, ja_first, ja_n, e_delay, px_first, px_n, px_st, px_svc, tie_st,
                    l_t, l_st,
                    free, workers, ring, ring_off, ring_len, count, limit, timeout_ns, timeout_s, rate, up, is_b,
                    tier2, e_q2, e_bst2, e_bw2, jgrp, alt_row, alt_down,
                    t1,
                    status, start, worker, target, c_rel, e_rel,
                    j_st2, j_w2, j_status2, j_start2, j_hop2, j_a2, j_rel2):
    """Play out a window (see the module docstring). Requests at B, ``c_*``: arrival (s),
    key, station (-1: balancer ``c_bal`` chooses; -3 - k: where request k went, a sticky
    user's first request of the window), service in ns per service group
    (column ``grp[station]``), ``c_held`` (a user request: holds its worker, counts as
    a connection), ``c_down`` (goes on downstream once served at B), ``c_queued`` (waiting
    at its station since an earlier window: the queues start with them, in this order).
    The others are in arrival order (time, then key). ``u_*``: each request's draws for
    the choice. ``algo``, ``cand_ptr``/``cand_st``: each balancer's algorithm and
    candidates. ``pres``: user requests in progress at each station (updated). Least
    response time's ``ewma`` per station (updated) takes each user request's response time
    at its B station when its service there ends, in time order, unless it ended by
    ``upto`` (counted already); ``last``: the latest end taken per station (written; empty:
    no balancer keeps an EWMA).
    ``w_*``: such ends at B of requests admitted before (time, station, response time).

    Journeys: rows of ``jp``/``js``/``ja_*``/``e_delay``/``px_*`` as in blocking_events.blocking_events; the
    requests already on their way reach their first station at ``e_t`` (inf: apply jobs),
    holding worker ``e_bw`` of B station ``e_bst`` (-1: none). ``l_t``/``l_st``: releases
    already known (a user leaves B station ``l_st`` then; ``free`` has its worker's time).
    ``free``, ``ring``, ``count``: copies of the stations' arrays (updated); ``is_b``: B's
    stations.

    Tiers of blocking servers downstream (``tier2``: per station, its tier g, else -1;
    their stations hold their worker until the journey ends too) take their arrivals
    from the journeys, with the same FIFO rules. A journey already on its way may hold a
    worker at tier g (``e_bst2[., g]``, ``e_bw2[., g]``) or wait in a queue (``e_q2``: the
    tier, else -1; since ``e_t``, its row starting there, in the queue's order). Per
    journey row and tier (columns g): ``j_st2``/``j_w2`` its station and worker there,
    ``j_status2`` (-2: none), ``j_start2`` (ns), ``j_hop2`` (its hop there), ``j_a2``
    (its arrival there) and ``j_rel2`` (the release, inf if not before ``t1``).

    Backends whose journeys differ (other calls, or sessions in the database): ``jgrp`` is
    each station's journey group at B's level (servers beside B included; -1 elsewhere).
    A request that starts at a station of group g takes the journey of row
    ``alt_row[i, g]`` (its own row, or one drawn for that group: copied into its own; -1:
    none) and goes on downstream if ``alt_down[i, g]``.

    Writes per request ``status`` (ADMITTED, QUEUE_FULL, DOWN, GIVES_UP, NO_BACKEND, or
    UNDECIDED: still waiting at ``t1``), ``start`` (ns), ``worker``, ``target`` (its
    station) and ``c_rel`` (when its worker is released, inf if not before ``t1``);
    ``e_rel`` likewise. Returns how many requests were decided, or TIE (two arrivals at
    one instant at a replicated database: the engine's order there is not this one)."""
    n = len(c_a)
    ne = len(e_t)
    n_st = free.shape[0]
    depth = jp.shape[1]
    # pending events at once: per request its give-up and one step (a journey's or a release's
    # two), per apply job one, per worker of B its release, the releases known
    cap = 7 * (n + ne) + len(l_t) + len(w_t) + n_st * free.shape[1] + 16
    ht = np.empty(cap)
    hp = np.empty(cap, dtype=np.int64)
    hk = np.empty(cap, dtype=np.uint64)
    hx = np.empty(cap, dtype=np.int64)
    nh = 0
    # FIFO queues at B: a linked list per station
    q_head = np.full(n_st, -1, dtype=np.int64)
    q_tail = np.full(n_st, -1, dtype=np.int64)
    q_next = np.full(n, -1, dtype=np.int64)
    waiting = np.zeros(n_st, dtype=np.int64)
    last_d = np.full(n_st, -np.inf)
    for i in range(n):
        status[i] = UNDECIDED
        worker[i] = -1
        c_rel[i] = np.inf
        target[i] = c_st[i]
    q2_next = np.full(n + ne, -1, dtype=np.int64)
    n_tiers = j_st2.shape[1]
    for j in range(n + ne):
        for g in range(n_tiers):
            j_st2[j, g] = -1
            j_w2[j, g] = -1
            j_status2[j, g] = NONE2
            j_rel2[j, g] = np.inf
            j_hop2[j, g] = -1
    for j in range(ne):
        e_rel[j] = np.inf
        for g in range(n_tiers):
            if e_bst2[j, g] >= 0:   # holds a worker of that tier since before
                j_st2[n + j, g] = e_bst2[j, g]
                j_w2[n + j, g] = e_bw2[j, g]
                j_status2[n + j, g] = ADMITTED
        if e_q2[j] >= 0:     # waits in the queue of its station of tier e_q2 (in this order)
            g = e_q2[j]
            s2 = jp[n + j, 0]
            j_st2[n + j, g] = s2
            j_status2[n + j, g] = UNDECIDED
            j_hop2[n + j, g] = 0
            j_a2[n + j, g] = e_t[j]
            enqueue(q_head, q_tail, q2_next, s2, n + j)
            waiting[s2] += 1
            nh = push(ht, hp, hk, hx, nh, e_t[j] + timeout_s[s2], P_GIVE_UP, e_key[j], -1 - ((n + j) * n_tiers + g))
        elif e_t[j] < np.inf:
            nh = push(ht, hp, hk, hx, nh, e_t[j], P_DOWN, e_key[j], (n + j) * depth)
    for k in range(len(l_t)):
        if l_t[k] < t1:
            nh = push(ht, hp, hk, hx, nh, l_t[k], P_LEAVE, np.uint64(0), l_st[k])
    for s in range(n_st):
        if is_b[s] or tier2[s] >= 0 or jgrp[s] >= 0:   # (jgrp: B's level, servers beside B too)
            for w in range(workers[s]):
                f = free[s, w]
                if f > -np.inf and f < t1:
                    nh = push(ht, hp, hk, hx, nh, f, P_FREE, np.uint64(w), s * free.shape[1] + w)
    for k in range(len(w_t)):
        if w_t[k] < t1:
            nh = push(ht, hp, hk, hx, nh, w_t[k], P_EWMA, np.uint64(k), -1 - k)
    first = 0
    while first < n and c_queued[first]:   # the queues carried over, with their patience
        i = first
        s = c_st[i]
        enqueue(q_head, q_tail, q_next, s, i)
        waiting[s] += 1
        nh = push(ht, hp, hk, hx, nh, c_a[i] + timeout_s[s], P_GIVE_UP, c_key[i], i)
        first += 1
    nxt = first
    decided = 0
    while True:
        take_arrival = nxt < n and (nh == 0 or c_a[nxt] < ht[0])
        if take_arrival:
            i = nxt
            nxt += 1
            a = c_a[i]
            a_ns = np.int64(np.rint(a * NS))
            s = c_st[i]
            if s < 0:
                if s <= -3:   # a sticky user's later request: where its first one of the window went
                    s = target[-3 - s]
                else:
                    s = choose_backend(i, c_bal[i], algo, cand_ptr, cand_st, pres, ewma, u_tie, u_a, u_b)
                target[i] = s
                if s < 0:
                    status[i] = NO_BACKEND
                    start[i] = a_ns
                    decided += 1
                    continue
            if not up[s]:
                status[i] = DOWN
                start[i] = a_ns
                decided += 1
                continue
            # a free worker: the first with the earliest free time (admit_at's choice)
            w = 0
            fw = free[s, 0]
            for q in range(1, workers[s]):
                if free[s, q] < fw:
                    fw = free[s, q]
                    w = q
            if fw == np.inf or np.int64(np.rint(fw * NS)) > a_ns:
                if waiting[s] >= limit[s]:   # the waiting room is full (or there is none)
                    status[i] = QUEUE_FULL
                    start[i] = a_ns
                    decided += 1
                    continue
                enqueue(q_head, q_tail, q_next, s, i)
                waiting[s] += 1
                if c_held[i]:
                    pres[s] += 1
                nh = push(ht, hp, hk, hx, nh, a + timeout_s[s], P_GIVE_UP, c_key[i], i)
                continue
            if c_held[i]:
                pres[s] += 1
            x = i
            t0 = a_ns
        else:
            if nh == 0 or ht[0] >= t1:
                break
            d = ht[0]
            p = hp[0]
            key = hk[0]
            x = hx[0]
            nh = pop(ht, hp, hk, hx, nh)
            if p == P_LEAVE:
                pres[x] -= 1
                continue
            if p == P_EWMA:   # a response at B ends: into its station's recent response time
                if x >= 0:
                    s, rt = target[x], d - c_a[x]
                else:
                    s, rt = w_st[-1 - x], w_rt[-1 - x]
                if d > upto[s]:
                    ewma[s] += EWMA_ALPHA * (rt - ewma[s])
                    if d > last[s]:
                        last[s] = d
                continue
            if p == P_GIVE_UP and x < 0:   # a journey waiting at a tier downstream
                jr = (-1 - x) // n_tiers
                g = (-1 - x) - jr * n_tiers
                if j_status2[jr, g] == UNDECIDED:
                    s = j_st2[jr, g]
                    j_status2[jr, g] = GIVES_UP
                    waiting[s] -= 1
                    if ring_len[s] > 0:
                        ring[ring_off[s] + count[s] % ring_len[s]] = j_a2[jr, g] + timeout_s[s]
                    count[s] += 1
                    nh = end_journey(jr, d, n, target, worker, e_bst, e_bw, j_st2, j_w2, j_status2, j_rel2, free, c_rel,
                                     e_rel, ht, hp, hk, hx, nh, t1)
                continue
            if p == P_GIVE_UP:
                if status[x] == UNDECIDED:   # still waiting: it gives up (a freed worker skips it)
                    s = target[x]
                    status[x] = GIVES_UP
                    start[x] = np.int64(np.rint(c_a[x] * NS))
                    waiting[s] -= 1
                    if c_held[x]:
                        pres[s] -= 1
                    if ring_len[s] > 0:
                        ring[ring_off[s] + count[s] % ring_len[s]] = c_a[x] + timeout_s[s]
                    count[s] += 1
                    decided += 1
                continue
            if p == P_FREE:
                s = x // free.shape[1]
                w = x - s * free.shape[1]
                if free[s, w] != d:
                    continue   # taken since
                if tier2[s] >= 0:   # the first journey waiting there starts
                    g = tier2[s]
                    jr = q_head[s]
                    while jr >= 0 and j_status2[jr, g] != UNDECIDED:
                        jr = q2_next[jr]
                    q_head[s] = jr if jr < 0 else q2_next[jr]
                    if q_head[s] < 0:
                        q_tail[s] = -1
                    if jr >= 0:
                        waiting[s] -= 1
                        nh = start_second(jr, g, s, w, np.int64(np.rint(d * NS)), n, depth, c_key, e_key, jp, js,
                                          j_st2, j_w2, j_status2, j_start2, j_hop2, j_rel2, target, worker, e_bst,
                                          e_bw, free, ring, ring_off, ring_len, count, c_rel, e_rel, ht, hp, hk, hx,
                                          nh, t1)
                    continue
                i = q_head[s]
                while i >= 0 and status[i] != UNDECIDED:
                    i = q_next[i]
                q_head[s] = i if i < 0 else q_next[i]
                if q_head[s] < 0:
                    q_tail[s] = -1
                if i < 0:
                    continue
                waiting[s] -= 1
                x = i
                t0 = np.int64(np.rint(d * NS))
            else:   # P_DOWN: journey x // depth arrives at its (x % depth)-th station downstream
                j = x // depth
                h = x - j * depth
                dst, dsvc = jp[j, h], js[j, h]
                r = d
                onward = False
                if dst >= 0 and tier2[dst] >= 0:   # at a blocking server of a tier downstream
                    g = tier2[dst]
                    d_ns = np.int64(np.rint(d * NS))
                    j_st2[j, g] = dst
                    j_hop2[j, g] = h
                    j_a2[j, g] = d
                    if not up[dst]:
                        j_status2[j, g] = DOWN
                    else:
                        w = 0
                        fw = free[dst, 0]
                        for q in range(1, workers[dst]):
                            if free[dst, q] < fw:
                                fw = free[dst, q]
                                w = q
                        if fw != np.inf and np.int64(np.rint(fw * NS)) <= d_ns:
                            nh = start_second(j, g, dst, w, d_ns, n, depth, c_key, e_key, jp, js, j_st2, j_w2,
                                              j_status2,
                                              j_start2, j_hop2, j_rel2, target, worker, e_bst, e_bw, free, ring,
                                              ring_off, ring_len, count, c_rel, e_rel, ht, hp, hk, hx, nh, t1)
                            continue
                        if waiting[dst] < limit[dst]:   # it waits (in order), with its patience
                            j_status2[j, g] = UNDECIDED
                            enqueue(q_head, q_tail, q2_next, dst, j)
                            waiting[dst] += 1
                            nh = push(ht, hp, hk, hx, nh, d + timeout_s[dst], P_GIVE_UP, key, -1 - (j * n_tiers + g))
                            continue
                        j_status2[j, g] = QUEUE_FULL
                    nh = end_journey(j, d, n, target, worker, e_bst, e_bw, j_st2, j_w2, j_status2, j_rel2, free, c_rel,
                                     e_rel, ht, hp, hk, hx, nh, t1)
                    continue
                if dst >= 0 and tie_st[dst]:
                    if d == last_d[dst]:
                        return TIE
                    last_d[dst] = d
                d_ns = np.int64(np.rint(d * NS))
                state = DOWN
                if dst >= 0 and up[dst]:
                    state, u0, uw = admit_at(dst, d_ns, d, dsvc, False, free, workers[dst], ring, ring_off,
                                             ring_len, count, limit, timeout_ns, rate)
                worst, rmax = 0, -np.inf
                if px_n[j, h] > 0:   # a cross-shard query: its parts at the other shards
                    worst, rmax = admit_parts(j, h, d, d_ns, px_first, px_n, px_st, px_svc, tie_st, last_d, free,
                                              workers, ring, ring_off, ring_len, count, limit, timeout_ns, timeout_s,
                                              rate, up)
                    if worst < 0:
                        return TIE
                if dst >= 0 and up[dst]:
                    if state == ADMITTED:   # a write ships its apply jobs when it ends
                        own = (u0 + dsvc) / NS
                        for q in range(ja_first[j, h], ja_first[j, h] + ja_n[j, h]):
                            if own + e_delay[q - n] < t1:   # another primary's: after the lag
                                nh = push(ht, hp, hk, hx, nh, own + e_delay[q - n], P_DOWN, e_key[q - n], q * depth)
                    if state == ADMITTED and worst == 0:
                        r = max((u0 + dsvc) / NS, rmax)   # a cross-shard query answers with its slowest part
                        if h + 1 < depth and jp[j, h + 1] != END:
                            if r < t1:
                                nh = push(ht, hp, hk, hx, nh, r, P_DOWN, key, x + 1)
                            onward = True
                    elif state == GIVES_UP and worst == 0:
                        r = max(d + timeout_s[dst], rmax)
                if not onward:   # it leaves the network: the workers it holds are free
                    nh = end_journey(j, r, n, target, worker, e_bst, e_bw, j_st2, j_w2, j_status2, j_rel2, free, c_rel,
                                     e_rel, ht, hp, hk, hx, nh, t1)
                continue
        # request x starts at B station target[x] at t0 (ns) on worker w (a free one, or the one freed)
        s = target[x]
        if jgrp[s] >= 0:   # the journey of the group the balancer chose
            r = alt_row[x, jgrp[s]]
            c_down[x] = alt_down[x, jgrp[s]]
            if r >= 0 and r != x:
                for h in range(depth):
                    jp[x, h] = jp[r, h]
                    js[x, h] = js[r, h]
                    ja_first[x, h] = ja_first[r, h]
                    ja_n[x, h] = ja_n[r, h]
                    px_first[x, h] = px_first[r, h]
                    px_n[x, h] = px_n[r, h]
        status[x] = ADMITTED
        start[x] = t0
        hold = c_held[x] and is_b[s]   # a server beside B that does not block holds nothing
        if hold:   # the worker it holds (a health check's is free at the end of its own cost)
            worker[x] = w
        decided += 1
        if ring_len[s] > 0:
            ring[ring_off[s] + count[s] % ring_len[s]] = t0 / NS
        count[s] += 1
        svc = c_svc[x, grp[s]]
        fin = (t0 + svc) / NS
        if c_held[x] and fin < t1 and len(last) > 0:   # least response time keeps its EWMA
            nh = push(ht, hp, hk, hx, nh, fin, P_EWMA, c_key[x], x)
        if not hold:   # a health check, or a request at a server that does not block: its own cost
            free[s, w] = fin
            if fin < t1:
                nh = push(ht, hp, hk, hx, nh, fin, P_FREE, np.uint64(w), s * free.shape[1] + w)
                if c_held[x]:   # a user request: in progress there until then, then on downstream
                    nh = push(ht, hp, hk, hx, nh, fin, P_LEAVE, np.uint64(0), s)
                    if c_down[x]:
                        nh = push(ht, hp, hk, hx, nh, fin, P_DOWN, c_key[x], x * depth)
        elif fin >= t1:     # in its own service until after t1: released later
            free[s, w] = np.inf
        elif c_down[x]:
            free[s, w] = np.inf
            nh = push(ht, hp, hk, hx, nh, fin, P_DOWN, c_key[x], x * depth)
        else:               # answered at B: free at the end of its service
            free[s, w] = fin
            c_rel[x] = fin
            nh = push(ht, hp, hk, hx, nh, fin, P_FREE, np.uint64(w), s * free.shape[1] + w)
            nh = push(ht, hp, hk, hx, nh, fin, P_LEAVE, np.uint64(0), s)
    return decided
