"""Which requests still undecided at blocking servers were refused at their arrival
(compiled: simulation/compiled.py; blocking_rooms.py uses it).

A request is refused when ``queue_limit`` requests admitted before it at its station
are still waiting at its arrival (stations.py). At a station whose waiting room is
counted exactly (0 < ``queue_limit`` <= ``RING_CAP``: a ring of the times the last
``queue_limit`` admitted requests leave it), that depends only on when those leave, not
on when workers are free. At the end of a window every request still undecided at a
blocking server leaves the room after the window (it starts after it, or gives up
later still): so replaying them in arrival order, each admitted one keeping its place
for ever, decides every refusal among those that arrived before the window's end.
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import NEVER_NS, NS, QUEUE_FULL, decide_one
from .compiled import kernel


def _sample() -> tuple:
    i64 = np.int64
    return (np.array([0, 0, 1], dtype=i64), np.array([0.1, 0.2, 0.3]), np.full(8, -np.inf),
            np.array([0, 4], dtype=i64), np.array([4, 4], dtype=i64), np.zeros(2, dtype=i64),
            np.array([4, 4], dtype=i64), np.full(2, 10**9, dtype=i64), np.ones(2), np.zeros(3, dtype=np.bool_))


@kernel(sample=_sample)
def room_refusals(st, arr, ring, ring_off, ring_len, count, limit, timeout_ns, rate, refused):
    """The undecided requests at blocking servers, sorted by station, arrival and key
    (``st``, ``arr`` in s): ``refused[i]`` whether request i was refused at its arrival.
    ``ring`` and ``count`` are copies of the stations' (they change); every station in
    ``st`` must count its room exactly (see the module docstring). Returns how many."""
    n_ring = len(ring)
    n = 0
    for i in range(len(st)):
        s = st[i]
        a = np.int64(np.rint(arr[i] * NS))
        state, _, slot = decide_one(s, a, arr[i], np.int64(NEVER_NS), ring, ring_off, ring_len, count, limit,
                                    timeout_ns, rate)
        refused[i] = state == QUEUE_FULL
        if refused[i]:
            n += 1
        else:   # it keeps its place until after the window
            if ring_len[s] > 0 and slot < n_ring:
                ring[slot] = np.inf
            count[s] += 1
    return n
