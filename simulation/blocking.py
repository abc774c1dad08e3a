"""Blocking servers (``blocking_calls``): a worker stays busy until its downstream answer returns.

A server with ``blocking_calls`` is thread-per-request (gunicorn sync workers, Django,
Flask): the worker that took a request is *held* from the start of its service until
the request leaves the network (answered, or failed downstream). Its station sets the
worker's free time to +inf when it admits a user request (``stations.py``, ``hold``)
and this module keeps a table of held workers (request key, station, worker, end of
the server's own service) and frees each worker at the moment its request leaves.

The catch is causality: the server's admission needs release times that its
downstream computes later. Windows with blocking servers are therefore processed in
*sweeps* over the levels from the lowest blocking level up, each level with its own
horizon ``H`` (events before it are final; a level never runs ahead of the levels
that feed it). At a blocking level, the waiting requests are admitted twice on copies
of the stations: pessimistically (workers whose release is unknown are held for ever)
and optimistically (they are free at a lower bound of their release: where their
request now is, never beyond the window's end, where a failure may free them). Admission is monotone in the workers' free times, so where the two
agree (per station, up to the first request where they differ) the outcome is the
true one and is committed; the rest waits (``start = +inf`` in ``pending``) until
the downstream has advanced. The level's horizon then moves to the optimistic start
of its first undecided request: nothing it sends later can arrive earlier (where the
optimistic trial has it give up, the earliest a worker of its station can be free:
``_first_start``). Each
sweep advances some level past at least one event, so the loop is bounded by the
window's events (a cap turns a bug into an error instead of a hang). A request that is
at its last station (a database, a server without downstream calls) and ends inside
the window releases its worker at its known end at once, which keeps sweeps few:
about one per request while a blocking server has all its workers held.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .balanced_window import BalancedWindow, lrt_on_the_slow_path
from .blocking_holds import HeldWorkers, _sure_next_stations
from .blocking_rooms import WaitingRooms
from .blocking_window import EventWindow
from .second_tier import SecondTierWindow
from .compiler import CACHE, LB, SimulationError
from .flight import FLAG_CHECK, FLAG_INTERNAL, FLAG_SESSION_LOST, FLAG_TIMEOUT, Batch
from .stations import ADMITTED

PER_STATION = 6   # waiting requests per blocking station decided in one sweep
CHUNK = 8      # arrivals per blocking station looked at in one sweep (rounds cost grows with it)
STEP_S = 1e-9   # a horizon moves at least one nanosecond past the event that sets it
HUGE_COUNT = 2**40   # "the waiting room may overflow": keeps a trial off the closed form


class Blocking(HeldWorkers, WaitingRooms, EventWindow, BalancedWindow, SecondTierWindow):
    def _setup_blocking(self) -> None:
        net = self.net
        hold = self.stations.hold
        self._holding = bool(hold.any())
        self._h_key = np.zeros(0, dtype=np.uint64)
        self._h_st = np.zeros(0, dtype=np.int64)
        self._h_w = np.zeros(0, dtype=np.int64)
        self._h_from = np.zeros(0)     # end of the server's own service: held beyond it
        self._h_booked = np.zeros(0)   # busy time booked up to here
        self._w_key = np.zeros(0, dtype=np.uint64)   # requests waiting undecided at blocking servers,
        self._w_lb = np.zeros(0)                      # a lower bound of their release (_note_waiting)
        self._w_sure = np.zeros(0, dtype=bool)        # and whether they surely leave then
        self._held_lost = 0            # entries whose request vanished unreleased (a bug if > 0)
        self._readmit = True           # after a (re)compile: waiting requests at non-blocking stations
        self._bump: float | None = None
        self._bumps = 0                # one-nanosecond steps taken (ties at one instant)
        self._late_checks: dict[int, Batch] = {}   # health checks at blocking servers still waiting
        if "_room_keys" not in self.__dict__:   # (kept through a recompile: their seconds may be closed)
            self._room_setup()
        self._chunk: dict[int, int] = {}   # per level: arrivals per blocking station looked at in a sweep
        self._cur_inbox: list[list[Batch]] | None = None
        self._ev_depth = None          # a tier decided event by event (blocking_window.py)
        self._ev_chain = None          # the levels of the tiers of blocking servers downstream it follows
        self._ev_des = False           # decided by balanced_window.py's pass
        self._ev_sec = None            # that pass's second tier, while it is booked
        self._ev_caches = False
        self._ev_tie = np.zeros(0, dtype=bool)
        self._ev_expect = None
        self._ev_windows = self.__dict__.get("_ev_windows", 0)
        self._ev_fallbacks = self.__dict__.get("_ev_fallbacks", 0)
        again = hasattr(self, "_next_sure")
        self._next_sure = np.full(net.n_stations, -1, dtype=np.int64)
        self._ev_bal = None            # balancers that choose in the event window (balanced_window.py)
        self._ev_choice: list[int] = []   # balancers downstream that it follows (choice_hops.py)
        self._ev_lb_out: list[Batch] = []
        # with blocking servers: _balanced_setup
        self._one_tick = not self._holding and (lrt_on_the_slow_path(self) or self.needs_one_tick())
        # several primaries: their levels are admitted in stretches no longer than the lag
        # (window.py's _admit_primaries), so windows can be long (a balancer never sends to a
        # database: their requests all come through the level's admission)
        self._mp_cap = None   # a cap on windows: tests and benchmarks set one tick (the old way)
        if not self._holding:
            return
        self._lb = int(net.st_level[hold].min())
        self._hold_levels = set(np.unique(net.st_level[hold]).tolist())
        self._terminal = ~self._has_route & (net.st_kind != LB) & (net.st_kind != CACHE)
        # local sessions at blocking servers follow their requests in arrival order, when they
        # arrive (admission there is decided out of order): see _take_arrivals, _sweep_sessions
        self._local_hold = self._is_local_server & hold
        self._is_local_server = self._is_local_server & ~hold
        self._sweep_moves = {int(lv) for lv in np.unique(net.st_level[self._local_hold])}
        if not again:   # after a recompile, requests in flight may hold nothing: no tighter bounds
            self._next_sure = _sure_next_stations(self)
        self._ev_depth = self._event_depth()
        self._balanced_setup()

    def _undecided_from(self) -> int | float:
        """The first second in which a request still waits undecided at a blocking server
        and may yet be refused (its failure at arrival is booked in that second): keep it
        open; and the current second while one known to be in its room waits
        (blocking_rooms.py)."""
        first = math.inf
        for lv in self._hold_levels:
            p = self.pending[lv]
            if len(p):
                w = np.isinf(p.start) & ~self._in_room(p)
                if w.any():
                    first = min(first, math.floor(float(p.arr[w].min())))
        return min(first, self._room_open_from())

    def _decide_before_failure(self, going: np.ndarray) -> None:
        """Blocking stations about to stop serving (at ``now``, a window's end) lose the
        requests still undecided there (waiting, start = +inf), as ``node_failed``; but some
        of them were refused at their arrival (the waiting room was full then) or gave up
        waiting before ``now``, which only the releases before ``now`` decide. Those are all
        known at a window's end (every level has reached it): so where the two trials of
        the sweeps agree on a refusal or a give-up before ``now``, that is the request's
        outcome, and the failure does not count it. (The event window decides them as
        they happen; before 2026-11-30 the sweeps counted them as lost to the failure.)"""
        hold = self.stations.hold
        going = going[hold[going]]
        if not len(going):
            return
        for lv in sorted(self._hold_levels):
            p = self.pending[lv]
            und = np.isinf(p.start) & np.isin(p.st, going) & ((p.flags & (FLAG_CHECK | FLAG_INTERNAL)) == 0) \
                if len(p) else None
            if und is None or not und.any():
                continue
            cand, self.pending[lv] = p.split(und)
            late = self._late_checks.get(lv)   # health checks waiting there take places too (then lost)
            checks = late.take(np.isin(late.st, going) & (late.arr < self.now)) if late is not None else Batch.empty()
            cand = Batch.concat([cand, checks])
            cand = cand.take(np.lexsort((cand.key, cand.arr, cand.st)))
            self._cur_inbox = [[] for _ in self.net.levels]   # between windows: no arrivals in hand
            try:
                unc = self._known_releases(self.now, cand)
                (bo, so), (bp, sp) = self._trial(cand, unc, True), self._trial(cand, unc, False)
            finally:
                self._cur_inbox = None
            gave = lambda b: (b.flags & FLAG_TIMEOUT) != 0   # noqa: E731
            refused = (so != ADMITTED) & (sp != ADMITTED) & (so == sp)
            gave_up = (so == ADMITTED) & (sp == ADMITTED) & gave(bo) & gave(bp) & (bo.fin == bp.fin) \
                & (bp.fin <= self.now)
            user = (bp.flags & FLAG_CHECK) == 0
            refused, gave_up = refused & user, gave_up & user
            decided = refused | gave_up
            if not decided.any():
                self.pending[lv] = Batch.concat([self.pending[lv], cand.take((cand.flags & FLAG_CHECK) == 0)])
                continue
            if np.array_equal(bp.key, cand.key) and np.array_equal(bp.arr, cand.arr):   # the same order: by place
                lost = cand.take(~decided & ((cand.flags & FLAG_CHECK) == 0))
            else:   # (a live edit of a client's rate may repeat a key: by place where it can)
                cand = cand.take((cand.flags & FLAG_CHECK) == 0)
                lost = cand.take(~np.isin(cand.key, bp.key[decided]))
            self.pending[lv] = Batch.concat([self.pending[lv], lost])
            full, quit_ = bp.take(refused), bp.take(gave_up)
            if self._tracer is not None:
                self._tracer.admitted(full, self.net, rejected=True)
                self._tracer.admitted(quit_, self.net)
            self._fail("queue_full", full.arr, full.key)
            self._fail("timeout", quit_.fin, quit_.key)

    def _readmit_waiting(self, inbox: list[list[Batch]]) -> None:
        """After a recompile: requests left waiting undecided (start = +inf) at levels where
        no server blocks any more are admitted again as arrivals (at a level that still has
        blocking servers the sweeps decide them, at every station of the level, as before)."""
        self._readmit = False
        for lv, p in enumerate(self.pending):
            if self._holding and lv in self._hold_levels:
                continue
            wait = np.isinf(p.start) if len(p) else None
            if wait is not None and wait.any():
                back, self.pending[lv] = p.split(wait)
                inbox[lv].append(back)

    # ----- one window ---------------------------------------------------------------------
    def _blocking_window(self, t0: float, t1: float, inbox: list[list[Batch]], marks: list[float]) -> None:
        net = self.net
        n_lv = len(net.levels)
        self._cur_inbox = inbox
        for lv in range(self._lb):   # below the blocking servers nothing depends on their releases
            if self._deferred:   # load-aware balancers choosing with this level's other senders (contested.py)
                self._choose_deferred(lv, inbox)
            self._admit_whole_level(lv, inbox, t1)
            self._settle_level(lv, t0, t1, marks, inbox)
        if self._ev_des:
            if self._balanced_window(t0, t1, inbox, marks):
                self._cur_inbox = None
                self._book_held_to(t0, t1)
                return
            self._route_diverted()   # the kernel could not: tick by tick, then the other paths
        if self._ev_depth is not None and self._ev_chain is None and self._event_window(t0, t1, inbox, marks):
            self._cur_inbox = None
            self._book_held_to(t0, t1)
            return
        H = {lv: t0 for lv in range(self._lb, n_lv)}
        self._w_key, self._w_lb, self._w_sure = self._w_key[:0], self._w_lb[:0], self._w_sure[:0]   # afresh per window
        mark_pos = {lv: 0 for lv in H}
        events = sum(len(b) for lv in H for b in inbox[lv]) + sum(len(self.pending[lv]) for lv in H)
        # each request can be an event at every level from the blocking servers up (behind a
        # second tier of blocking servers, its arrivals there come during the sweeps)
        limit = 4 * (events * len(H) + len(self._h_key)) + 64 * (n_lv + 1)
        for _ in range(limit):
            moved = False
            cap = t1
            for lv in range(self._lb, n_lv):
                F = self._advance_level(lv, H[lv], cap, t1, inbox) if lv in self._hold_levels \
                    else self._admit_arrivals(lv, cap, inbox)
                if F > H[lv]:
                    k = mark_pos[lv]
                    while k < len(marks) and (marks[k] <= F or F >= t1):
                        k += 1
                    self._settle_decided(lv, H[lv], F, marks[mark_pos[lv]:k], inbox)
                    mark_pos[lv], H[lv], moved = k, F, True
                cap = min(cap, H[lv])
            if all(h >= t1 for h in H.values()):
                break
            if not moved:   # ties at one instant: step one nanosecond
                lv = min(lv for lv, h in H.items() if h < t1)
                self._bump = H[lv] + STEP_S
                self._bumps += 1
            else:
                self._bump = None
        else:
            raise SimulationError(f"blocking servers: the window {t0:.6f}–{t1:.6f} s did not settle "
                                  f"in {limit} sweeps")
        self._bump = None
        self._cur_inbox = None
        self._book_held_to(t0, t1)

    def _book_held_to(self, t0: float, t1: float) -> None:
        """Held time beyond the servers' own service, up to the end of the window."""
        lo = self._h_booked
        if len(lo) and (t1 > lo).any():
            self.ledger.book_busy(self._h_st, lo, np.full(len(lo), t1), t0, t1)
            self._h_booked = np.maximum(lo, t1)

    def _settle_decided(self, lv: int, h: float, F: float, marks: list[float], inbox: list[list[Batch]]) -> None:
        """``_settle_level``, with the undecided requests of a blocking level (start = +inf)
        kept out of the whole seconds' queue snapshots: some of them will be refused at their
        arrival (their waiting room was full). Each is added to the snapshots it waited
        through once it is decided (``_snap_decided``). Undecided requests are the tail of
        the level's pending batch (``_put_back`` appends them), so taking them out and back
        keeps its order."""
        p = self.pending[lv]
        und = np.isinf(p.start) if marks and lv in self._hold_levels and len(p) else None
        if und is None or not und.any():
            self._settle_level(lv, h, F, marks, inbox)
            return
        tail, self.pending[lv] = p.split(und)
        self._settle_level(lv, h, F, marks, inbox)
        self.pending[lv] = Batch.concat([self.pending[lv], tail])

    def _snap_decided(self, lv: int, keys: np.ndarray, h: float) -> None:
        """Requests just decided at a blocking level (``keys``) that are admitted wait at the
        whole seconds up to the level's horizon ``h`` that passed while they were undecided:
        add them to those seconds' queue snapshots (the seconds are still open:
        ``_undecided_from``)."""
        p = self.pending[lv]
        got = np.isin(p.key, keys) & np.isfinite(p.start) & ((p.flags & (FLAG_CHECK | FLAG_INTERNAL)) == 0)
        if not got.any():
            return
        b = p.take(got)
        lo = max(math.ceil(float(b.arr.min())), self.metrics.seconds + 1)
        marks = [float(k) for k in range(lo, math.floor(h) + 1)]
        if marks:
            self._snap_waiting(b, marks)

    def _book_before(self, lv: int, keys: np.ndarray, h: float) -> None:
        """Requests just decided at a blocking level (``keys``) that started before its
        horizon ``h`` (by at most ``STEP_S``: the horizon moved one nanosecond past a start):
        book their service before ``h``, which the level's settling from ``h`` on leaves
        out. (Before 2026-11-30 that nanosecond was lost, so a utilization differed in its
        last printed digit with how the run was stepped.)"""
        p = self.pending[lv]
        early = np.isin(p.key, keys) & (p.start < h) & ((p.flags & FLAG_TIMEOUT) == 0)
        if early.any():
            st, start, fin = p.st[early], p.start[early], np.minimum(p.fin[early], h)
            self.ledger.book_busy(st, start, fin, float(start.min()), h)

    def _admit_whole_level(self, lv: int, inbox: list[list[Batch]], t1: float) -> None:
        checks = self._due_checks(lv)
        if inbox[lv] or len(checks) or (self._replicated and lv in self._apply_levels):
            self._admit_level(lv, Batch.concat(inbox[lv] + [checks]), t1)
        inbox[lv] = []

    def _take_arrivals(self, lv: int, before: float, inbox: list[list[Batch]], move: bool = True) -> Batch:
        """The level's arrivals (and health checks) before ``before``; the rest stay. The
        sessions of those at blocking servers keeping them in memory move now (``move``),
        or in ``_sweep_sessions``."""
        arrivals = Batch.concat(inbox[lv])
        inbox[lv] = []
        if len(arrivals):
            now_part, later = arrivals.split(arrivals.arr < before)
            if len(later):
                inbox[lv].append(later)
            arrivals = now_part
            if move and self._local_hold.any() and len(arrivals):
                self._local_sessions(arrivals, self._local_hold[arrivals.st] & ((arrivals.flags & FLAG_CHECK) == 0))
        late = self._late_checks.pop(lv, None)
        if late is not None:
            due, wait = late.split(late.arr < before)
            if len(wait):
                self._late_checks[lv] = wait
            arrivals = Batch.concat([arrivals, due])
        return Batch.concat([arrivals, self._due_checks(lv, float(np.nextafter(before, -np.inf)))])

    def _admit_arrivals(self, lv: int, cap: float, inbox: list[list[Batch]]) -> float:
        """Admit a level without blocking servers up to ``cap``. Arrivals at one instant (with
        deterministic service, at a database after a failure freed many workers at once) go
        in the order of their keys: not of the sweeps that routed them (blocking_events.py)."""
        batch = self._take_arrivals(lv, cap, inbox)
        if len(batch) > 1:
            batch = batch.take(np.lexsort((batch.key, batch.arr)))
        if len(batch) or (self._replicated and lv in self._apply_levels):
            self._admit_level(lv, batch, cap)
        return cap

    def _put_back(self, lv: int, rest: Batch, F: float, inbox: list[list[Batch]]) -> None:
        """Undecided requests: those that arrived wait (start = +inf), the others stay
        arrivals; undecided health checks go back to their queue."""
        if not len(rest):
            return
        chk = (rest.flags & FLAG_CHECK) != 0
        if chk.any():   # kept here: the next window queues its own checks afresh (health.py)
            self._late_checks[lv] = Batch.concat([self._late_checks.get(lv, Batch.empty()), rest.take(chk)])
            rest = rest.take(~chk)
        came = rest.arr < F
        if came.any():
            w = rest.take(came)
            w.start = np.full(len(w), np.inf)
            w.fin = np.full(len(w), np.inf)
            self.pending[lv] = Batch.concat([self.pending[lv], w])
            if self._tracer is not None:
                self._tracer.waiting(w, self.net)
        if not came.all():
            inbox[lv].append(rest.take(~came))

    def _advance_level(self, lv: int, h: float, cap: float, t1: float, inbox: list[list[Batch]]) -> float:
        """Admit what is decided at a level with blocking servers; returns its new horizon."""
        pend = self.pending[lv]
        waiting = np.isinf(pend.start) if len(pend) else np.zeros(0, dtype=bool)
        deferred = Batch.empty()
        if waiting.any():
            deferred, self.pending[lv] = pend.split(waiting)
        # a bounded look-ahead: the arrivals up to the CHUNK-th next one per blocking station
        arrivals = Batch.concat(inbox[lv])
        n_hold = int(self.stations.hold[self.net.levels[lv]].sum())
        chunk = self._chunk.get(lv, CHUNK) * n_hold   # grows while nothing waits, back to CHUNK when something does
        if len(arrivals) > chunk:
            cap = min(cap, float(np.partition(arrivals.arr, chunk)[chunk]))
        moves = lv in self._sweep_moves
        batch = Batch.concat([deferred, self._take_arrivals(lv, cap, inbox, move=not moves)])
        hold = self.stations.hold[batch.st]
        cand, other = batch.split(hold)
        later = Batch.empty()
        F = cap
        keep = np.zeros(0, dtype=bool)
        if len(cand):
            cand = cand.take(np.lexsort((cand.arr, cand.st)))
            head = np.r_[True, cand.st[1:] != cand.st[:-1]]
            rank = np.arange(len(cand)) - np.maximum.accumulate(np.where(head, np.arange(len(cand)), 0))
            per_station = max(PER_STATION, self._chunk.get(lv, CHUNK))
            # behind the first tier of blocking servers every request holds a worker of that tier
            # (few of them wait), whose release the first tier needs: all are looked at
            # (_note_waiting), not only the first few
            if lv != self._lb:
                per_station = len(cand)
            if (rank >= per_station).any():   # decide the first few per station; the next ones wait
                later = cand.take(rank >= per_station)
                nxt_st, nxt_arr = cand.st[rank == per_station], cand.arr[rank == per_station]
                cand = cand.take(rank < per_station)
            unc = self._known_releases(t1, Batch.concat([cand, later, other]))
            (bo, so), (bp, sp) = self._trial(cand, unc, True), self._trial(cand, unc, False)
            both = (so == ADMITTED) & (sp == ADMITTED)
            differ = (so != sp) | (both & ((bo.start != bp.start) | (((bo.flags ^ bp.flags) & FLAG_TIMEOUT) != 0)))
            pos = np.arange(len(cand))
            first = np.full(self.net.n_stations, len(cand))
            self._chunk[lv] = CHUNK if differ.any() else min(self._chunk.get(lv, CHUNK) * 2, 64 * CHUNK)
            last = np.full(self.net.n_stations, -np.inf)
            low_at = np.full(self.net.n_stations, np.inf)
            if differ.any():
                np.minimum.at(first, cand.st[differ], pos[differ])
                j = np.unique(first[cand.st[differ]])
                low = self._first_start(cand, bo, so, j, unc)
                F = min(F, float((low + STEP_S).min()))
                last[cand.st[j]] = low   # nothing from j on at its station starts sooner (_first_start)
                low_at[cand.st[j]] = low
            if len(later):   # the next waiting request starts after the last one started before it
                started = (so == ADMITTED) & ((bo.flags & FLAG_TIMEOUT) == 0)
                np.maximum.at(last, cand.st[started], bo.start[started])
                F = min(F, float(np.maximum(nxt_arr, last[nxt_st]).min()))
            if self._bump is not None:
                F = max(F, min(self._bump, cap))
            F = max(F, h)
            keep = (pos < first[cand.st]) & (cand.arr < F)
            self._note_waiting(cand, ~keep, bo, so, sp, first, low_at)
        else:
            F = max(F, h)
        now_other = other.arr < F
        admit = Batch.concat([cand.take(keep) if len(cand) else cand, other.take(now_other)])
        if moves:
            self._moves_later = []
        try:
            if len(admit) or (self._replicated and lv in self._apply_levels):
                self._admit_level(lv, admit, F)
                self._add_holds()
                if len(deferred):
                    self._snap_decided(lv, deferred.key, h)
                    self._book_before(lv, deferred.key, h)
            self._put_back(lv, Batch.concat([cand.take(~keep) if len(cand) else cand, later,
                                             other.take(~now_other)]), F, inbox)
        finally:
            admitted_here, self._moves_later = self._moves_later, None
        if moves:
            self._sweep_sessions(lv, Batch.concat([cand, later]), deferred, F, admitted_here)
        return F

    def _sweep_sessions(self, lv: int, taken: Batch, deferred: Batch, F: float, admitted: list[Batch]) -> None:
        """Sessions in memory at a level with blocking servers, moved once per sweep in each
        user's arrival order: at the blocking servers every request that arrived before the
        level's new horizon ``F`` and had not moved yet (refused or not: they move at
        arrival), at the other servers those admitted in this sweep (before ``F`` too).
        Moving them in two passes (the blocking servers' at the arrivals' look-ahead, the
        others' at admission) changed each user's order with the sweeps, i.e. with how the
        run was stepped. The requests that lose their session are all in the level's
        pending batch now (admitted or waiting) or failed (refused)."""
        new = (self._local_hold[taken.st] & (taken.arr < F) & ((taken.flags & FLAG_CHECK) == 0)
               & ~np.isin(taken.key, deferred.key))
        movers = Batch.concat([taken.take(new)] + admitted)
        if not len(movers):
            return
        movers = movers.take(np.argsort(movers.key, kind="stable"))   # ties at one instant: by key
        lost = self._session_moves(movers.user, movers.arr, movers.st)
        if lost.any():
            p = self.pending[lv]
            hit = np.isin(p.key, movers.key[lost])
            p.flags = np.where(hit, p.flags | p.flags.dtype.type(FLAG_SESSION_LOST), p.flags)

    def _first_start(self, cand: Batch, bo: Batch, so: np.ndarray, j: np.ndarray,
                     unc: tuple[np.ndarray, ...]) -> np.ndarray:
        """For each station's first undecided request ``j``: no request from it on at its
        station starts (nor, then, goes downstream) before the returned time. Its optimistic
        start, where the optimistic trial admits it. Where that trial has it give up (its
        earliest start is past its patience), it gives up or is refused in truth too (the
        wait only grows with later releases): the give-up time then, or, when later, the
        earliest a worker of its station can be free (every worker's free time is at least
        its optimistic one before the batch, and the workers' least free time only grows as
        requests take them). Without that, a waiting room beyond the ring (its fullness
        estimated from the wait: refused while a release is unknown) kept the level's
        horizon at the give-up, short of the release that decides it (at the end of the
        holding request's own service here): the windows did not settle. The requests
        after ``j`` at its station (looked at in this sweep or not) start no sooner either."""
        t = np.where(so[j] == ADMITTED, bo.start[j], cand.arr[j])
        gave_up = (so[j] == ADMITTED) & ((bo.flags[j] & FLAG_TIMEOUT) != 0)
        if gave_up.any():
            s, w, lb = unc
            free = self.stations.free.copy()
            free[s, w] = lb
            earliest = np.maximum(cand.arr[j], free[cand.st[j]].min(axis=1))
            t = np.where(gave_up, np.maximum(t, earliest), t)
        return t

    def _trial(self, cand: Batch, unc: tuple[np.ndarray, ...], optimistic: bool) -> tuple[Batch, np.ndarray]:
        """Admit ``cand`` on a copy of the stations: pessimistic (unknown releases never
        come) or optimistic (they come at their lower bounds, and new holds end with the
        server's own service). Returns the sorted batch and the status of each request."""
        real = self.stations
        st = copy.copy(real)
        st.free, st.ring, st.count, st.new_holds = real.free.copy(), real.ring.copy(), real.count.copy(), []
        in_system = self._in_system(int(self.net.st_level[cand.st[0]]))
        if optimistic:
            s, w, lb = unc
            st.free[s, w] = lb
            st.hold = np.zeros_like(real.hold)
            # the same arithmetic as the real admission, which never takes the single-worker
            # closed form at a blocking server: that form trusts ``in_system`` for the waiting
            # room, a count at the horizon that misses the requests already gone downstream,
            # so for requests that arrived before the horizon it could admit what the waiting
            # room refuses, and the two trials would differ for ever (1-ns sweeps to the cap)
            in_system = np.where(real.hold, HUGE_COUNT, in_system)
        st.admit(cand.take(np.arange(len(cand))), in_system)
        return st.last

