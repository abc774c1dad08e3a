"""The steps of balanced_events.py's discrete-event pass that are not the pass itself:
its heap of events (ordered by time, then kind, then key) and what happens when a journey
leaves the network or starts at a second-tier blocking server."""
from __future__ import annotations

import numpy as np

from .admission_kernel import ADMITTED, NS
from .blocking_events import END
from .compiled import helper

NONE2 = -2          # a journey that has not reached that tier of blocking servers downstream
P_GIVE_UP, P_LEAVE, P_FREE, P_DOWN, P_EWMA = 0, 1, 2, 3, 4   # event kinds, in their order at one instant


@helper
def push(ht, hp, hk, hx, n, t, p, key, x):
    """Push event ``x`` (kind ``p``) at time ``t`` (s) on the heap of ``n`` entries, ordered by
    time, kind, key; returns n + 1."""
    k = n
    while k > 0:
        q = (k - 1) // 2
        if ht[q] < t or (ht[q] == t and (hp[q] < p or (hp[q] == p and hk[q] <= key))):
            break
        ht[k] = ht[q]
        hp[k] = hp[q]
        hk[k] = hk[q]
        hx[k] = hx[q]
        k = q
    ht[k] = t
    hp[k] = p
    hk[k] = key
    hx[k] = x
    return n + 1


@helper
def pop(ht, hp, hk, hx, n):
    """Remove the top of the heap of ``n`` entries; returns n - 1."""
    n -= 1
    t = ht[n]
    p = hp[n]
    key = hk[n]
    x = hx[n]
    k = 0
    while True:
        c = 2 * k + 1
        if c >= n:
            break
        d = c + 1
        if d < n and (ht[d] < ht[c] or (ht[d] == ht[c] and (hp[d] < hp[c] or (hp[d] == hp[c] and hk[d] < hk[c])))):
            c = d
        if ht[c] > t or (ht[c] == t and (hp[c] > p or (hp[c] == p and hk[c] >= key))):
            break
        ht[k] = ht[c]
        hp[k] = hp[c]
        hk[k] = hk[c]
        hx[k] = hx[c]
        k = c
    if n > 0:
        ht[k] = t
        hp[k] = p
        hk[k] = key
        hx[k] = x
    return n


@helper
def enqueue(q_head, q_tail, q_next, s, i):
    """Add ``i`` at the end of station ``s``'s FIFO queue (a linked list: ``q_next``). A
    journey may wait at one tier, start there, then wait at the next: its old link goes."""
    q_next[i] = -1
    if q_tail[s] >= 0:
        q_next[q_tail[s]] = i
    else:
        q_head[s] = i
    q_tail[s] = i


@helper
def end_journey(j, r, n, target, worker, e_bst, e_bw, j_st2, j_w2, j_status2, j_rel2, free, c_rel, e_rel,
                ht, hp, hk, hx, nh, t1):
    """Journey ``j`` leaves the network at ``r``: the workers it holds (at B, and at the
    tiers of blocking servers downstream) are free then; returns the heap's size."""
    if r >= t1:
        return nh   # released after the window (a failure at t1 may free them sooner)
    if j < n:
        bs, bw = target[j], worker[j]
    else:
        bs, bw = e_bst[j - n], e_bw[j - n]
    if bs >= 0 and bw >= 0:
        free[bs, bw] = r
        if j < n:
            c_rel[j] = r
        else:
            e_rel[j - n] = r
        nh = push(ht, hp, hk, hx, nh, r, P_FREE, np.uint64(bw), bs * free.shape[1] + bw)
        nh = push(ht, hp, hk, hx, nh, r, P_LEAVE, np.uint64(0), bs)
    for g in range(j_st2.shape[1]):   # and every tier of blocking servers further on
        if j_status2[j, g] == ADMITTED and j_w2[j, g] >= 0:
            s2, w2 = j_st2[j, g], j_w2[j, g]
            free[s2, w2] = r
            j_rel2[j, g] = r
            nh = push(ht, hp, hk, hx, nh, r, P_FREE, np.uint64(w2), s2 * free.shape[1] + w2)
    return nh


@helper
def start_second(j, g, s, w, t0, n, depth, c_key, e_key, jp, js, j_st2, j_w2, j_status2, j_start2, j_hop2, j_rel2,
                 target, worker, e_bst, e_bw, free, ring, ring_off, ring_len, count, c_rel, e_rel, ht, hp, hk, hx,
                 nh, t1):
    """Journey ``j`` starts at station ``s`` of tier ``g`` of blocking servers downstream on
    worker ``w`` at ``t0`` (ns): it holds the worker until the journey ends; returns the
    heap's size."""
    h = j_hop2[j, g]
    key = c_key[j] if j < n else e_key[j - n]
    j_status2[j, g] = ADMITTED
    j_start2[j, g] = t0
    j_w2[j, g] = w
    if ring_len[s] > 0:
        ring[ring_off[s] + count[s] % ring_len[s]] = t0 / NS
    count[s] += 1
    free[s, w] = np.inf
    fin = (t0 + js[j, h]) / NS
    if fin < t1:
        if h + 1 < depth and jp[j, h + 1] != END:
            nh = push(ht, hp, hk, hx, nh, fin, P_DOWN, key, j * depth + h + 1)
        else:
            nh = end_journey(j, fin, n, target, worker, e_bst, e_bw, j_st2, j_w2, j_status2, j_rel2, free, c_rel,
                             e_rel, ht, hp, hk, hx, nh, t1)
    return nh
