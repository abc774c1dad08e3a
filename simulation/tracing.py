"""Follow sampled requests hop by hop (the designer's "Follow requests").

``Simulation.trace_every(n)`` samples every request whose key is a multiple of
``n`` (keys are random hashes, so about one in ``n``, the same requests in every
run of a seed). For those only, each station they reach is recorded as a
:class:`Hop` (node, replica, arrival, start and end of service, what came next)
in a bounded store: at most ``cap`` traces, the oldest dropped first.

Cost: with tracing off the engine checks one attribute per admitted batch, per
failure and per answered batch; with it on, one vectorised mask per batch, and
Python work only for the sampled requests (bounded by ``cap`` per batch). The
engine's numbers never depend on it: it only reads the batches.
"""
from __future__ import annotations

import math

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .flight import FLAG_CHECK, FLAG_INTERNAL, FLAG_TIMEOUT, Batch

DEFAULT_CAP = 1000
NOT_USER = FLAG_CHECK | FLAG_INTERNAL


@dataclass
class Hop:
    """One station a request reached. ``start_s`` is None when it was never served
    there (rejected, or it gave up waiting); ``end_s`` is when it left (or will)."""
    node: str
    replica: int
    arrived_s: float
    start_s: float | None
    end_s: float
    outcome: str = "in_flight"   # in_flight, forwarded, answered, failed
    to: str | None = None        # forwarded: the next node
    cause: str | None = None     # failed: a FAILURE_CAUSES name
    undecided: bool = False      # waiting at a blocking server, its start not known yet (end_s = inf)

    @property
    def wait_ms(self) -> float:
        return ((self.start_s if self.start_s is not None else self.end_s) - self.arrived_s) * 1000.0

    @property
    def service_ms(self) -> float:
        return 0.0 if self.start_s is None else (self.end_s - self.start_s) * 1000.0

    def status_at(self, t: float) -> str | None:
        """queueing / in_service / failed at time ``t`` (None: not at this station then)."""
        if t < self.arrived_s:
            return None
        if self.outcome == "failed" and t >= self.end_s:
            return "failed"
        if t >= self.end_s:
            return None
        if self.start_s is None or t < self.start_s:
            return "queueing"
        return "in_service"


@dataclass
class Trace:
    """A sampled request: who sent it and every hop it made so far."""
    key: int
    user: int
    item: int
    write: bool
    birth_s: float
    hops: list[Hop] = field(default_factory=list)
    outcome: str = "in_flight"   # in_flight, answered, failed
    cause: str | None = None
    end_s: float | None = None

    @property
    def latency_ms(self) -> float | None:
        """Birth to answer (as the engine books it); None unless answered."""
        return None if self.outcome != "answered" else (self.end_s - self.birth_s) * 1000.0


class Tracer:
    """The bounded store of traces, fed by the engine's hooks."""

    def __init__(self, every: int, cap: int = DEFAULT_CAP) -> None:
        if int(every) < 1 or int(cap) < 1:
            raise ValueError(f"trace_every: n and cap must be at least 1 (got n = {every}, cap = {cap})")
        self.every = np.uint64(int(every))
        self.cap = int(cap)
        self.traces: OrderedDict[int, Trace] = OrderedDict()
        self._undecided: set[int] = set()   # keys whose last hop is undecided (``waiting``)

    def _sampled(self, keys: np.ndarray, flags: np.ndarray) -> np.ndarray:
        return np.nonzero(((keys % self.every) == 0) & ((flags & NOT_USER) == 0))[0]

    def _bounded(self, idx: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """At most ``cap`` new traces per batch (the latest ones): older would be dropped anyway."""
        if len(idx) <= self.cap:
            return idx
        known = np.isin(keys[idx], np.fromiter(self.traces.keys(), dtype=np.uint64, count=len(self.traces)))
        new = np.nonzero(~known)[0]
        return np.sort(np.r_[idx[known], idx[new[-self.cap:]]])

    def _trace_at(self, batch: Batch, i: int, node: str) -> Trace:
        """Request ``i`` of ``batch``'s trace, arriving at ``node``: new, or the one it has
        (its previous hop then forwarded it there; an undecided hop there is replaced)."""
        k = int(batch.key[i])
        tr = self.traces.get(k)
        if tr is None:
            tr = Trace(k, int(batch.user[i]), int(batch.item[i]), bool(batch.cls[i] == 1), float(batch.birth[i]))
            self.traces[k] = tr
            if len(self.traces) > self.cap:
                self._undecided.discard(self.traces.popitem(last=False)[0])
            return tr
        if tr.hops and tr.hops[-1].undecided and tr.hops[-1].outcome == "in_flight" and tr.hops[-1].node == node:
            tr.hops.pop()
            self._undecided.discard(k)
        if tr.hops and tr.hops[-1].outcome == "in_flight":
            tr.hops[-1].outcome, tr.hops[-1].to = "forwarded", node
        return tr

    def waiting(self, batch: Batch, net) -> None:
        """Requests waiting undecided at blocking servers (their admission depends on
        releases computed later: blocking.py): shown queueing there until ``admitted``
        says how they were admitted."""
        if not len(batch):
            return
        idx = self._sampled(batch.key, batch.flags)
        if len(idx) and self._undecided:   # the sweeps put them back again and again: only the new ones
            shown = np.fromiter(self._undecided, dtype=np.uint64, count=len(self._undecided))
            idx = idx[~np.isin(batch.key[idx], shown)]
        for i in self._bounded(idx, batch.key).tolist():
            st = int(batch.st[i])
            node = net.node_ids[int(net.st_node[st])]
            tr = self._trace_at(batch, i, node)
            tr.hops.append(Hop(node, int(net.st_replica[st]), float(batch.arr[i]), None, math.inf, undecided=True))
            self._undecided.add(tr.key)

    def admitted(self, batch: Batch, net, rejected: bool = False) -> None:
        """Requests that reached a station (admitted, or rejected at once when ``rejected``)."""
        if not len(batch):
            return
        idx = self._bounded(self._sampled(batch.key, batch.flags), batch.key)
        if not len(idx):
            return
        timeout = (batch.flags[idx] & FLAG_TIMEOUT) != 0
        for j, i in enumerate(idx.tolist()):
            st = int(batch.st[i])
            node = net.node_ids[int(net.st_node[st])]
            tr = self._trace_at(batch, i, node)
            arr = float(batch.arr[i])
            if rejected:
                hop = Hop(node, int(net.st_replica[st]), arr, None, arr)
            elif timeout[j] or not math.isfinite(batch.start[i]):   # gave up, or lost still undecided
                hop = Hop(node, int(net.st_replica[st]), arr, None, float(batch.fin[i]))
            else:
                # the engine admits in whole ns: a start may precede the exact arrival by < 1 ns
                hop = Hop(node, int(net.st_replica[st]), arr, max(arr, float(batch.start[i])), float(batch.fin[i]))
            tr.hops.append(hop)

    def answered(self, keys: np.ndarray, times: np.ndarray, lost: np.ndarray) -> None:
        """Requests answered at ``times`` (``lost``: their session was lost, counted failed)."""
        idx = np.nonzero((keys % self.every) == 0)[0]
        for i in idx.tolist():
            tr = self.traces.get(int(keys[i]))
            if tr is None:
                continue
            if lost[i]:
                self._end(tr, "session_lost", float(times[i]))
                continue
            tr.outcome, tr.end_s = "answered", float(times[i])
            if tr.hops:
                tr.hops[-1].outcome = "answered"

    def failed(self, cause: str, keys: np.ndarray, times: np.ndarray) -> None:
        idx = np.nonzero((keys % self.every) == 0)[0]
        for i in idx.tolist():
            tr = self.traces.get(int(keys[i]))
            if tr is not None and tr.outcome == "in_flight":
                self._end(tr, cause, float(times[i]))
                self._undecided.discard(tr.key)

    @staticmethod
    def _end(tr: Trace, cause: str, t: float) -> None:
        tr.outcome, tr.cause, tr.end_s = "failed", cause, t
        if tr.hops:
            last = tr.hops[-1]
            last.outcome, last.cause = "failed", cause
            if t < last.end_s:   # lost before it finished (its node failed)
                last.end_s = t
                if last.start_s is not None and last.start_s > t:
                    last.start_s = None


class Tracing:
    """The simulation's side (a mixin of :class:`simulation.engine.Simulation`)."""

    _tracer: Tracer | None = None

    def trace_every(self, n: int | None, cap: int = DEFAULT_CAP) -> None:
        """Record every ``n``-th request (by key) from now on; ``None`` or 0 stops (and forgets)."""
        self._tracer = Tracer(n, cap) if n else None

    @property
    def tracing(self) -> int:
        """The sampling interval (0: off)."""
        return 0 if self._tracer is None else int(self._tracer.every)

    def traces(self) -> list[Trace]:
        """The recorded traces, oldest first (at most ``cap``)."""
        return [] if self._tracer is None else list(self._tracer.traces.values())

    def trace(self, key: int) -> Trace | None:
        return None if self._tracer is None else self._tracer.traces.get(int(key))
