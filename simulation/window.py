"""One window of the engine: each level's arrivals are admitted, then the level is
settled: its busy time and finished requests booked, the queue snapshots at whole
seconds taken, and the requests that finish before the window's end routed on.

Settling takes one compiled pass over a level's requests once the kernels are
loaded (settle_kernels.scan_level), and the numpy passes before that or without
numba: the same numbers either way.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import math

import numpy as np

from .compiler import CACHE, LB, SimulationError
from .flight import FIELDS, FLAG_INTERNAL, FLAG_NOT_MODIFIED, FLAG_SESSION_LOST, FLAG_TIMEOUT, Batch
from .routing import Routing
from .settle_kernels import compress

_NOT_PLAIN = FLAG_TIMEOUT | FLAG_SESSION_LOST | FLAG_NOT_MODIFIED | FLAG_INTERNAL   # answered otherwise
_ALL = np.zeros(0, dtype=np.bool_)   # book_answered's ``where``: every request
_DTYPES = tuple(np.dtype(d) for d in FIELDS.values())


def _plain(p: Batch) -> bool:
    """Whether the kernels can take ``p``'s fields as they are: FIELDS' dtypes, contiguous
    (any other layout would compile them again, for seconds)."""
    return all(a.dtype == d and a.flags.c_contiguous for a, d in zip(
        (p.st, p.birth, p.arr, p.start, p.fin, p.cls, p.user, p.flags, p.key, p.hop, p.item), _DTYPES))


def _where(p: Batch, mask: np.ndarray, m: int) -> Batch:
    """``p.take(mask)`` for a mask true ``m`` times (in one pass when compiled)."""
    if m == 0:
        return Batch.empty()
    if m == len(p):
        return p
    if compress.compiled and _plain(p):
        return Batch._raw(compress(mask, m, p.st, p.birth, p.arr, p.start, p.fin, p.cls, p.user, p.flags, p.key,
                                   p.hop, p.item))
    return p.take(mask)


class Window:
    def _window(self, t0: float, t1: float) -> None:
        net = self.net
        inbox: list[list[Batch]] = [[] for _ in net.levels]
        if self._track_latency:   # the response times the slower path reads (routing._tick_view)
            self._ewma_start = self.ewma.copy()
        if self._holding and self._one_tick:   # and the connections, there
            self._conn_start = (t0, net, self._connections_at(t0, np.arange(net.n_stations)))
        self._generate(t0, t1, inbox)
        if self._readmit:
            self._readmit_waiting(inbox)
        marks = [float(k) for k in range(math.floor(t0) + 1, math.floor(t1 + 1e-9) + 1)]
        if self._holding:   # blocking servers: sweeps over the levels (blocking.py)
            self._blocking_window(t0, t1, inbox, marks)
            self._refusals_known(t1)   # the waiting rooms' refusals so far (blocking_rooms.py)
        else:
            for lv in range(len(net.levels)):
                if self._deferred:   # load-aware balancers choosing with this level's other senders
                    self._choose_deferred(lv, inbox)
                checks = self._due_checks(lv)   # health checks at this level's backends (health.py)
                if inbox[lv] or len(checks) or (self._replicated and lv in self._apply_levels):
                    self._admit_level(lv, Batch.concat(inbox[lv] + [checks]), t1)
                self._settle_level(lv, t0, t1, marks, inbox)
        if self._deferred:   # every deferred choice is made at a level of this window (contested.py)
            raise SimulationError(f"balancers' requests deferred to levels {sorted(self._deferred)} were never "
                                  "routed (please report this)")
        if self._caches:
            self._forget_cache_states()

    def _settle_level(self, lv: int, t0: float, t1: float, marks: list[float], inbox: list[list[Batch]]) -> None:
        """Book a level's work in [t0, t1) and route its requests that finish before t1."""
        p = self.pending[lv]
        if not len(p):
            return
        lb_only, answers = self._level_shape(lv)
        if self.ledger.can_scan(p.st, p.start, p.fin, t0, t1) and _plain(p):
            out = self._scan_level(lv, p, t0, t1, marks, answers)
        else:
            out = self._settle_numpy(lv, p, t0, t1, marks)
        if out is None:
            return
        gave_up = (out.flags & FLAG_TIMEOUT) != 0
        if gave_up.any():
            self._fail("timeout", out.fin[gave_up], out.key[gave_up])
            out = out.take(~gave_up)
        if len(out):
            if self._track_latency:
                self._update_ewma(out)
            self._route(out, inbox, lb_only)

    def _level_shape(self, lv: int) -> tuple[bool, bool]:
        """(all of the level's stations are load balancers, none of them sends a request on:
        servers and databases without downstream nodes, whose finished requests are answered)."""
        if self.__dict__.get("_shapes_of") is not self.net:
            net = self.net
            lb, cache = net.st_kind == LB, net.st_kind == CACHE
            self._shapes = [(bool(len(at)) and bool(lb[at].all()), not (lb[at] | cache[at] | self._has_route[at]).any())
                            for at in (np.flatnonzero(net.st_level == k) for k in range(len(net.levels)))]
            self._shapes_of = net
        return self._shapes[lv]

    def _scan_level(self, lv: int, p: Batch, t0: float, t1: float, marks: list[float],
                    answers: bool) -> Batch | None:
        """Busy time, queue snapshots and finished requests in one compiled pass (ledger.scan);
        returns the finished user requests (None: none finished, or all answered here)."""
        n_st = self.net.n_stations
        mk = np.asarray(marks, dtype=np.float64)
        per = np.zeros((len(mk), n_st), dtype=np.int64)
        done = np.empty(len(p), dtype=np.bool_)
        n_done, n_internal, flags = self.ledger.scan(p.st, p.start, p.fin, p.arr, p.flags, FLAG_TIMEOUT, t0, t1,
                                                     mk, per, done, FLAG_INTERNAL)
        if len(mk):
            self._add_snaps(per, marks)
        if not n_done:
            return None
        if answers and not flags & _NOT_PLAIN and self._plain_answers:
            self._answer_where(p, done, n_done)   # what _route would do, without taking them out first
            self.pending[lv] = _where(p, ~done, len(p) - n_done)
            return None
        if n_done == len(p):
            out, self.pending[lv] = p, Batch.empty()
        else:
            out, self.pending[lv] = _where(p, done, n_done), _where(p, ~done, len(p) - n_done)
        return out.users_only() if n_internal else out

    @property
    def _plain_answers(self) -> bool:
        """Whether a request answered at a server is only booked: no held workers to free, no
        traced requests, no tables or joins to count, no response times to follow, and
        ``_route``/``_finish`` are Routing's own (spof_measure's runs count what they get)."""
        return (not self._holding and self._tracer is None and self._parts is None and not self._joins_on
                and not self._track_latency and type(self)._finish is Routing._finish   # no subclass hook
                and type(self)._route is Routing._route)

    def _answer_where(self, p: Batch, done: np.ndarray, n_done: int) -> None:
        """``Routing._finish`` of the requests of ``p`` where ``done``, all plain user requests
        (no give-up, lost session, 304 or internal work): booked in one pass."""
        self.served += n_done
        with np.errstate(all="ignore"):   # the bins of requests still in service are not used
            self._lat_ns_total += self.ledger.book_answered(p.fin, p.fin - p.birth, self._hist_total,
                                                            done if n_done < len(p) else _ALL)

    def _settle_numpy(self, lv: int, p: Batch, t0: float, t1: float, marks: list[float]) -> Batch | None:
        """``_scan_level`` in numpy passes (before the kernels are loaded, or without numba)."""
        gave = (p.flags & FLAG_TIMEOUT) != 0
        if gave.any():
            served_here = ~gave
            self.ledger.book_busy(p.st[served_here], p.start[served_here], p.fin[served_here], t0, t1)
        else:
            self.ledger.book_busy(p.st, p.start, p.fin, t0, t1)
        if marks:
            self._snap_waiting(p, marks)
        done = p.fin < t1
        if not done.any():
            return None
        out, self.pending[lv] = p.split(done)
        out = out.users_only()          # internal work (replicas applying writes) ends here
        self.ledger.book_done(out.st, out.fin)
        return out

    def _snap_waiting(self, p: Batch, marks: list[float]) -> None:
        """Add the requests waiting at each whole second of ``marks`` (arrived, not started) to
        that second's queue snapshot. Request i waits at the marks k with arr_i <= k < start_i:
        the marks from searchsorted(arr_i) up to searchsorted(start_i), in one pass."""
        n_st = self.net.n_stations
        mk = np.asarray(marks)
        idx = np.nonzero(np.ceil(p.arr) < p.start)[0]   # a whole second in [arr, start): usually few
        if not len(idx):
            return
        lo = np.searchsorted(mk, p.arr[idx], side="left")
        c = np.searchsorted(mk, p.start[idx], side="left") - lo
        some = c > 0
        if not some.any():
            return
        idx, lo, c = idx[some], lo[some], c[some]
        ends = np.cumsum(c)
        within = np.arange(int(ends[-1])) - np.repeat(ends - c, c)
        which = np.repeat(lo, c) + within          # the mark of each (request, mark) pair
        per = np.bincount(which * n_st + np.repeat(p.st[idx], c), minlength=len(mk) * n_st).reshape(len(mk), n_st)
        self._add_snaps(per, marks)

    def _add_snaps(self, per: np.ndarray, marks: list[float]) -> None:
        """Add ``per[j]`` (requests waiting per station at ``marks[j]``) to the snapshots."""
        snaps = self._queue_snap
        rows = np.flatnonzero(per.any(axis=1)).tolist()
        if not rows:
            return
        counts = per.astype(np.float64)   # small integers: exact, as 0.0 + per[j] would be
        for j in rows:
            k = int(round(marks[j]))
            snap = snaps.get(k)
            if snap is None:
                snaps[k] = counts[j]
            else:
                snap += counts[j]

    def _admit_level(self, lv: int, batch: Batch, t1: float) -> None:
        """Admit a level's arrivals of this window. Stations are admitted independently,
        so the writers of replicated databases go first: the writes they commit before
        ``t1`` reach the replicas in this same window, in time order with their reads."""
        if self._replicated and lv in self._apply_levels:
            first = Batch.empty()
            if len(batch):
                first, batch = batch.split(self._is_writer(batch.st))
            if self._ids:   # primaries of multi-primary databases apply each other's writes in time order
                self._admit_primaries(lv, first, t1)
            else:
                self._admit(lv, first)
            batch = Batch.concat([batch, self._due_applies(lv, t1, writers=False if self._ids else None)])
        self._admit(lv, batch)
        if self._sharded:   # cross-shard queries end with their slowest shard (sharding.py)
            self._join_shards(lv)

    def _admit_primaries(self, lv: int, first: Batch, t1: float) -> None:
        """The arrivals at the writers of level ``lv`` (``first``: before ``t1``) with the
        writes the primaries of multi-primary databases apply from each other, in stretches
        no longer than the shortest delay of those (``_mp_delay``): a write admitted in a
        stretch reaches the other primaries after it, so each stretch admits every arrival
        it has in time order, however long the window. Each stretch admits at least its
        first arrival or job, and jobs start no jobs: the loop ends."""
        net = self.net
        at_lv = (self._mp_primary >= 0) & (net.st_level == lv)
        step = min((self._mp_delay(int(s)) for s in np.flatnonzero(at_lv)), default=math.inf)
        if len(first) > 1:
            first = first.take(np.argsort(first.arr, kind="stable"))
        self._mp_later: list[tuple] | None = []   # conflicts, stale reads, ids: counted once, at the end
        floor = None
        try:
            while True:
                d = self._delayed
                jobs = d.arr[at_lv[d.st]] if len(d) else d.arr
                start = min(float(first.arr[0]) if len(first) else math.inf,
                            float(jobs.min()) if len(jobs) else math.inf)
                if start >= t1:
                    break
                floor = start if floor is None else floor
                end = min(start + step, t1)
                k = int(np.searchsorted(first.arr, end, side="left"))   # sorted: the stretch's arrivals lead
                part, first = first.take(slice(0, k)), first.take(slice(k, None))
                self._admit(lv, Batch.concat([part, self._due_applies(lv, end, writers=True)]))
        finally:
            later, self._mp_later = self._mp_later, None
        if later:   # in arrival order, as one batch: the same counts as stretch by stretch
            self._mp_floor = (lv, floor)   # what this level admits from now on arrives after it
            w, w_key, b, b_key, reads = (Batch.concat([x[0] for x in later]), np.concatenate([x[1] for x in later]),
                                         Batch.concat([x[2] for x in later]), np.concatenate([x[3] for x in later]),
                                         np.concatenate([x[4] for x in later]))
            self._multi_primary(w, w_key, b, b_key, reads)

    def _admit(self, lv: int, batch: Batch) -> None:
        if not len(batch):
            return
        self._commit_admission(lv, *self._admit_users(batch, self._in_system(lv)))

    def _commit_admission(self, lv: int, admitted: Batch, full: Batch, down: Batch) -> None:
        """What follows a level's admission: refusals fail, sessions move, the admitted wait."""
        if self._sharded:
            self._shard_rejects(full, down)
        full, down = full.users_only(), down.users_only()
        self._fail("queue_full", full.arr, full.key)
        self._fail("backend_down", down.arr, down.key)
        self._sessions(admitted)
        self.pending[lv] = Batch.concat([self.pending[lv], admitted])
