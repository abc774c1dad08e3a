"""The event window's choices at balancers downstream of blocking servers (choice_hops.py),
as helpers of blocking_events.py's kernel.

Round robin gives the next backend of its sequence. The load-aware algorithms choose as
``least_choice.choose_and_admit`` does for the engine (exact_balance.py): with the
requests in progress at each candidate at that instant (arrived there, not finished:
waiting, served, or waiting to give up; health checks and refused requests do not
count) and, for least response time, each backend's EWMA of the responses completed by
then, in the same order (end, station, response time).
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import NS
from .compiled import helper


@helper
def round_robin_next(c, ch_ptr, ch_seq, ch_rr):
    """The next backend station of round-robin balancer ``c`` (``ch_seq[ch_ptr[c]:ch_ptr[c + 1]]``
    is its sequence, ``ch_rr[c]`` its counter, advanced)."""
    a = ch_ptr[c]
    s = ch_seq[a + ch_rr[c] % (ch_ptr[c + 1] - a)]
    ch_rr[c] += 1
    return s


@helper
def chosen_service(s, u, f, mean_r, mean_w, det, nm_cost):
    """The service (ns) at station ``s`` of a request with exponential draw ``u`` and flags
    ``f`` (1: a write, 2: a 304), as ``Stations._service_ns`` computes it."""
    mean = mean_w[s] if f & 1 else mean_r[s]
    x = mean if det[s] else u * mean
    if f & 2:
        x = x * nm_cost[s]
    return max(np.int64(np.rint(x * NS)), np.int64(0))
