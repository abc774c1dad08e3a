"""What admitted requests carry and change: user sessions, forged cookies,
traffic seen by caches, writes replicated to read replicas and stale reads.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import numpy as np

from .compiler import CACHE, SERVER
from .flight import Batch, FLAG_DB_SESSION, FLAG_FORGED, FLAG_SESSION_LOST

NO_SESSION, ORPHANED = -1, -2   # a user's session: none yet, or lost with its server


class RequestState:
    def _sessions(self, b: Batch) -> None:
        if not len(b):
            return
        self._forged_cookies(b)
        if self._replicated:
            self._replication(b)
        if self._caches:
            at_cache = self.net.st_kind[b.st] == CACHE
            if at_cache.any():
                for st in np.unique(b.st[at_cache]).tolist():
                    mine = b.st == st
                    self._caches[st].count(b.arr[mine], b.cls[mine] == 1)
        at_local = self._is_local_server[b.st]
        if self._moves_later is not None and at_local.any():   # moved with a blocking level's (blocking.py)
            self._moves_later.append(b.take(at_local))
        else:
            self._local_sessions(b, at_local)
        dbs = self._is_db_server[b.st]
        if dbs.any():
            b.flags[dbs] |= FLAG_DB_SESSION

    def _session_read_flags(self, flags: np.ndarray, st: np.ndarray) -> np.ndarray:
        """``flags`` of requests admitted at stations ``st``, with the session read that a
        server keeping sessions in the database asks of the next store (as ``_sessions``
        marks them when they are admitted): for the journeys predicted before that."""
        return flags | np.where(self._is_db_server[st], FLAG_DB_SESSION, 0).astype(flags.dtype)

    def _forged_cookies(self, b: Batch) -> np.ndarray:
        """Count the tampered cookies of ``b`` (admitted at servers), in the seconds they
        arrived in, and clear their flags; returns which were."""
        forged = ((b.flags & FLAG_FORGED) != 0) & (self.net.st_kind[b.st] == SERVER)
        if forged.any():
            # A tampered cookie is believed only where sessions live in unsigned cookies;
            # everywhere else the user just gets an empty session (Flask's BadSignature).
            st = b.st[forged]
            believed = (self.net.st_sessions[st] == 2) & ~self.net.st_signed[st]
            times = b.arr[forged]
            self._count("forged_accepted", times[believed])
            self._count("forged_rejected", times[~believed])
            b.flags[forged] &= ~FLAG_FORGED
        return forged

    def _local_sessions(self, b: Batch, at_local: np.ndarray) -> None:
        """Sessions in a server's memory: a request finds its user's session where the
        user's previous request (in time order) to the servers of its level left it, or
        loses it. The servers of one level are the alternatives a request can go to (one
        application: one session cookie); each level keeps its own (web → API: two)."""
        local = np.nonzero(at_local)[0]
        if len(local):
            lost = self._session_moves(b.user[local], b.arr[local], b.st[local])
            if lost.any():
                b.flags[local[lost]] |= FLAG_SESSION_LOST

    def _session_moves(self, user: np.ndarray, arr: np.ndarray, st: np.ndarray) -> np.ndarray:
        """Move the sessions of requests at servers keeping them in memory (any order; ties
        at one instant in the given order); returns which of them lose theirs."""
        # A user's requests at one level in time order: each one finds the session where
        # the previous one left it (the first one finds it where the last window did).
        order = np.lexsort((arr, user, self._session_slot[st]))
        u = user[order]
        s = st[order].astype(np.int32)
        slot = self._session_slot[s]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (slot[1:] != slot[:-1])
        prev = np.empty(len(order), dtype=np.int32)
        prev[first] = self.sessions[slot[first], u[first]]
        prev[~first] = s[np.nonzero(~first)[0] - 1]
        lost = np.zeros(len(order), dtype=bool)
        lost[order] = (prev == ORPHANED) | ((prev >= 0) & (prev != s))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = first[1:]
        self.sessions[slot[last], u[last]] = s[last]
        return lost
