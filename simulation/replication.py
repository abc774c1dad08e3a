"""Single-primary replication as the application sees it.

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
from .randomness import APPLY, DB_READ, mix64, uniform

ITEM_BITS = 21   # item ids are below 2**21 (the format allows 1,000,000 items)


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
            pos = target[mine] - db.stations[0]
            writes = batch.cls[mine] == 1
            bad = ~believed[pos]
            if not bad.any():
                continue
            t = target[mine]
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
            for s in db.stations.tolist():
                on = mine.take(self.primary[mine.st] != s)
                if not len(on):
                    continue
                with np.errstate(over="ignore"):
                    key = mix64(on.key ^ (np.uint64(s + 1) * np.uint64(0x9E3779B97F4A7C15))) ^ np.uint64(APPLY)
                jobs.append(Batch._raw((np.full(len(on), s, dtype=np.int64), on.fin.copy(), on.fin.copy(),
                                        on.fin.copy(), on.fin.copy(), on.cls.copy(), on.user.copy(),
                                        np.full(len(on), FLAG_INTERNAL, dtype=np.int8), key, on.hop + 1,
                                        on.item.copy())))
        if jobs:
            self._delayed = Batch.concat([self._delayed] + jobs)

    def _due_applies(self, level: int, t1: float) -> Batch:
        """Apply jobs that reach their replica (at this level) before ``t1``."""
        d = self._delayed
        if not len(d) or level not in self._apply_levels:
            return Batch.empty()
        due = (d.arr < t1) & (self.net.st_level[d.st] == level)
        if not due.any():
            return Batch.empty()
        out, self._delayed = d.split(due)
        return out

    def _is_writer(self, stations: np.ndarray) -> np.ndarray:
        return (self._db_of_station[stations] >= 0) & (self.primary[stations] == stations)
