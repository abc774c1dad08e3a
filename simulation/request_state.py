"""What admitted requests carry and change: user sessions, forged cookies,
traffic seen by caches, writes replicated to read replicas and stale reads.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import numpy as np

from .compiler import CACHE, DATABASE, SERVER
from .flight import Batch, FLAG_DB_SESSION, FLAG_FORGED, FLAG_SESSION_LOST

NO_SESSION, ORPHANED = -1, -2   # a user's session: none yet, or lost with its server


class RequestState:
    def _sessions(self, b: Batch) -> None:
        if not len(b):
            return
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
        if self._replicated:
            self._replication(b)
        if self._caches:
            at_cache = self.net.st_kind[b.st] == CACHE
            if at_cache.any():
                for st in np.unique(b.st[at_cache]).tolist():
                    mine = b.st == st
                    writes = int((b.cls[mine] == 1).sum())
                    self._cache_seen[st][0] += int(mine.sum()) - writes
                    self._cache_seen[st][1] += writes
        local = np.nonzero(self._is_local_server[b.st])[0]
        if len(local):
            # A user's requests in time order: each one finds the session where the
            # previous one left it (the first one finds it where the last window did).
            order = local[np.lexsort((b.arr[local], b.user[local]))]
            u = b.user[order]
            s = b.st[order].astype(np.int32)
            first = np.ones(len(order), dtype=bool)
            first[1:] = u[1:] != u[:-1]
            prev = np.empty(len(order), dtype=np.int32)
            prev[first] = self.sessions[u[first]]
            prev[~first] = s[np.nonzero(~first)[0] - 1]
            lost = (prev == ORPHANED) | ((prev >= 0) & (prev != s))
            if lost.any():
                b.flags[order[lost]] |= FLAG_SESSION_LOST
            last = np.ones(len(order), dtype=bool)
            last[:-1] = first[1:]
            self.sessions[u[last]] = s[last]
        dbs = self._is_db_server[b.st]
        if dbs.any():
            b.flags[dbs] |= FLAG_DB_SESSION
    def _replication(self, b: Batch) -> None:
        """Writes committed at a primary reach its replicas ``lag`` later; a user who
        reads from a replica in between gets old data (counted as a stale read)."""
        net = self.net
        writes = np.nonzero((b.cls == 1) & (net.st_kind[b.st] == DATABASE) & (self.primary[b.st] == b.st))[0]
        lag = self.lag[b.st]
        reads = np.nonzero((b.cls == 0) & (lag > 0))[0]
        if len(reads):
            # For each read, the user's latest write committed before it (this batch's
            # writes included): a running maximum over the user's events in time order.
            user = np.concatenate([b.user[writes], b.user[reads]])
            t = np.concatenate([b.fin[writes], b.arr[reads]])
            is_read = np.concatenate([np.zeros(len(writes), bool), np.ones(len(reads), bool)])
            order = np.lexsort((is_read, t, user))
            user, t, is_read = user[order], t[order], is_read[order]
            seed = np.maximum(self.last_write[user], -1e6)
            value = np.where(is_read, seed, np.maximum(t, seed))
            group = np.cumsum(np.r_[True, user[1:] != user[:-1]])
            span = 4.0 * (float(np.abs(value).max()) + 1.0)
            latest = np.maximum.accumulate(value + group * span) - group * span
            since = t[is_read] - latest[is_read]
            read_idx = reads[order[is_read] - len(writes)]
            stale = (since >= 0) & (since < lag[read_idx])
            self._count("stale_reads", b.arr[read_idx][stale])
        if len(writes):
            np.maximum.at(self.last_write, b.user[writes], b.fin[writes])
