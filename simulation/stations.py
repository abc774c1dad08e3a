"""Queueing stations: FIFO, ``c`` workers, a waiting room and a patience.

Admission is the Kiefer–Wolfowitz recursion in continuous time: a request
arriving at ``a`` is taken by the earliest free worker at
``start = max(free_w, a)`` and keeps it until ``start + service``. Because
the start and end of a FIFO request are fixed the moment it is admitted, a
batch of arrivals is processed in *rounds*: round ``j`` admits the ``j``-th
arrival of every station at once, so the Python loop runs over the deepest
per-station batch, never over requests or stations.

A request is rejected (queue full) when ``queue_limit`` admitted requests are
still waiting at its arrival; it gives up (timeout) when it would wait longer
than ``timeout_s``: it then stays in flight until ``a + timeout_s`` and fails.
"""
from __future__ import annotations

import numpy as np

from .compiler import CACHE, DATABASE, Network
from .flight import FLAG_DB_SESSION, FLAG_TIMEOUT, Batch

RING_CAP = 4096  # exact waiting-room accounting up to this many waiting requests per replica

ADMITTED, QUEUE_FULL, DOWN = 0, 1, 2


class Stations:
    """Mutable state of all stations of a compiled network."""

    def __init__(self, net: Network, now: float) -> None:
        self.net = net
        n, c = net.n_stations, max(net.max_workers, 1)
        self.up = np.ones(n, dtype=bool)
        self.free = np.full((n, c), np.inf)
        self.worker_mask = np.arange(c)[None, :] < net.st_workers[:, None]
        self.free[self.worker_mask] = now
        limit = net.st_queue_limit
        self.ring_len = np.minimum(limit, RING_CAP).astype(np.int64)
        self.ring_off = np.concatenate([[0], np.cumsum(self.ring_len)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        self.ring = np.full(int(self.ring_len.sum()), -np.inf)
        self.count = np.zeros(n, dtype=np.int64)
        self.is_store = (net.st_kind == DATABASE) | (net.st_kind == CACHE)
        self.rate = net.st_workers / net.st_mean_read if n else np.zeros(0)

    # ----- failures -----------------------------------------------------------------
    def set_down(self, stations: np.ndarray) -> None:
        self.up[stations] = False
        self.free[stations] = np.inf

    def set_up(self, stations: np.ndarray, now: float) -> None:
        stations = np.asarray(stations)
        self.up[stations] = True
        self.free[stations] = np.where(self.worker_mask[stations], now, np.inf)
        self.count[stations] = 0
        for s in stations.tolist():  # only on a recover event, never in a tick
            a = self.ring_off[s]
            self.ring[a:a + self.ring_len[s]] = -np.inf

    # ----- admission ----------------------------------------------------------------
    def admit(self, batch: Batch, rng: np.random.Generator) -> tuple[Batch, Batch, Batch]:
        """Admit a batch of arrivals (any stations, any order within the window).

        Returns ``(admitted, rejected_full, rejected_down)``. Admitted requests
        carry their start and end times; those that will give up carry
        ``FLAG_TIMEOUT`` and end at their give-up time.
        """
        n = len(batch)
        if n == 0:
            e = Batch.empty()
            return e, e, e
        net = self.net
        order = np.lexsort((batch.arr, batch.st))
        b = batch.take(order)
        st, arr = b.st, b.arr
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        np.not_equal(st[1:], st[:-1], out=new_group[1:])
        group_start = np.nonzero(new_group)[0]
        rank = np.arange(n) - group_start[np.cumsum(new_group) - 1]
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))

        status = np.zeros(n, dtype=np.int8)
        start = np.empty(n)
        fin = np.empty(n)
        flags = b.flags.copy()
        mean = np.where(b.cls == 1, net.st_mean_write[st], net.st_mean_read[st])
        det = net.st_deterministic[st]
        extra = ((flags & FLAG_DB_SESSION) != 0) & self.is_store[st]
        flags[extra] &= ~FLAG_DB_SESSION
        service = np.where(det, mean, rng.standard_exponential(n) * mean)
        if extra.any():
            service[extra] += rng.standard_exponential(int(extra.sum())) * net.st_mean_read[st[extra]]

        for j in range(len(bounds) - 1):
            idx = by_rank[bounds[j]:bounds[j + 1]]
            s = st[idx]
            a = arr[idx]
            alive = self.up[s]
            fr = self.free[s]
            w = fr.argmin(axis=1)
            f = fr[np.arange(len(s)), w]
            t0 = np.maximum(f, a)
            limit = net.st_queue_limit[s]
            rlen = self.ring_len[s]
            cnt = self.count[s]
            slot = self.ring_off[s] + np.where(rlen > 0, cnt % np.maximum(rlen, 1), 0)
            oldest = np.where(rlen > 0, self.ring[np.minimum(slot, len(self.ring) - 1)] if len(self.ring) else -np.inf, np.inf)
            full = np.where(limit == 0, t0 > a, (cnt >= rlen) & (oldest > a))
            big = limit > RING_CAP
            if big.any():  # beyond the ring: estimate the waiting line from the wait itself
                full = np.where(big, (t0 - a) * self.rate[s] >= limit, full)
            late = (t0 - a) > net.st_timeout[s]
            ok = alive & ~full & ~late
            give_up = alive & ~full & late
            status[idx] = np.where(alive, np.where(full, QUEUE_FULL, ADMITTED), DOWN)
            t1 = t0 + service[idx]
            start[idx] = np.where(give_up, a + net.st_timeout[s], t0)
            fin[idx] = np.where(give_up, a + net.st_timeout[s], t1)
            if give_up.any():
                flags[idx[give_up]] |= FLAG_TIMEOUT
            if ok.any():
                so, wo = s[ok], w[ok]
                self.free[so, wo] = t1[ok]
                has_ring = rlen[ok] > 0
                if has_ring.any():
                    self.ring[slot[ok][has_ring]] = t0[ok][has_ring]
                self.count[so] += 1

        b.start = start
        b.fin = fin
        b.flags = flags
        return b.take(status == ADMITTED), b.take(status == QUEUE_FULL), b.take(status == DOWN)
