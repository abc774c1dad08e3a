"""Health checks (heartbeats) of a load balancer's backends, and what they cost.

Every ``interval`` the balancer checks all its backends at once. A backend is
taken out after ``fall`` failed checks in a row and put back after ``rise``
passed checks in a row (HAProxy's ``inter``/``fall``/``rise``). Until then a
dead backend keeps receiving requests, which fail. Detection therefore takes
between ``(fall − 1) × interval`` and ``fall × interval`` after the failure.

A check is a small request at each live backend replica (:class:`CheckArrivals`):
it queues with the users' requests and takes a worker for the balancer's
``health_check_cost_ms`` (at a server; one ordinary request at a balancer or a
cache), so a short interval shows up as utilization and, near saturation, as
latency. Checks are not user requests: they never count as arrived, served or
failed, and leave the backend as soon as their worker time is booked.
"""
from __future__ import annotations

import math

import numpy as np

from .flight import Batch, FLAG_CHECK, FLAG_TIMEOUT


class HealthChecks:
    def __init__(self, n_backends: int, interval: float, fall: int, rise: int, first_check: float) -> None:
        self.interval = interval
        self.fall = fall
        self.rise = rise
        self.believed_up = np.ones(n_backends, dtype=bool)
        self.misses = np.zeros(n_backends, dtype=np.int64)
        self.passes = np.zeros(n_backends, dtype=np.int64)
        self.next_check = first_check
        self.anchor = first_check   # checks happen at anchor + k × interval (k integer)

    def times_in(self, t0: float, t1: float) -> np.ndarray:
        """The check times in [t0, t1), computed from the grid so that they do not
        depend on how the run is sliced into windows."""
        k0 = math.floor((t0 - self.anchor) / self.interval) - 1
        k1 = math.ceil((t1 - self.anchor) / self.interval) + 1
        t = self.anchor + np.arange(k0, k1 + 1) * self.interval
        return t[(t >= t0) & (t < t1)]

    def steady(self, really_up: np.ndarray) -> bool:
        """No check can change anything until some backend goes up or down."""
        return bool((self.believed_up == really_up).all())

    def skip_to(self, now: float) -> None:
        """Move the next check past ``now`` on the same grid, changing nothing."""
        if self.next_check <= now:
            k = np.floor((now - self.next_check) / self.interval) + 1
            self.next_check += k * self.interval

    def check(self, really_up: np.ndarray) -> bool:
        """Run one round of checks; returns True when some backend changed state."""
        self.misses = np.where(really_up, 0, self.misses + 1)
        self.passes = np.where(really_up, self.passes + 1, 0)
        before = self.believed_up.copy()
        self.believed_up[self.misses >= self.fall] = False
        self.believed_up[self.passes >= self.rise] = True
        self.next_check += self.interval
        return bool((before != self.believed_up).any())


class CheckArrivals:
    """Health checks as requests at the backends (a part of the simulation).

    A window's checks are queued when the window starts and admitted with the
    users' requests of their station, in time order: whole at the station's
    level, or tick by tick with the requests a load-aware balancer admits at once."""

    def _queue_checks(self, t0: float, t1: float) -> None:
        net, up = self.net, self.stations.up
        parts: list[Batch] = []
        for bi, bs in enumerate(self.balancers):
            if bs.bal.check_cost_s <= 0 or not up[bs.bal.station]:
                continue   # free checks (cost 0), or a dead balancer that checks nothing
            live = bs.bal.backends[up[bs.bal.backends]]
            times = bs.health.times_in(t0, t1)
            if not len(live) or not len(times):
                continue
            st = np.tile(live, len(times))
            arr = np.repeat(times, len(live))
            parts.append(Batch(st=st, birth=arr, arr=arr, start=arr, fin=arr,
                               flags=np.full(len(st), FLAG_CHECK, dtype=np.int8),
                               item=np.full(len(st), bi, dtype=np.int64)))
        self._checks = [Batch.empty() for _ in net.levels]
        if parts:
            b = Batch.concat(parts)
            lv = net.st_level[b.st]
            for level in np.unique(lv).tolist():
                mine = b.take(lv == level)
                self._checks[level] = mine.take(np.argsort(mine.arr, kind="stable"))

    def _due_checks(self, level: int, until: float = math.inf, stations: np.ndarray | None = None) -> Batch:
        """Take the queued checks of ``level`` that arrive by ``until`` (at ``stations`` only)."""
        checks = getattr(self, "_checks", None)
        if checks is None or level >= len(checks) or not len(checks[level]):
            return Batch.empty()
        b = checks[level]
        due = b.arr <= until
        if stations is not None:
            due &= np.isin(b.st, stations)
        if not due.any():
            return Batch.empty()
        taken, checks[level] = b.split(due)
        return taken

    def _note_checks_in(self, checks: Batch) -> None:
        """Admitted health checks: each holds a place at its station until it leaves (its end,
        or when it gives up), though it is not in ``pending`` (``_in_system``)."""
        st, fin = self._checks_in_system()
        self._checks_in = (self.net, np.concatenate([st, checks.st]), np.concatenate([fin, checks.fin]))

    def _checks_in_system(self) -> tuple[np.ndarray, np.ndarray]:
        """(station, leaves at) of the admitted checks that may not have left yet."""
        kept = getattr(self, "_checks_in", None)
        if kept is None or kept[0] is not self.net:   # (a recompile renumbers the stations)
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        _, st, fin = kept
        if len(fin) and (fin <= self.now).any():
            st, fin = st[fin > self.now], fin[fin > self.now]
            self._checks_in = (self.net, st, fin)
        return st, fin

    def _in_system(self, lv: int) -> np.ndarray:
        """Requests at each station of level ``lv`` (waiting or in service) when its arrivals
        are admitted, health checks included: the admission's closed form for one worker
        holds only while this many plus the new arrivals fit in the waiting room (with
        checks left out, a room full of them admitted a request it refuses, depending on
        how the run was stepped). Requests that have left since the count are still in it:
        it is an upper bound, which is safe (the exact path is taken)."""
        n = self.net.n_stations
        counts = np.bincount(self.pending[lv].st, minlength=n)
        st, _ = self._checks_in_system()
        return counts + np.bincount(st, minlength=n) if len(st) else counts

    def _admit_users(self, batch: Batch, in_system: np.ndarray) -> tuple[Batch, Batch, Batch]:
        """``stations.admit``, with the health checks among the arrivals taken out again
        once admitted: their worker time is booked (utilization), nothing else."""
        return self._users_of(*self.stations.admit(batch, in_system))

    def _users_of(self, admitted: Batch, full: Batch, down: Batch) -> tuple[Batch, Batch, Batch]:
        """An admission's outcome with its health checks taken out (their worker time booked)."""
        if self._tracer is not None:   # sampled requests only (tracing.py); checks are skipped there
            self._tracer.admitted(admitted, self.net)
            self._tracer.admitted(Batch.concat([full, down]), self.net, rejected=True)
        if not any(len(b) and ((b.flags & FLAG_CHECK) != 0).any() for b in (admitted, full, down)):
            return admitted, full, down
        is_check = (admitted.flags & FLAG_CHECK) != 0
        if is_check.any():
            checks, admitted = admitted.split(is_check)
            self._note_checks_in(checks)
            ran = (checks.flags & FLAG_TIMEOUT) == 0      # a check that would wait too long never runs
            if ran.any():
                st, start, fin = checks.st[ran], checks.start[ran], checks.fin[ran]
                self.ledger.book_busy(st, start, fin, float(start.min()), float(fin.max()))
        full = full.take((full.flags & FLAG_CHECK) == 0) if len(full) else full
        down = down.take((down.flags & FLAG_CHECK) == 0) if len(down) else down
        return admitted, full, down
