"""Queueing stations: FIFO, ``c`` workers, a waiting room and a patience.

Admission is the Kiefer–Wolfowitz recursion in continuous time: a request
arriving at ``a`` is taken by the earliest free worker at
``start = max(free_w, a)`` and keeps it until ``start + service``. Because
the start and end of a FIFO request are fixed the moment it is admitted, a
batch of arrivals is admitted station by station, in arrival order: in
compiled kernels when numba is installed (admission_kernel.py), else in numpy
(admission_numpy.py: closed form and rounds); both give the same numbers.

A request is rejected (queue full) when ``queue_limit`` admitted requests are
still waiting at its arrival; it gives up (timeout) when it would wait longer
than ``timeout_s``: it then stays in flight, holding its place in the waiting room,
until ``a + timeout_s`` and fails. With one patience per station and FIFO, requests
leave the waiting room (start or give up) in arrival order, so a ring of the times the
last ``queue_limit`` admitted requests leave it decides a refusal exactly.
"""
from __future__ import annotations

import numpy as np

from .admission_kernel import (ADMITTED, DOWN, NEVER_NS, NS, QUEUE_FULL, RING_CAP, TIE_NS, TIE_S, admit_sorted,
                               load_in_background, uniform_draws)
from .admission_order import order_by_station, order_work
from .admission_numpy import NumpyAdmission, to_ns
from .compiler import CACHE, DATABASE, SERVER, Network
from .flight import FIELDS, FLAG_CHECK, FLAG_DB_SESSION, FLAG_NOT_MODIFIED, Batch
from .randomness import SERVICE, SESSION_READ, exponential

# RING_CAP: exact waiting-room accounting up to this many waiting requests per replica.
# TIE_S/TIE_NS: ties (a wait exactly equal to the patience, a start exactly at an arrival)
# are common with deterministic service. The closed form and the request-by-request
# admission compute the same times up to rounding, so every comparison decides a tie the
# same way with this margin: the result never depends on which of the two admitted a
# request (i.e. on the windows).
# NS: admission works in whole nanoseconds (int64): sums of integers are exact in any
# order, so the closed form and the one-by-one admission give bit-identical times.
__all__ = ["ADMITTED", "DOWN", "NEVER_NS", "NS", "QUEUE_FULL", "RING_CAP", "TIE_NS", "TIE_S", "Stations",
           "to_ns", "to_s"]


_NO_DRAWS = np.zeros(0)
_SERVICE_SALT = np.uint64(SERVICE)


def _contiguous(b: Batch) -> bool:
    """The kernels are compiled for contiguous arrays (any other layout would compile again)."""
    return all(getattr(b, f).flags.c_contiguous for f in FIELDS)


def _ties_by_key(st: np.ndarray, arr: np.ndarray, key: np.ndarray) -> np.ndarray | None:
    """For a batch in admission order (by station, then arrival): where two requests arrive
    at one station at the same instant (deterministic service upstream), the order that puts
    them in the order of their keys (None: no such tie). Their order in the batch depends on
    the windows that routed them, i.e. on how the run is stepped; their keys do not."""
    if len(arr) < 2:
        return None
    same = (arr[1:] == arr[:-1]) & (st[1:] == st[:-1])
    if not same.any():
        return None
    return np.lexsort((key, arr, st))


def to_s(ns: np.ndarray) -> np.ndarray:
    return np.where(ns >= NEVER_NS, np.inf, ns / NS)


class Stations(NumpyAdmission):
    """Mutable state of all stations of a compiled network."""

    def __init__(self, net: Network, now: float) -> None:
        self.net = net
        n, c = net.n_stations, max(net.max_workers, 1)
        # A station serves when it is provisioned, booted and not failed. Only
        # autoscaled servers have slots that are not provisioned or still booting.
        self.provisioned = np.ones(n, dtype=bool)
        self.booted = np.ones(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self.registered = np.ones(n, dtype=bool)   # balancers and clients may send it requests
        self.ready_at = np.full(n, np.inf)
        for sc in net.scalers:
            self.provisioned[sc.first + sc.start:sc.end] = False
            self.booted[sc.first + sc.start:sc.end] = False
            self.registered[sc.first + sc.start:sc.end] = False
        self.up = self.provisioned & self.booted
        self.free = np.full((n, c), np.inf)
        self.worker_mask = np.arange(c)[None, :] < net.st_workers[:, None]
        self.free[self.worker_mask & self.up[:, None]] = now
        limit = net.st_queue_limit
        self.ring_len = np.minimum(limit, RING_CAP).astype(np.int64)
        self.ring_off = np.concatenate([[0], np.cumsum(self.ring_len)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        self.ring = np.full(int(self.ring_len.sum()), -np.inf)
        self.count = np.zeros(n, dtype=np.int64)
        self.is_store = (net.st_kind == DATABASE) | (net.st_kind == CACHE)
        self.rate = net.st_workers / net.st_mean_read if n else np.zeros(0)
        self.same_rw = net.st_mean_read == net.st_mean_write
        self.check_cost = np.array([b.check_cost_s for b in net.balancers] or [0.0])   # per balancer, s
        # blocking servers (blocking.py): a worker that took a user request stays held (free = +inf)
        # until its downstream answer returns; each admission lists (key, station, worker, end of service)
        self.hold = np.asarray(getattr(net, "st_blocking", np.zeros(n, dtype=bool)), dtype=bool)
        self.new_holds: list[tuple[np.ndarray, ...]] = []
        self.last: tuple[Batch, np.ndarray] | None = None   # (sorted batch, status) of the last admission
        self.compiled = True   # the compiled kernels admit once they are loaded (admission_kernel.py)
        load_in_background()
        self._timeout_ns = np.rint(net.st_timeout * NS).astype(np.int64)
        self._work, self._fwork = np.empty(0, dtype=np.int64), np.empty(0)   # the kernels' scratch

    # ----- failures -----------------------------------------------------------------
    def refresh_up(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Recompute which stations serve; returns (went_down, came_up) station indices."""
        up = self.provisioned & self.booted & ~self.failed
        down = np.nonzero(self.up & ~up)[0]
        came = np.nonzero(~self.up & up)[0]
        self.up = up
        self.free[down] = np.inf
        if len(came):
            self.free[came] = np.where(self.worker_mask[came], now, np.inf)
            self.count[came] = 0
            for s in came.tolist():  # only when a station comes up, never in a tick
                a = self.ring_off[s]
                self.ring[a:a + self.ring_len[s]] = -np.inf
        return down, came

    # ----- admission ----------------------------------------------------------------
    def admit(self, batch: Batch, in_system: np.ndarray) -> tuple[Batch, Batch, Batch]:
        """Admit a batch of arrivals (any stations, any order within the window).

        ``in_system`` is the number of requests at each station when the window
        starts. Returns ``(admitted, rejected_full, rejected_down)``, each by station,
        then arrival. Admitted requests carry their start and end times; those that
        will give up carry ``FLAG_TIMEOUT`` and end at their give-up time.
        """
        n = len(batch)
        if n == 0:
            e = Batch.empty()
            return e, e, e
        if self.compiled and admit_sorted.compiled and order_by_station.compiled and uniform_draws.compiled \
                and _contiguous(batch):
            rejected, status, b = self._admit_compiled(batch, in_system)
        else:
            status, b = self._admit_in_numpy(batch, in_system)
            rejected = status.any()
        self.last = (b, status)
        if not rejected:
            e = Batch.empty()
            return b, e, e
        return b.take(status == ADMITTED), b.take(status == QUEUE_FULL), b.take(status == DOWN)

    def _admit_compiled(self, batch: Batch, in_system: np.ndarray) -> tuple[int, np.ndarray, Batch]:
        """The kernels' path: (how many are not admitted, status, the sorted batch)."""
        n = len(batch)
        net = self.net
        counts = np.empty(net.n_stations, dtype=np.int64)
        used = order_work(n, len(counts))
        work, fwork = self._scratch(used + n, 2 * n)
        perm = work[used:used + n]
        # sorted: the kernel wrote the stations and arrivals, start and end come below;
        # else the batch's own order (one station, in time order): views, as the numpy path
        st, arr = np.empty(n, dtype=np.int64), np.empty(n)
        if order_by_station(batch.st, batch.arr, perm, counts, work, fwork, st, arr):
            tied = _ties_by_key(st, arr, batch.key[perm])
            if tied is not None:
                perm = perm[tied]
                st, arr = st[tied], arr[tied]
            b = Batch._raw((st, batch.birth[perm], arr, np.empty(n), np.empty(n), batch.cls[perm], batch.user[perm],
                            batch.flags[perm], batch.key[perm], batch.hop[perm], batch.item[perm]))
        else:
            tied = _ties_by_key(batch.st, batch.arr, batch.key)
            b = batch.take(slice(None) if tied is None else tied)
            b.start = np.empty(n)
            b.fin = np.empty(n)
        gst = np.flatnonzero(counts)
        if np.bitwise_or.reduce(b.flags) & FLAG_DB_SESSION and self.is_store[gst].any():   # session reads
            service, given, draws = self._service_ns(b, gst), True, _NO_DRAWS
        else:   # the kernel multiplies the draws by the means
            service, given = work[n:2 * n], False
            draws = _NO_DRAWS
            if not net.st_deterministic[gst].all():   # randomness.exponential: the hash compiled, log1p in numpy
                draws = fwork[:n]
                uniform_draws(b.key, b.hop, _SERVICE_SALT, draws)
                np.negative(np.log1p(np.negative(draws, out=draws), out=draws), out=draws)
        status = np.empty(n, dtype=np.int8)
        worker = np.empty(n if self.hold.any() else 0, dtype=np.int64)
        rejected, holds = admit_sorted(b.st, b.arr, b.cls, b.flags, draws, service, given,
                                       np.asarray(in_system, dtype=np.int64), net.st_workers, self.up,
                                       net.st_queue_limit, self.hold, net.st_timeout, self._timeout_ns, self.rate,
                                       net.st_mean_read, net.st_mean_write, net.st_deterministic, b.item,
                                       self.check_cost, net.st_kind, net.st_nm_cost, self.free,
                                       self.ring, self.ring_off, self.ring_len, self.count, b.start, b.fin, status,
                                       worker, work)
        if holds:
            h = worker >= 0
            self.new_holds.append((b.key[h], b.st[h], worker[h], b.fin[h]))
        return rejected, status, b

    def _scratch(self, n_int: int, n_float: int) -> tuple[np.ndarray, np.ndarray]:
        """Scratch arrays for the kernels, kept from one admission to the next: fresh
        memory costs a page fault per 4 kB written, more than the sort that fills it."""
        if len(self._work) < n_int or len(self._fwork) < n_float:
            self._work = np.empty(max(n_int, 2 * len(self._work)), dtype=np.int64)
            self._fwork = np.empty(max(n_float, 2 * len(self._fwork)))
        return self._work, self._fwork

    def _admit_in_numpy(self, batch: Batch, in_system: np.ndarray) -> tuple[np.ndarray, Batch]:
        """The numpy path: (status, the sorted batch)."""
        n = len(batch)
        arr0 = batch.arr
        in_order = n == 1 or not (arr0[1:] < arr0[:-1]).any()
        if in_order and batch.st.min() == batch.st.max():
            b = batch.take(slice(None))          # one station, already in time order (e.g. a load balancer)
        elif in_order:  # a stable (radix) sort by station keeps the time order
            b = batch.take(np.argsort(batch.st, kind="stable"))
        else:
            b = batch.take(np.lexsort((arr0, batch.st)))
        tied = _ties_by_key(b.st, b.arr, b.key)
        if tied is not None:
            b = b.take(tied)
        st = b.st
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        np.not_equal(st[1:], st[:-1], out=new_group[1:])
        group_start = np.nonzero(new_group)[0]
        group_of = np.cumsum(new_group) - 1
        rank = np.arange(n) - group_start[group_of]
        service = self._service_ns(b, st[group_start])
        b.start = np.empty(n)
        b.fin = np.empty(n)
        status = np.zeros(n, dtype=np.int8)
        self._admit_numpy(b, in_system, service, group_start, group_of, rank, status)
        return status, b

    def _service_ns(self, b: Batch, gst: np.ndarray) -> np.ndarray:
        """Each request's service time in ns (int64, by ``b``'s order; ``gst``: the stations
        among ``b``). A store's first read of a session takes its session read too (the
        flag is cleared, on a copy of ``b.flags``)."""
        net = self.net
        st = b.st
        if self.same_rw[gst].all():
            mean = net.st_mean_read[st]
        else:
            mean = np.where(b.cls == 1, net.st_mean_write[st], net.st_mean_read[st])
        det = net.st_deterministic[gst]
        if det.all():
            service = mean
        else:
            service = exponential(b.key, b.hop, SERVICE) * mean
            if det.any():
                service = np.where(net.st_deterministic[st], mean, service)
        if self.is_store[gst].any():
            extra = ((b.flags & FLAG_DB_SESSION) != 0) & self.is_store[st]
            if extra.any():
                b.flags = b.flags.copy()
                b.flags[extra] &= ~FLAG_DB_SESSION
                service = service.copy()
                service[extra] += exponential(b.key[extra], b.hop[extra], SESSION_READ) * net.st_mean_read[st[extra]]
        not_modified = ((b.flags & FLAG_NOT_MODIFIED) != 0) & (net.st_kind[st] == SERVER)
        if not_modified.any():   # a 304 costs a share of the work of a full answer
            service = np.where(not_modified, service * net.st_nm_cost[st], service)
        check = (b.flags & FLAG_CHECK) != 0
        if check.any():   # a health check: its balancer's check cost at a server, one request elsewhere
            cost = self.check_cost[np.where(check, b.item, 0)]
            service = np.where(check, np.where(net.st_kind[st] == SERVER, cost, mean), service)
        return np.maximum(np.rint(service * NS), 0).astype(np.int64)
