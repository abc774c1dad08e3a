"""Load-balancing algorithms, vectorised over the requests of a window.

Each algorithm picks, for every request leaving the balancer, one backend
among those its health checks believe to be up:

- ``random``: uniform choice (each backend then sees a thinned Poisson stream).
- ``round_robin``: the k-th request goes to backend k mod n.
- ``weighted_round_robin``: NGINX's smooth weighted round robin, weights ∝ capacity.
- ``least_connections``: fewest requests in the backend (queued + in service),
  counted when each request arrives (exact_balance.py; ties random).
- ``least_response_time``: lowest (connections + 1) × recent response time.
- ``power_of_two``: two random backends, the one with fewer connections.
- ``consistent_hash``: the user's id on a ring with 160 points per backend
  (ketama); only a failed backend's users move.

With sticky affinity a cookie pins each user to the backend that served them
first; when that backend is taken out, the user is re-dispatched (HAProxy's
redispatch) and pinned again. The cookie belongs to the user (HAProxy's
``cookie SRV insert``, ALB's ``AWSALB``): it names the backend replica, and every
sticky balancer in front of the same backends reads and writes the same cookie,
so a failover to the passive balancer of a pair keeps the users' pins.
"""
from __future__ import annotations

import zlib

import numpy as np

from .compiler import Balancer
from .health import HealthChecks
from .randomness import PICK, PICK2, TIE, mix64, uniform
from .settle_kernels import random_pick

RING_POINTS = 160


WRR_PERIOD = 1000   # NGINX's exact sequence up to this period (longer: the same order by virtual time)


def smooth_wrr_sequence(weights: np.ndarray, limit: int = WRR_PERIOD) -> np.ndarray:
    """One period of NGINX's smooth weighted round robin, as backend positions.

    The integer weights are halved until their sum fits in ``max(limit, 4 n)``: a
    sum of n ones always fits, so the reduction ends (in at most ~40 halvings).
    Periods up to ``limit`` are NGINX's own loop; longer ones (more than ``limit``
    backends) are the same smooth interleaving computed at once: the j-th turn of
    a backend of weight w falls at virtual time (j + ½) / w (stride scheduling)."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    ratio = np.minimum(w / w.min(), 1e9)            # capacities differ by at most 10¹² in the format
    ints = np.maximum(np.round(ratio * 10).astype(np.int64), 1)
    ints //= max(int(np.gcd.reduce(ints)), 1)
    bound = max(int(limit), 4 * n)
    while ints.sum() > bound:                       # ends: all ones sum to n ≤ bound
        ints = np.maximum(ints // 2, 1)
    total = int(ints.sum())
    if total > limit:
        owner = np.repeat(np.arange(n, dtype=np.int64), ints)
        turn = np.arange(total) - np.repeat(np.cumsum(ints) - ints, ints)
        return owner[np.lexsort((owner, (turn + 0.5) / ints[owner]))]
    current = np.zeros(n, dtype=np.int64)
    seq = np.empty(total, dtype=np.int64)
    for k in range(total):  # at most ``limit`` turns, once per change of the healthy set
        current += ints
        best = int(np.argmax(current))
        seq[k] = best
        current[best] -= total
    return seq


class BalancerState:
    """The mutable side of one load balancer: health, counters, pins, rings."""

    def __init__(self, bal: Balancer, node_keys: list[str], total_users: int, phase: float) -> None:
        """``phase`` in [0, 1): where in its interval the balancer's first health check falls."""
        self.bal = bal
        n = len(bal.backends)
        self.health = HealthChecks(n, bal.interval_s, bal.fall, bal.rise, phase * bal.interval_s)
        self.rr = 0
        # the users' cookies: the backend *station* each user is pinned to (-1: none);
        # shared with the other sticky balancers in front of the same backends (share_cookies)
        self.cookie = np.full(total_users, -1, dtype=np.int32) if bal.sticky else None
        n_st = int(bal.backends.max()) + 1 if n else 0
        self._pos = np.full(n_st + 1, -1, dtype=np.int64)   # backend station -> position; the last entry: none
        self._pos[bal.backends] = np.arange(n)
        self.keys = np.array([zlib.crc32(k.encode()) for k in node_keys], dtype=np.uint64)
        self._cache_key: bytes | None = None
        self._wrr: np.ndarray | None = None
        self._ring_points: np.ndarray | None = None
        self._ring_owner: np.ndarray | None = None

    def candidates(self, registered: np.ndarray | None = None) -> np.ndarray:
        ok = self.health.believed_up if registered is None else self.health.believed_up & registered
        return np.nonzero(ok)[0]

    def _refresh(self, cand: np.ndarray) -> None:
        key = cand.tobytes()
        if key == self._cache_key:
            return
        self._cache_key = key
        algo = self.bal.algorithm   # only what the algorithm reads (a ring of 1,000 backends takes ~10 ms)
        wrr = len(cand) and algo == "weighted_round_robin"
        self._wrr = smooth_wrr_sequence(self.bal.weights[cand]) if wrr else None
        if len(cand) and algo == "consistent_hash":
            base = self.keys[cand][:, None] * np.uint64(1_000_003) + np.arange(RING_POINTS, dtype=np.uint64)[None, :]
            pts = mix64(base).ravel()
            owner = np.repeat(np.arange(len(cand)), RING_POINTS)
            order = np.argsort(pts, kind="stable")
            self._ring_points, self._ring_owner = pts[order], owner[order]

    def choose(self, users: np.ndarray, keys: np.ndarray, hops: np.ndarray, connections: np.ndarray,
               latency: np.ndarray, tick: int, registered: np.ndarray | None = None) -> np.ndarray:
        """Backend positions (indices into ``bal.backends``) for requests in time
        order; -1 where no backend is healthy. ``connections``/``latency`` are per
        backend position (requests in the backend, recent response time)."""
        k = len(users)
        out = np.full(k, -1, dtype=np.int64)
        cand = self.candidates(registered)
        if k == 0 or len(cand) == 0:
            return out
        self._refresh(cand)
        if self.cookie is None:   # every request is dispatched
            return cand[self._pick(k, cand, users, keys, hops, connections, latency, tick)]
        need = np.ones(k, dtype=bool)
        if self.cookie is not None:
            named = self.cookie[users]
            p = self._pos[np.where((named >= 0) & (named < len(self._pos) - 1), named, len(self._pos) - 1)]
            valid = p >= 0
            valid[valid] = self.health.believed_up[p[valid]] & (True if registered is None else registered[p[valid]])
            out[valid] = p[valid]
            need = ~valid
        m = int(need.sum())
        if m and self.cookie is not None:
            # one choice per new user, even if they send several requests in this window
            new_users, first, inverse = np.unique(users[need], return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")          # dispatch users in order of arrival
            picks = np.empty(len(new_users), dtype=np.int64)
            kn, hn = keys[need][first][order], hops[need][first][order]
            picks[order] = cand[self._pick(len(new_users), cand, new_users[order], kn, hn, connections, latency, tick)]
            out[need] = picks[inverse]
            self.cookie[new_users] = self.bal.backends[picks]
        elif m:
            out[need] = cand[self._pick(m, cand, users[need], keys[need], hops[need], connections, latency, tick)]
        return out

    def _pick(self, m: int, cand: np.ndarray, users: np.ndarray, keys: np.ndarray, hops: np.ndarray,
              conn: np.ndarray, lat: np.ndarray, tick: int) -> np.ndarray:
        """Positions within ``cand`` for ``m`` requests."""
        algo = self.bal.algorithm
        n = len(cand)
        if algo == "random":
            if random_pick.compiled and keys.dtype == np.uint64 and hops.dtype == np.int8:
                return random_pick(keys, hops, PICK, n)   # the same numbers in one pass
            return np.minimum((uniform(keys, hops, PICK) * n).astype(np.int64), n - 1)
        if algo == "round_robin":
            pos = (self.rr + np.arange(m)) % n
            self.rr = (self.rr + m) % n
            return pos
        if algo == "weighted_round_robin":
            seq = self._wrr
            pos = seq[(self.rr + np.arange(m)) % len(seq)]
            self.rr = (self.rr + m) % len(seq)
            return pos
        if algo == "consistent_hash":
            h = mix64(users.astype(np.uint64) ^ np.uint64(0x5DEECE66D))
            i = np.searchsorted(self._ring_points, h) % len(self._ring_points)
            return self._ring_owner[i]
        c = conn[cand].astype(float)
        if algo == "power_of_two":
            if n == 1:
                return np.zeros(m, dtype=np.int64)
            a = np.minimum((uniform(keys, hops, PICK) * n).astype(np.int64), n - 1)
            b = np.minimum((uniform(keys, hops, PICK2) * (n - 1)).astype(np.int64), n - 2)
            b += b >= a
            return _fill_two(c, a, b)
        if algo == "least_connections":
            return _fill_least(c, np.ones(n), uniform(keys, hops, TIE))
        if algo == "least_response_time":
            return _fill_least(c, np.maximum(lat[cand], 1e-6), uniform(keys, hops, TIE))
        raise AssertionError(algo)


def choose_shared(states: list[BalancerState], which: np.ndarray, users: np.ndarray, keys: np.ndarray,
                  hops: np.ndarray, registered: list[np.ndarray]) -> np.ndarray:
    """Blind sticky balancers that share their users' cookies (``states``; ``which``: each
    request's index among them; ``registered``: per balancer, its backends'), request by
    request in time order (the requests are): a request goes where its user's cookie says if
    its balancer believes that backend up, else its balancer chooses (its own algorithm and
    turn) and pins the user there, for the user's later requests at any of them. Returns
    backend stations (-1: no healthy backend)."""
    n = len(users)
    out = np.full(n, -1, dtype=np.int64)
    jar = states[0].cookie
    cands = [bs.candidates(reg) for bs, reg in zip(states, registered)]
    for bs, cand in zip(states, cands):
        if len(cand):
            bs._refresh(cand)
    ok = [np.sort(bs.bal.backends[cand]) for bs, cand in zip(states, cands)]
    if n and len(ok[0]) and all(np.array_equal(o, ok[0]) for o in ok):
        # they agree on the backends up: a user is dispatched at most once, by the balancer that
        # gets their first request without a valid cookie (each balancer's choices in time order)
        named = jar[users].astype(np.int64)
        need = ~np.isin(named, ok[0])
        out[~need] = named[~need]
        idx = np.flatnonzero(need)
        if len(idx):
            _, first = np.unique(users[idx], return_index=True)
            chooser = np.sort(idx[first])
            picked = np.empty(len(chooser), dtype=np.int64)
            for k, (bs, cand) in enumerate(zip(states, cands)):
                mine = which[chooser] == k
                if mine.any():
                    c = chooser[mine]
                    picked[mine] = bs.bal.backends[cand[bs._pick(len(c), cand, users[c], keys[c], hops[c],
                                                                 None, None, 0)]]
            jar[users[chooser]] = picked
            out[idx] = jar[users[idx]]
        return out
    # they disagree (one has not yet seen a backend fail or recover): one request at a time
    up = [set(o.tolist()) for o in ok]
    for i in range(n):
        k, u = int(which[i]), int(users[i])
        b = int(jar[u])
        if b in up[k]:
            out[i] = b
        elif len(cands[k]):
            bs, cand = states[k], cands[k]
            out[i] = jar[u] = bs.bal.backends[cand[bs._pick(1, cand, users[i:i + 1], keys[i:i + 1], hops[i:i + 1],
                                                            None, None, 0)[0]]]
    return out


def share_cookies(states: list[BalancerState]) -> list[BalancerState]:
    """Sticky balancers in front of the same backends read and write one cookie per user."""
    jar: dict[bytes, np.ndarray] = {}
    for bs in states:
        if bs.cookie is not None:
            bs.cookie = jar.setdefault(np.sort(bs.bal.backends).tobytes(), bs.cookie)
    return states


def carry_cookies(pairs: list[tuple[BalancerState, BalancerState]], station_map: np.ndarray) -> None:
    """After a live edit: the users keep their cookies, re-indexed to the new stations.
    ``pairs``: (before, after) of each balancer that still exists; each reads its own
    cookies (a jar two balancers share after the edit takes the first one's, then the
    other's for users the first had not pinned). A cookie naming a station that no
    longer exists, or that the balancer does not send to, is dropped."""
    for prev, bs in pairs:
        if prev.cookie is None or bs.cookie is None or len(prev.cookie) != len(bs.cookie):
            continue
        moved = np.where(prev.cookie >= 0, station_map[np.maximum(prev.cookie, 0)], -1)
        take = (bs.cookie < 0) & np.isin(moved, bs.bal.backends)
        bs.cookie[take] = moved[take]


def _fill_least(load: np.ndarray, cost: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Greedy, request by request: each goes to the backend with the lowest
    (load + 1) × cost, counting the requests already placed (ties: the uniform
    ``u`` of the request picks among the tied backends). Used by the slower
    tick-by-tick path only; exact_balance.py also counts the departures."""
    load = np.asarray(load, dtype=float).copy()
    out = np.empty(len(u), dtype=np.int64)
    for i, ui in enumerate(u.tolist()):   # one pass over the tick's requests (a handful)
        score = (load + 1.0) * cost
        tied = np.flatnonzero(score == score.min())
        pick = int(tied[min(int(ui * len(tied)), len(tied) - 1)])
        out[i] = pick
        load[pick] += 1.0
    return out


def _fill_two(load: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Power of two, request by request: each takes the fewer loaded of its two draws ``a``
    and ``b`` (ties: ``a``), counting the requests already placed, as the compiled pass
    does (least_choice.py). Used by the slower tick-by-tick path only. (Before 2026-12-01
    all the requests of a tick compared the counts at its start: a burst in one tick
    could all go to one backend.)"""
    load = np.asarray(load, dtype=float).copy()
    out = np.empty(len(a), dtype=np.int64)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):   # one pass over the tick's requests
        pick = x if load[x] <= load[y] else y
        out[i] = pick
        load[pick] += 1.0
    return out
