"""A window of a blocking tier decided event by event (blocking_events.py) instead of sweeps.

A part of :class:`simulation.blocking.Blocking`. The tier must have a common shape
(``_event_depth``): every station from the lowest blocking level up is a blocking server
B, a server, cache or database beside them (admitted as usual), or, downstream and fed
by that level only, a server that does not block, a cache or a database (one primary
or several, with or without read replicas, sharded or not, cross-shard queries included,
holding tables, joins included, autoscaled or not), or a balancer (choice_hops.py); tiers of
blocking servers downstream only in balanced_window.py's pass. Anything else takes the sweeps.

The kernel decides B's admissions of the window exactly as the sweeps do, following
each request's journey downstream (blocking_journeys.py), and predicts when each held
worker is released. This module commits B's admissions, then settles B and admits and
settles the levels downstream as every window does: their answers, refusals and
give-ups release the workers, and each release must be the one predicted, and no other
(else a SimulationError: a bug, never a silently wrong number). The same numbers as the
sweeps, request by request (tests/simulation/test_blocking_events.py), in about a
microsecond per request compiled instead of a millisecond of numpy.
``SCALELAB_BLOCKING_EVENTS=0`` turns it off.
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np

from .admission_kernel import ADMITTED, DOWN, GIVES_UP, NS, QUEUE_FULL
from .blocking_events import END, TIE, UNDECIDED, blocking_events
from .blocking_journeys import Journeys
from .compiler import CACHE, DATABASE, LB, SERVER, SimulationError
from .flight import FLAG_CHECK, FLAG_INTERNAL, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from .least_choice import ALGO_CODE

AWARE = tuple(ALGO_CODE)   # least connections, least response time, power of two


def events_enabled() -> bool:
    return os.environ.get("SCALELAB_BLOCKING_EVENTS", "1").strip().lower() not in ("0", "false", "no", "off")


class EventWindow(Journeys):
    def _event_depth(self) -> int | None:
        """How many stations a journey downstream of the blocking servers crosses at most,
        when the tier has the shape this module decides; else None."""
        net, st = self.net, self.stations
        if not events_enabled():
            return None
        lb, levels = self._lb, net.levels
        reached = net.reached()   # (no request reaches a node not yet connected: it changes nothing)
        beside = levels[lb][~st.hold[levels[lb]] & reached[levels[lb]]]   # at B's level, not blocking
        if (net.st_kind[beside] == LB).any():
            return None
        if self._local_hold.any() and self._is_local_server[beside].any():
            return None   # one session per user moved by two kinds of servers: its order is the sweeps'
        n = net.n_stations
        down = (net.st_level > lb) & reached   # downstream: servers that do not block, caches, databases, fed
        # by the tier only
        kind = net.st_kind[down]
        chain = None
        if st.hold[down].any():   # tiers of blocking servers downstream: balanced_window.py's pass only
            lv2 = np.unique(net.st_level[st.hold & down])
            aware = [bs for bs in self.balancers if bs.bal.algorithm in AWARE and st.hold[bs.bal.backends].any()]
            if (any((~st.hold[levels[int(k)]] & reached[levels[int(k)]]).any() for k in lv2)
                    or self._local_hold[down].any()
                    or self._joins_on or (len(beside) and aware)):
                return None   # servers beside B behind a load-aware balancer: journeys that hang on its choice
            chain = tuple(int(k) for k in lv2)
        if ((kind != SERVER) & (kind != DATABASE) & (kind != CACHE) & (kind != LB)).any():
            return None
        rows = np.repeat(np.arange(n), np.diff(net.route_ptr))
        into = down[net.route_target] & reached[rows]
        if (net.st_level[rows[into]] < lb).any():
            return None
        if not self._choice_shape(down) or (self._ev_choice and chain is not None):
            return None   # a balancer downstream: only the ones choice_hops.py follows
        if ((net.st_kind == LB) & down & (self._choice_at < 0)).any():
            return None
        for c in net.clients:
            for node in c.entries:
                if down[net.node_stations[node]].any():
                    return None
        # a cache's hits follow its state second by second (caching.py): windows then end at whole seconds
        self._ev_caches = bool((kind == CACHE).any())
        self._ev_tie = np.zeros(n, dtype=bool)   # replicated databases: ties there are left to the sweeps
        for db in net.databases:
            self._ev_tie[db.stations] = True
            if reached[db.stations].any() and not down[db.stations].all():
                return None
        self._ev_chain = chain
        return max(len(levels) - lb - 1, 1)

    def _event_window(self, t0: float, t1: float, inbox: list[list[Batch]], marks: list[float]) -> bool:
        """Decide the window of the blocking tier event by event; False (nothing changed)
        when the kernel cannot (two arrivals at one instant whose order only the sweeps
        know, or a held worker whose request is not found): then the sweeps take it."""
        lv = self._lb
        st, net = self.stations, self.net
        if self._ev_caches and math.floor(t0 + 1e-9) != math.floor(t1 - 1e-9):
            return False   # a cache's hits would change inside the window (see _event_depth)
        pend = self.pending[lv]
        waiting = np.isinf(pend.start) if len(pend) else np.zeros(0, dtype=bool)
        every = self._event_candidates(pend, waiting, inbox, t1)
        cand = every.take(np.lexsort((every.arr, every.st)))
        beside = ~st.hold[cand.st]   # at stations that do not block: admitted as usual (on copies here)
        if beside.any():
            cand = cand.take(~beside)
        inputs = self._event_inputs(cand, Batch.concat([pend.take(~waiting), self._preview(lv, every)]), t1)
        if inputs is None:
            return False
        (c_svc, c_held, c_down, e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, unk, free, done_entry,
         done_t, parts, choice, e_delay) = inputs
        n, ne = len(cand), len(e_t)
        ring, count = st.ring.copy(), st.count.copy()
        status = np.empty(n, dtype=np.int8)
        start_ns = np.empty(n, dtype=np.int64)
        worker = np.empty(n, dtype=np.int64)
        c_rel, e_rel = np.empty(n), np.empty(ne)
        work = np.empty(3 * (n + ne) + 3 * net.n_stations + 1, dtype=np.int64)
        fwork = np.empty(n + ne + 1)
        kwork = np.empty(n + ne + 1, dtype=np.uint64)
        args = (cand.st, cand.arr, cand.key, c_svc, c_held, c_down, e_t, e_key, e_bst, e_bw, jp, js, ja_first, ja_n,
                e_delay,
                *parts, *self._kernel_choices(choice), net.st_mean_read, net.st_mean_write, net.st_deterministic,
                net.st_nm_cost,
                self._ev_tie, unk, free, net.st_workers, ring,
                st.ring_off, st.ring_len, count, net.st_queue_limit, st._timeout_ns, net.st_timeout, st.rate, st.up,
                float(t1), status, start_ns, worker, c_rel, e_rel, work, fwork, kwork)
        got = blocking_events(*args) if blocking_events.compiled else blocking_events.py(*args)
        if got == TIE:
            self._ev_fallbacks += 1
            return False
        self._ev_windows += 1
        # commit: the same arrivals, taken as the sweeps take them (sessions move in arrival order)
        deferred, self.pending[lv] = pend.split(waiting)
        real = Batch.concat([deferred, self._take_arrivals(lv, t1, inbox)])
        real = real.take(np.lexsort((real.arr, real.st)))
        others = ~st.hold[real.st]
        if others.any():
            self._admit_level(lv, real.take(others), t1)
            real = real.take(~others)
        if len(real) != n or not np.array_equal(real.key, cand.key):
            raise SimulationError("blocking servers: the window's arrivals changed while it was decided")
        self._commit_events(lv, real, status, start_ns, c_svc, worker, c_rel, e_rel, e_entry, done_entry, done_t,
                            (free, ring, count), deferred, t0, t1, inbox, marks)
        return True

    def _commit_events(self, lv: int, real: Batch, status: np.ndarray, start_ns: np.ndarray, c_svc: np.ndarray,
                       worker: np.ndarray, c_rel: np.ndarray, e_rel: np.ndarray, e_entry: np.ndarray,
                       done_entry: np.ndarray, done_t: np.ndarray, copies: tuple, deferred: Batch, t0: float,
                       t1: float, inbox: list[list[Batch]], marks: list[float],
                       decided: np.ndarray | None = None, moved: bool = False) -> None:
        """Book a window the kernel decided: the blocking servers' admissions (``real``, in
        the kernel's order, with its ``status``, ``start_ns``, services ``c_svc``, workers and
        releases) and their stations' state (``copies``: free, ring, count), then settle the
        levels from ``lv`` up as every window does, checking each release against the
        kernel's (``_check_release``). ``decided``: the stations whose state the kernel
        decided (else the blocking servers'); ``moved``: the caller moved their sessions."""
        st, net = self.stations, self.net
        free, ring, count = copies
        n = len(real)
        dec = status != UNDECIDED
        b_st = np.flatnonzero(st.hold if decided is None else decided)
        st.free[b_st] = free[b_st]
        st.count[b_st] = count[b_st]
        for s in b_st.tolist():
            a = st.ring_off[s]
            st.ring[a:a + st.ring_len[s]] = ring[a:a + st.ring_len[s]]
        if moved:   # the caller moved the level's sessions (balanced_window.py): not again here
            self._moves_later = []
        try:
            b = self._admit_decided(lv, real.take(dec), status[dec], start_ns[dec], c_svc[dec])
        finally:
            self._moves_later = None
        # held workers: those released in this window are booked now (the releases D makes
        # below must match); the others are listed until their request leaves
        held = dec & (worker >= 0)
        fin_all = np.empty(n)
        fin_all[dec] = b.fin
        rel_new = held & (c_rel < t1)
        keep_new = held & ~rel_new
        if keep_new.any():
            st.new_holds.append((real.key[keep_new], real.st[keep_new], worker[keep_new], fin_all[keep_new]))
        self._book_held(real.st[rel_new], fin_all[rel_new], c_rel[rel_new])
        ev_done = np.isfinite(e_rel) & (e_entry >= 0)
        sec = self._ev_sec   # a second tier of blocking servers (second_tier.py)
        g2, t2, k2, r2 = self._second_releases(sec, len(status)) if sec is not None else \
            (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.uint64), np.zeros(0))
        gone = np.concatenate([done_entry, e_entry[ev_done], g2])
        times = np.concatenate([done_t, e_rel[ev_done], t2])
        exp_key = np.concatenate([real.key[rel_new], self._h_key[gone], k2])
        exp_t = np.concatenate([c_rel[rel_new], times, r2])
        exp_key, first = np.unique(exp_key, return_index=True)   # a request holding workers at both tiers
        exp_t = exp_t[first]
        self._book_held(self._h_st[gone], self._h_booked[gone], np.maximum(times, self._h_from[gone]))
        keep = np.ones(len(self._h_key), dtype=bool)
        keep[gone] = False
        for name in ("_h_key", "_h_st", "_h_w", "_h_from", "_h_booked"):
            setattr(self, name, getattr(self, name)[keep])
        self._add_holds()
        if len(deferred):
            self._snap_decided(lv, deferred.key, t0)
        self._put_back(lv, real.take(~dec), t1, inbox)
        order = np.argsort(exp_key)
        self._ev_expect = (exp_key[order], exp_t[order], np.zeros(len(order), dtype=bool))
        try:
            for k in range(lv, len(net.levels)):
                if sec is not None and k in sec.levels:
                    self._commit_second(k, t0, t1, inbox, sec)
                elif k > lv:
                    self._admit_arrivals(k, t1, inbox)
                self._settle_decided(k, t0, t1, marks, inbox)
            if not self._ev_expect[2].all():
                raise SimulationError(f"blocking servers: {int((~self._ev_expect[2]).sum())} workers predicted "
                                      f"free before {t1:.6f} s were not released (please report this)")
        finally:
            self._ev_expect = None

    def _admit_decided(self, lv: int, b: Batch, s_dec: np.ndarray, t0_ns: np.ndarray, svc: np.ndarray) -> Batch:
        """Book the admissions a kernel decided at blocking servers (``s_dec``: ADMITTED,
        QUEUE_FULL, DOWN or GIVES_UP; starts in ns and services): refusals fail, a give-up
        waits until its patience ends (FLAG_TIMEOUT), the admitted wait. Returns ``b`` with
        its times."""
        b.start = t0_ns / NS
        b.fin = (t0_ns + svc) / NS
        down = s_dec == DOWN
        b.start[down] = b.arr[down]
        b.fin[down] = b.arr[down]
        gave = s_dec == GIVES_UP
        if gave.any():
            b.flags = b.flags.copy()
            b.flags[gave] |= FLAG_TIMEOUT
            b.start[gave] = b.arr[gave] + self.net.st_timeout[b.st[gave]]
            b.fin[gave] = b.start[gave]
            s_dec = np.where(gave, ADMITTED, s_dec).astype(np.int8)
        self.stations.last = (b, s_dec)
        self._commit_admission(lv, *self._users_of(b.take(s_dec == ADMITTED), b.take(s_dec == QUEUE_FULL),
                                                   b.take(s_dec == DOWN)))
        return b

    def _preview(self, lv: int, every: Batch) -> Batch:
        """Admit the arrivals at the level's stations that do not block on copies of the
        stations (as ``_admit_level`` will admit them for real): the admitted, whose
        journeys downstream may start in the window."""
        others = every.take(~self.stations.hold[every.st]) if len(every) else every
        if not len(others):
            return Batch.empty()
        real = self.stations
        trial = copy.copy(real)
        trial.free, trial.ring, trial.count, trial.new_holds = real.free.copy(), real.ring.copy(), real.count.copy(), []
        admitted = trial.admit(others, self._in_system(lv))[0]
        if len(admitted) and self._is_db_server[admitted.st].any():   # as _sessions will mark them
            admitted.flags = self._session_read_flags(admitted.flags, admitted.st)
        return admitted

    def _event_candidates(self, pend: Batch, waiting: np.ndarray, inbox: list[list[Batch]], t1: float) -> Batch:
        """The requests ``_take_arrivals`` would give the blocking level up to ``t1``, after
        those waiting undecided, without taking them (nothing changes yet)."""
        lv = self._lb
        parts = [pend.take(waiting)] if waiting.any() else []
        arrivals = Batch.concat(inbox[lv])
        parts.append(arrivals.take(arrivals.arr < t1) if len(arrivals) else arrivals)
        late = self._late_checks.get(lv)
        if late is not None:
            parts.append(late.take(late.arr < t1))
        checks = getattr(self, "_checks", None)
        if checks is not None and lv < len(checks) and len(checks[lv]):
            c = checks[lv]
            parts.append(c.take(c.arr <= np.nextafter(t1, -np.inf)))
        return Batch.concat(parts)

    def _event_inputs(self, cand: Batch, busy: Batch, t1: float) -> tuple | None:
        """The kernel's arrays: services at B, the journeys downstream of the candidates, of
        the requests already on their way that move on in the window (``busy``: those
        admitted at B; the levels below hold the others) and of the apply jobs of
        replicated databases, the held workers' state. None when a held worker's request
        is nowhere (the sweeps count that as lost)."""
        st, net, lb = self.stations, self.net, self._lb
        n_st, c = st.free.shape
        user = (cand.flags & FLAG_CHECK) == 0
        c_svc = st._service_ns(cand, np.unique(cand.st)) if len(cand) else np.zeros(0, dtype=np.int64)
        c_down = user & ((cand.flags & FLAG_NOT_MODIFIED) == 0) & self._has_route[cand.st]
        jc = self._journeys(cand.take(c_down), self._session_read_flags(cand.flags[c_down], cand.st[c_down]), t1)
        # on their way: finished at B or at a station downstream before t1, with a station to go to
        ways = [busy] + [self.pending[k] for k in range(lb + 1, len(net.levels))]
        on = Batch.concat(ways)
        moving = (((on.flags & (FLAG_CHECK | FLAG_TIMEOUT | FLAG_INTERNAL)) == 0) & (on.fin < t1)
                  & (self._goes_on(on.st) | self._join_waits(on.key))   # a join: on to its second database
                  & ~(((on.flags & FLAG_NOT_MODIFIED) != 0) & (net.st_kind[on.st] == SERVER))
                  ) if len(on) else np.zeros(0, dtype=bool)
        if self._ev_caches and moving.any():   # a hit at a cache is answered there
            there = on.take(moving)
            hits = self._cache_hits(there, np.floor(there.arr))
            if self._joins_on and hits.any():   # a cache holds items, not joins (as in _journeys)
                hits &= ~self._is_join(there)
            moving[moving] = ~hits
        ev = on.take(moving)
        je = self._journeys(ev, ev.flags, t1)
        # apply jobs shipped before the window that reach their replica in it (Replication._due_applies)
        d = self._delayed if self._replicated else Batch.empty()
        due = d.take(d.arr < t1) if len(d) else d
        # a balancer's health checks at its backends downstream (choice_hops.py; or one no request reaches)
        due = Batch.concat([due, self._downstream_checks(t1)])
        n, n_ev, n_ac, n_ae = len(cand), len(ev), len(jc[4]), len(je[4])
        n_rows = n + n_ev + n_ac + n_ae + len(due)
        depth = self._ev_depth
        jp = np.full((n_rows, depth), END, dtype=np.int64)
        js = np.zeros((n_rows, depth), dtype=np.int64)
        ja_first = np.full((n_rows, depth), -1, dtype=np.int64)
        ja_n = np.zeros((n_rows, depth), dtype=np.int64)
        rows = np.flatnonzero(c_down)
        base_c, base_e = n + n_ev, n + n_ev + n_ac   # the apply jobs of the candidates, then of the others
        jp[rows], js[rows], ja_n[rows] = jc[0], jc[1], jc[3]
        ja_first[rows] = np.where(jc[2] >= 0, jc[2] + base_c, -1)
        jp[n:n + n_ev], js[n:n + n_ev], ja_n[n:n + n_ev] = je[0], je[1], je[3]
        ja_first[n:n + n_ev] = np.where(je[2] >= 0, je[2] + base_e, -1)
        # cross-shard queries: their parts at the other shards (candidates' first, then the others')
        pc, pe = jc[7], je[7]
        px_first = np.zeros((n_rows, depth), dtype=np.int64)
        px_n = np.zeros((n_rows, depth), dtype=np.int64)
        px_first[rows], px_n[rows] = pc[0], pc[1]
        px_first[n:n + n_ev], px_n[n:n + n_ev] = pe[0] + len(pc[2]), pe[1]
        parts = (px_first, px_n, np.concatenate([pc[2], pe[2]]), np.concatenate([pc[3], pe[3]]))
        # choices at balancers downstream (choice_hops.py): none without such balancers
        ch = [np.zeros((n_rows if self._ev_choice else 0, depth), dtype=a.dtype) for a in jc[8]]
        if self._ev_choice:
            for arr, c_part, e_part in zip(ch, jc[8], je[8]):
                arr[rows], arr[n:n + n_ev] = c_part, e_part
        jobs = slice(base_c, n_rows)
        jp[jobs, 0] = np.concatenate([jc[4], je[4], due.st])
        js[jobs, 0] = np.concatenate([jc[5], je[5], st._service_ns(due, np.unique(due.st)) if len(due)
                                      else np.zeros(0, dtype=np.int64)])
        e_t = np.concatenate([ev.fin, np.full(n_ac + n_ae, np.inf), due.arr])
        e_key = np.concatenate([ev.key, jc[6], je[6], due.key])
        e_delay = np.concatenate([np.zeros(n_ev), jc[9], je[9], np.zeros(len(due))])   # apply jobs' delays
        e_bst = np.full(len(e_t), -1, dtype=np.int64)
        e_bw = np.full(len(e_t), -1, dtype=np.int64)
        e_entry = np.full(len(e_t), -1, dtype=np.int64)
        free = st.free.copy()
        unk = np.full((n_st, c), np.nan)
        done_entry, done_t = np.zeros(0, dtype=np.int64), np.zeros(0)
        # the workers held at B (a second tier's: second_tier.py)
        hsel = np.arange(len(self._h_key)) if self._ev_chain is None else \
            np.flatnonzero(net.st_level[self._h_st] == lb)
        if len(hsel):
            hk, hs, hw, h_from = self._h_key[hsel], self._h_st[hsel], self._h_w[hsel], self._h_from[hsel]
            pos = self._lookup(ev.key, np.arange(n_ev, dtype=float), hk)   # on its way in the window
            is_ev = ~np.isnan(pos)
            j = pos[is_ev].astype(np.int64)
            e_bst[j], e_bw[j], e_entry[j] = hs[is_ev], hw[is_ev], hsel[is_ev]
            unk[hs[is_ev], hw[is_ev]] = ev.fin[j]   # no sooner than its next arrival
            fin = self._lookup(on.key, on.fin, hk)       # else where it is: it leaves at its end there
            own = self._lookup(busy.key, busy.fin, hk)   # still at B
            rest = ~is_ev & ~np.isnan(fin)
            if not (is_ev | rest).all():
                return None
            gone = rest & (fin < t1)   # at its last station, or giving up, or a 304 answered at B
            done_entry, done_t = hsel[gone], np.maximum(fin[gone], h_from[gone])
            free[hs[gone], hw[gone]] = done_t
            at_b = rest & ~gone & ~np.isnan(own)   # in its own service at B until after t1
            unk[hs[at_b], hw[at_b]] = own[at_b]
            later = rest & ~gone & np.isnan(own)   # downstream after t1 (a failure at t1 may lose it)
            unk[hs[later], hw[later]] = t1
        return (c_svc, user, c_down, e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, unk, free,
                done_entry, done_t, parts, ch, e_delay)

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray, want: np.ndarray) -> np.ndarray:
        """``values`` at the ``keys`` equal to ``want`` (NaN where absent)."""
        out = np.full(len(want), np.nan)
        if len(keys):
            order = np.argsort(keys, kind="stable")
            k = keys[order]
            i = np.minimum(np.searchsorted(k, want), len(k) - 1)
            hit = k[i] == want
            out[hit] = values[order][i[hit]]
        return out

    def _book_held(self, s: np.ndarray, lo: np.ndarray, t: np.ndarray) -> None:
        """Book held time beyond the servers' own service, [lo, t) at stations ``s``."""
        if len(t) and (t > lo).any():
            self.ledger.book_busy(s, lo, t, float(lo.min()), float(t.max()))

    def _check_release(self, keys: np.ndarray, times: np.ndarray) -> None:
        """A release the event window predicted must come at the predicted time, and no
        other release may come (the kernel found them all)."""
        ek, et, seen = self._ev_expect
        if len(keys) and len(self._h_key) and np.isin(keys, self._h_key).any():
            raise SimulationError("blocking servers: a worker was released that the event window did not "
                                  "predict (please report this)")
        if not len(ek) or not len(keys):
            return
        i = np.minimum(np.searchsorted(ek, keys), len(ek) - 1)
        hit = ek[i] == keys
        if hit.any():
            j = i[hit]
            if (np.asarray(times, dtype=float)[hit] != et[j]).any():
                raise SimulationError("blocking servers: a worker was released at another time than "
                                      "predicted (please report this)")
            seen[j] = True
