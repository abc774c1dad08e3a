"""Replication as the application sees it: one primary and read replicas, or
several primaries (``primaries`` ≥ 2: writes spread over the live primaries by the
hash of the request; conflicts, id collisions and stale reads between primaries are
counted in multi_primary.py).

A database with read replicas is a primary and its copies. The app reaches them
through a proxy (ProxySQL, or HAProxy in front of MySQL) that monitors every copy:
every ``monitor_interval_s`` it checks them, stops sending reads to a copy that
missed ``monitor_misses`` checks in a row and takes it back after one answered
check. Until then, reads sent to a dead copy fail. Writes go to the primary.

- **Writes are applied everywhere**: a write committed at the primary is shipped
  at once to every replica, where it is executed again (row-based replication):
  the replicas do the write work too, so their load shows it. Those apply jobs
  are internal work: they queue and take a connection like any query, but they
  are not user requests (never counted as arrived, served or failed).
- **Stale reads**: a read at a replica is stale when the item it reads was
  written at the primary less than ``replication_lag_ms`` before the read reached
  the replica (whoever wrote it).
- **Failover**: when the primary has been down ``failover_s`` and a copy is alive,
  that copy is promoted and takes the writes; the old primary rejoins as a
  replica when it recovers. With no live copy, nothing can be promoted and nothing
  is scheduled until one comes back.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state).
"""
from __future__ import annotations

import zlib

import numpy as np

from .flight import FLAG_INTERNAL, FLAG_TIMEOUT, Batch
from .health import HealthChecks
from .multi_primary import IdCounters, earlier_conflicts, written_elsewhere
from .randomness import APPLY, DB_READ, DB_WRITE, INSERT, mix64, uniform

MIN_APPLY_S = 0.001   # the least time a write takes to reach another primary (s)

ITEM_BITS = 21   # item ids are below 2**21 (the format allows 1,000,000 items)


def apply_keys(keys: np.ndarray, copy: np.ndarray | int) -> np.ndarray:
    """The keys of the jobs that apply writes (their ``keys``) at the database group's copy
    number ``copy`` (its position among the group's copies: not the station's index, which
    depends on the order of the nodes in the file)."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(keys, dtype=np.uint64) ^ (np.uint64(1) + np.asarray(copy, dtype=np.uint64))
                     * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(APPLY)


class Replication:
    def _setup_replication(self) -> None:
        net = self.net
        self._monitors: dict[int, HealthChecks] = {}
        for db in net.databases:
            phase = (zlib.crc32(net.node_ids[db.node_index].encode()) % 1000) / 1000.0
            m = HealthChecks(len(db.stations), db.monitor_interval_s, db.monitor_misses, 1,
                             self.now + phase * db.monitor_interval_s)
            self._monitors[db.key] = m
        self._db_of_station = np.full(net.n_stations, -1, dtype=np.int64)   # station -> index in net.databases
        for k, db in enumerate(net.databases):
            self._db_of_station[db.stations] = k
        self._delayed = Batch.empty()                        # apply jobs not yet arrived at their replica
        self._apply_levels = {int(net.st_level[db.stations[0]]) for db in net.databases}
        self._recent_writes = (np.zeros(0, dtype=np.int64), np.zeros(0))   # (node<<ITEM_BITS | item, commit time)
        self._max_lag = max((db.lag_s for db in net.databases), default=0.0)
        # multi-primary databases (multi_primary.py): their primaries, recent writes and id counters
        self._mp_primary = np.full(net.n_stations, -1, dtype=np.int64)   # station -> its number among the primaries
        self._mp_lag = np.zeros(net.n_stations)
        self._ids: dict[int, IdCounters] = {}
        for db in net.databases:
            if db.primaries > 1:
                self._mp_primary[db.stations[:db.primaries]] = np.arange(db.primaries)
                self._mp_lag[db.stations] = db.lag_s
                self._ids[db.node_index] = IdCounters(db.primaries, db.lag_s, db.auto_increment_offsets)
        self._mp_writes = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))  # key, st, fin
        self._client_first_user = np.array([c.user_offset for c in net.clients], dtype=np.int64)
        self._client_inserts = np.array([c.insert_share for c in net.clients])

    # ----- time: failover and the proxy's checks ----------------------------------------------
    def _monitors_skip(self) -> None:
        """While nothing can change, checks are skipped; keep their grid in step first
        (before this boundary's events change anything)."""
        for db in self.net.databases:
            mon = self._monitors[db.key]
            if mon.steady(self.stations.up[db.stations]):
                mon.skip_to(self.now + 1e-9)

    def _database_boundary(self) -> None:
        if self.net.failovers:
            self._failover()
        for db in self.net.databases:
            mon = self._monitors[db.key]
            up = self.stations.up[db.stations]
            while mon.next_check <= self.now + 1e-9:
                mon.check(up)

    def _timed_database_decisions(self) -> list[tuple[int, float]]:
        out = []
        up = self.stations.up
        for db in self.net.databases:   # a sharded database: each shard fails over by itself
            if db.failover_s > 0 and db.key in self._down_since and up[db.stations].any():
                out.append((db.node_index, self._down_since[db.key] + db.failover_s))
        for db in self.net.databases:
            mon = self._monitors[db.key]
            if not mon.steady(up[db.stations]):
                out.append((db.node_index, mon.next_check))
        return out

    def _failover(self) -> None:
        """Promote a live read replica when a primary has been down for failover_s."""
        net, up = self.net, self.stations.up
        for db in net.databases:
            node, after, st = db.key, db.failover_s, db.stations
            if after <= 0:
                continue
            primary = int(self.primary[st[0]])
            if up[primary]:
                self._down_since.pop(node, None)
                continue
            since = self._down_since.setdefault(node, self.now)
            live = st[up[st]]
            if self.now + 1e-9 >= since + after and len(live):
                new = int(live[0])
                self.lag[primary] = self.lag[new] if self.lag[new] > 0 else float(net.st_lag[st].max())
                self.lag[new] = 0.0
                self.primary[st] = new
                self._down_since.pop(node, None)

    # ----- routing: reads to the copies the proxy believes up, writes to the primary ------------
    def _database_targets(self, target: np.ndarray, batch: Batch) -> np.ndarray:
        """Targets for requests going to stations of replicated databases; -1 where the
        proxy knows of no copy that can take them."""
        target = np.where(batch.cls == 1, self.primary[target], target)
        k = self._db_of_station[target]
        if not (k >= 0).any():
            return target
        for j in np.unique(k[k >= 0]).tolist():
            db = self.net.databases[j]
            believed = self._monitors[db.key].believed_up
            mine = k == j
            writes = batch.cls[mine] == 1
            t = target[mine]
            if db.primaries > 1 and writes.any():       # multi-primary: writes spread over the primaries
                t[writes] = self._write_targets(db, believed, batch.key[mine][writes], batch.hop[mine][writes])
                target[mine] = t
            pos = t - db.stations[0]
            bad = np.zeros(len(t), dtype=bool)
            ok = t >= 0
            bad[ok] = ~believed[pos[ok]]
            if db.primaries > 1:
                bad &= ~writes                          # their writes are placed already
            if not bad.any():
                continue
            t[bad & writes] = -1                       # the proxy knows the writer is gone
            redo = bad & ~writes
            alive = db.stations[believed]
            if redo.any():
                if len(alive):
                    u = uniform(batch.key[mine][redo], batch.hop[mine][redo], DB_READ)
                    t[redo] = alive[np.minimum((u * len(alive)).astype(np.int64), len(alive) - 1)]
                else:
                    t[redo] = -1
            target[mine] = t
        return target

    def _write_targets(self, db, believed: np.ndarray, key: np.ndarray, hop: np.ndarray) -> np.ndarray:
        """Each write's primary, by the hash of its key; the proxy moves the writes of a
        primary it knows is dead to the live ones (-1 when it knows of none)."""
        n = db.primaries
        u = uniform(key, hop, DB_WRITE)
        pick = np.minimum((u * n).astype(np.int64), n - 1)
        alive = np.nonzero(believed[:n])[0]
        gone = ~believed[pick]
        if gone.any():
            if len(alive):
                pick[gone] = alive[np.minimum((u[gone] * len(alive)).astype(np.int64), len(alive) - 1)]
            else:
                pick[gone] = -1
        return np.where(pick >= 0, db.stations[0] + pick, -1)

    # ----- what admitted requests do at a replicated database ------------------------------------
    def _replication(self, b: Batch) -> None:
        net = self.net
        db_k = self._db_of_station[b.st]
        at_db = db_k >= 0
        if not at_db.any():
            return
        user = (b.flags & FLAG_INTERNAL) == 0
        node = net.st_node[b.st].astype(np.int64)
        key = (node << ITEM_BITS) | np.minimum(b.item, (1 << ITEM_BITS) - 1)
        writes = np.nonzero(at_db & user & (b.cls == 1) & (self.primary[b.st] == b.st)
                            & ((b.flags & FLAG_TIMEOUT) == 0))[0]
        w_key, w_fin = self._recent_writes
        if len(writes):
            w_key = np.concatenate([w_key, key[writes]])
            w_fin = np.concatenate([w_fin, b.fin[writes]])
            self._ship(b.take(writes))
        if self._ids:
            args = (b.take(writes), key[writes], b, key, at_db & user & (b.cls == 0))
            later = self.__dict__.get("_mp_later")
            if later is not None:   # counted once for all the stretches of a level (Window._admit_primaries)
                later.append(args)
            else:
                self._multi_primary(*args)
        lag = self.lag[b.st]
        reads = np.nonzero(at_db & user & (b.cls == 0) & (lag > 0))[0]
        if len(reads) and len(w_key):
            # For each read, the latest write of its item committed at or before it.
            keys = np.concatenate([w_key, key[reads]])
            t = np.concatenate([w_fin, b.arr[reads]])
            is_read = np.r_[np.zeros(len(w_key), bool), np.ones(len(reads), bool)]
            order = np.lexsort((is_read, t, keys))
            keys, t, is_read = keys[order], t[order], is_read[order]
            last_write = np.maximum.accumulate(np.where(is_read, -1, np.arange(len(order))))
            r = np.nonzero(is_read)[0]
            w = last_write[r]
            ok = w >= 0
            ok[ok] = keys[w[ok]] == keys[r[ok]]
            since = np.where(ok, t[r] - t[np.maximum(w, 0)], np.inf)
            read_idx = reads[order[r] - len(w_key)]
            stale = since < lag[read_idx]
            self._count("stale_reads", b.arr[read_idx][stale])
        keep = w_fin > self.now - self._max_lag - 1e-9    # older writes cannot make any later read stale
        self._recent_writes = (w_key[keep], w_fin[keep])

    def _ship(self, writes: Batch) -> None:
        """Every replica of the node executes each committed write (an internal job)."""
        jobs = []
        for j in np.unique(self._db_of_station[writes.st]).tolist():
            db = self.net.databases[j]
            mine = writes.take(self._db_of_station[writes.st] == j)
            for copy, s in enumerate(db.stations.tolist()):
                on = mine.take(self.primary[mine.st] != s)
                if not len(on):
                    continue
                key = apply_keys(on.key, copy)
                at = on.fin.copy()
                if self._mp_primary[s] >= 0:   # another primary: it gets the write after the lag (see _mp_delay)
                    at = at + self._mp_delay(s)
                jobs.append(Batch._raw((np.full(len(on), s, dtype=np.int64), on.fin.copy(), at,
                                        at.copy(), at.copy(), on.cls.copy(), on.user.copy(),
                                        np.full(len(on), FLAG_INTERNAL, dtype=np.int8), key, on.hop + 1,
                                        on.item.copy())))
        if jobs:
            self._delayed = Batch.concat([self._delayed] + jobs)

    def _mp_delay(self, station: int) -> float:
        """When another primary applies a write: after the lag, and at least
        ``MIN_APPLY_S`` later (a network round trip; before 2026-11-30 at least one tick, so a
        lag shorter than ``tick_ms`` was taken as one tick and the numbers changed with
        ``tick_ms``). The primaries' arrivals are admitted in stretches no longer than that
        (``Window._admit_primaries``), so the writes a primary applies in a stretch were all
        committed before it started, and are admitted with its own requests in time
        order, however the run is sliced."""
        return max(float(self._mp_lag[station]), MIN_APPLY_S)

    def _multi_primary(self, w: Batch, key: np.ndarray, b: Batch, b_key: np.ndarray, reads: np.ndarray) -> None:
        """Count write conflicts and id collisions of the user writes ``w`` committed at
        primaries of multi-primary databases, and the stale reads at those primaries
        (``reads`` of ``b``): their item was written at another primary within the lag."""
        mp = self._mp_primary[w.st] >= 0
        w, key = w.take(mp), key[mp]
        o_key, o_st, o_fin = self._mp_writes
        r = np.nonzero(reads & (self._mp_primary[b.st] >= 0))[0]
        if len(r) and (len(o_key) or len(key)):
            seen = written_elsewhere(np.concatenate([o_key, key]), np.concatenate([o_st, w.st]),
                                     np.concatenate([o_fin, w.fin]), b_key[r], b.st[r], b.arr[r],
                                     self._mp_lag[b.st[r]])
            self._count("stale_reads", b.arr[r][seen > 0])
        if not len(w):
            return
        a_key, a_st, a_fin = (np.concatenate([o_key, key]), np.concatenate([o_st, w.st]),
                              np.concatenate([o_fin, w.fin]))
        lag = self._mp_lag[a_st]
        new = earlier_conflicts(a_key, a_st, a_fin, lag)
        new[:len(o_key)] -= earlier_conflicts(o_key, o_st, o_fin, lag[:len(o_key)])
        if new.any():   # each pair once, at its later commit
            self._count("write_conflicts", np.repeat(a_fin, new))
        lo = np.full(len(a_fin), self.now)
        floor = self.__dict__.get("_mp_floor")   # (level, time): no later arrival at that level before it
        if floor is not None:
            lo[self.net.st_level[a_st] == floor[0]] = max(self.now, floor[1])
        keep = a_fin > lo - self._max_lag - 1e-9    # older writes cannot conflict with later ones
        self._mp_writes = (a_key[keep], a_st[keep], a_fin[keep])
        # inserts: the client's insert_share of its writes takes the next auto-increment id
        who = np.searchsorted(self._client_first_user, w.user, side="right") - 1
        ins = uniform(w.key, w.hop, INSERT) < self._client_inserts[np.maximum(who, 0)]
        if not ins.any():
            return
        w = w.take(ins)
        node = self.net.st_node[w.st]
        for n in np.unique(node).tolist():
            part = w.take(node == n)
            order = np.lexsort((part.st, part.arr))
            collided = self._ids[n].allocate(part.arr[order], self._mp_primary[part.st[order]])
            self._count("id_collisions", collided)

    def _due_applies(self, level: int, t1: float, writers: bool | None = None) -> Batch:
        """Apply jobs that reach their replica (at this level) before ``t1``; with
        ``writers``, only those at primaries of multi-primary databases (True) or only
        the others (False)."""
        d = self._delayed
        if not len(d) or level not in self._apply_levels:
            return Batch.empty()
        due = (d.arr < t1) & (self.net.st_level[d.st] == level)
        if writers is not None:
            due &= (self._mp_primary[d.st] >= 0) == writers
        if not due.any():
            return Batch.empty()
        out, self._delayed = d.split(due)
        return out

    def _is_writer(self, stations: np.ndarray) -> np.ndarray:
        return (self._db_of_station[stations] >= 0) & (self.primary[stations] == stations)
