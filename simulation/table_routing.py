"""The engine's side of partitioning by table (the plan is in partitioning.py): each
request's table, its route towards the database that holds it, and joins over two
databases — the second query, sent by the server straight to the other database, and
the request paying its response time (or failing with it) once it reaches its own.

The second query is internal work (not a user request), like a cross-shard copy
(sharding.py), told apart by its key, which a small store keeps (with how the query
went) until its request reaches its own database; a write it makes is applied by the
read replicas (replication.py).

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the simulation's
own state), plus ``station_routes``, the plan compiled over stations (compiler.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flight import FLAG_INTERNAL, FLAG_TIMEOUT, Batch
from .partitioning import Plan
from .randomness import ROUTE, mix64, uniform

TABLE, JOIN, JOIN_PLACE = 111, 112, 113     # salts (randomness.py uses 1..17, sharding.py 101)
_COPY_SALT = np.uint64(0x7F4A7C159E3779B9)
PENDING, OK, FULL, DOWN, GAVE_UP = -1, 0, 1, 2, 3


@dataclass
class StationRoutes:
    """The plan over stations: rows ``row_of[node, view]`` (-1: the node's usual route)
    of (target station, cumulative probability, database of the second query)."""
    row_of: np.ndarray
    target: np.ndarray
    cum: np.ndarray                 # row r's entries hold r + cumulative probability in (r, r + 1]
    copy: np.ndarray
    offsets: np.ndarray             # first user of each client (net.clients order)
    cdf: np.ndarray                 # per client: cumulative table mix (all zeros: no mix)
    join_share: np.ndarray
    join_view: np.ndarray
    tables: list[str]
    views: list[str]                # what each view is called in the totals: a table, or "a+b" for a join


def station_routes(plan: Plan, n_nodes: int, node_stations: list[np.ndarray], clients) -> StationRoutes:
    row_of = np.full((n_nodes, max(plan.n_views, 1)), -1, dtype=np.int64)
    target, cum, copy = [], [], []
    for r, ((n, v), entries) in enumerate(sorted(plan.routes.items())):
        row_of[n, v] = r
        st = np.concatenate([node_stations[j] for j, _, _ in entries])
        prob = np.concatenate([np.full(len(node_stations[j]), p / len(node_stations[j])) for j, p, _ in entries])
        c = np.cumsum(prob)
        target.append(st)
        cum.append(r + c / c[-1])
        copy.append(np.concatenate([np.full(len(node_stations[j]), d) for j, _, d in entries]))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt))
    n_t = len(plan.tables)
    cdf = np.zeros((len(clients), max(n_t, 1)))
    share, view = np.zeros(len(clients)), np.full(len(clients), -1, dtype=np.int64)
    for k, c in enumerate(clients):
        if c.node_index in plan.client_mix:
            cdf[k, :n_t] = np.cumsum(plan.client_mix[c.node_index])
            share[k], view[k] = plan.client_join.get(c.node_index, (0.0, -1))
    return StationRoutes(row_of, cat(target, np.int64), cat(cum, float), cat(copy, np.int64),
                         np.array([c.user_offset for c in clients], dtype=np.int64), cdf, share, view, plan.tables,
                         plan.tables + [f"{a}+{b}" for a, b in plan.joins])


class Partitioning:
    def _setup_partitioning(self) -> None:
        self._parts: StationRoutes | None = self.net.partitions
        self._joins_on = self._parts is not None and bool((self._parts.join_view >= 0).any())
        if not hasattr(self, "_join_store"):   # a live edit keeps the joins under way
            self._join_store = (np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int8), np.zeros(0), np.zeros(0))
            self._join_held: list[np.ndarray] = []
        timeouts = self.net.st_timeout
        self._join_horizon = 2.0 * float(timeouts.max() if len(timeouts) else 30.0) + 120.0
        self._sharded_of = {sd.node_index: sd for sd in self.net.shards}
        views = self._parts.views if self._parts is not None else []
        old = getattr(self, "_served_by_view", {})
        self._served_by_view = {v: old.get(v, 0) for v in views}

    def _count_tables(self, served: Batch) -> None:
        """Requests served per table (and per join), for the totals."""
        v = self._views(served)
        counts = np.bincount(v[v >= 0], minlength=len(self._parts.views))
        for name, k in zip(self._parts.views, counts.tolist()):
            self._served_by_view[name] += k

    def _views(self, b: Batch) -> np.ndarray:
        """Each request's view: its table, or its client's join view; -1 without a mix."""
        pt = self._parts
        c = np.maximum(np.searchsorted(pt.offsets, b.user, side="right") - 1, 0)
        cdf = pt.cdf[c]
        has = cdf[:, -1] > 0
        u = uniform(b.key, 0, TABLE)
        view = np.minimum((cdf <= u[:, None]).sum(axis=1), len(pt.tables) - 1)
        join = (uniform(b.key, 0, JOIN) < pt.join_share[c]) & (pt.join_view[c] >= 0)
        return np.where(has, np.where(join, pt.join_view[c], view), -1)

    def _is_join(self, b: Batch) -> np.ndarray:
        return self._views(b) >= len(self._parts.tables)

    def _partition_targets(self, target: np.ndarray, b: Batch) -> tuple[np.ndarray, Batch, np.ndarray]:
        """Requests leaving a server or cache go towards the database that holds their
        table; joins that leave the other table's database here send it their second query."""
        pt = self._parts
        views = self._views(b)
        row = np.where(views >= 0, pt.row_of[self.net.st_node[b.st], np.maximum(views, 0)], -1)
        m = np.nonzero(row >= 0)[0]
        if not len(m):
            return target, Batch.empty(), np.zeros(0, dtype=np.int64)
        u = uniform(b.key[m], b.hop[m], ROUTE)
        idx = np.minimum(np.searchsorted(pt.cum, row[m] + u, side="left"), len(pt.cum) - 1)
        target = target.copy()
        target[m] = pt.target[idx]
        dbs = pt.copy[idx]
        need = m[dbs >= 0]
        if not len(need):
            return target, Batch.empty(), np.zeros(0, dtype=np.int64)
        src = b.take(need)
        at = self._copy_stations(dbs[dbs >= 0], src)
        with np.errstate(over="ignore"):
            key = mix64(src.key ^ _COPY_SALT)
        copies = Batch._raw((at, src.birth, src.fin, src.fin.copy(), src.fin.copy(), src.cls, src.user,
                             np.full(len(src), FLAG_INTERNAL, dtype=np.int8), key, src.hop + 1, src.item))
        status = np.full(len(key), PENDING, dtype=np.int8)
        if self._replicated:   # the proxy: reads to the copies it believes up, writes to the primary
            copies.st = self._database_targets(at, copies)
            nowhere = copies.st < 0
            status[nowhere] = DOWN
            copies, src = copies.take(~nowhere), src.take(~nowhere)
        self._join_remember(key, status, np.zeros(len(key)), b.fin[need])
        return target, copies, src.st

    def _copy_stations(self, dbs: np.ndarray, src: Batch) -> np.ndarray:
        """The station of each second query: in the shard that owns its key (sharding.py),
        a copy chosen at random for a read, the primary for a write."""
        from .sharding import owner
        out = np.empty(len(dbs), dtype=np.int64)
        u = uniform(src.key, src.hop, JOIN_PLACE)
        for d in np.unique(dbs).tolist():
            mine = dbs == d
            st = self.net.node_stations[d]
            sd = self._sharded_of.get(d)
            if sd is not None:
                keys = src.item[mine] if sd.key == "item" else src.user[mine]
                base, group = sd.first + owner(sd.scheme, sd.n, keys, sd.key_space) * sd.group, sd.group
            else:
                base, group = np.full(int(mine.sum()), int(st[0])), len(st)
            at = base + np.minimum((u[mine] * group).astype(np.int64), group - 1)
            out[mine] = np.where(src.cls[mine] == 1, self.primary[base], at)
        return out

    def _join_remember(self, key, status, resp, sent) -> None:
        k, s, r, t = self._join_store
        keep = t >= self.now - self._join_horizon       # never asked for any more: their request failed on its way
        k, s, r, t = (np.concatenate([k[keep], key]), np.concatenate([s[keep], status]),
                      np.concatenate([r[keep], resp]), np.concatenate([t[keep], sent]))
        order = np.argsort(k, kind="stable")
        self._join_store = (k[order], s[order], r[order], t[order])

    def _join_find(self, keys: np.ndarray) -> np.ndarray:
        k = self._join_store[0]
        if not len(k):
            return np.full(len(keys), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(k, keys), len(k) - 1)
        return np.where(k[i] == keys, i, -1)

    def _join_admitted(self, admitted: Batch, full: Batch, down: Batch) -> Batch:
        """After admission: note how each second query went, then let the requests that
        reached their own database pay it (or fail with it). Returns ``admitted``."""
        for b, code in ((admitted, OK), (full, FULL), (down, DOWN)):
            m = (b.flags & FLAG_INTERNAL) != 0
            if m.any():
                i = self._join_find(b.key[m])
                ok = i >= 0
                st = self._join_store[1]
                if code == OK:
                    st[i[ok]] = np.where((b.flags[m][ok] & FLAG_TIMEOUT) != 0, GAVE_UP, OK)
                    self._join_store[2][i[ok]] = (b.fin[m] - b.arr[m])[ok]
                else:
                    st[i[ok]] = code
        return self._join_pay(admitted, held_ok=True)

    def _is_join_copy(self, b: Batch) -> np.ndarray:
        """Which of these are the second queries of joins (replication.py ships their writes)."""
        if not self._joins_on:
            return np.zeros(len(b), dtype=bool)
        return ((b.flags & FLAG_INTERNAL) != 0) & (self._join_find(b.key) >= 0)

    def _join_pay(self, b: Batch, held_ok: bool) -> Batch:
        if not len(b) or not len(self._join_store[0]):
            return b
        user = np.nonzero(((b.flags & FLAG_INTERNAL) == 0) & (self.net.st_kind[b.st] == 2))[0]   # at a database
        if not len(user):
            return b
        with np.errstate(over="ignore"):
            i = self._join_find(mix64(b.key[user] ^ _COPY_SALT))
        has = i >= 0
        user, i = user[has], i[has]
        status = self._join_store[1][i]
        if held_ok and (status == PENDING).any():   # its second query comes later in this level (a writer first)
            self._join_held.append(b.key[user[status == PENDING]])
        done = status != PENDING
        user, i, status = user[done], i[done], status[done]
        if not len(user):
            return b
        b.flags, b.fin, b.start = b.flags.copy(), b.fin.copy(), b.start.copy()
        for code, cause in ((FULL, "queue_full"), (DOWN, "backend_down")):
            bad = user[status == code]
            if len(bad):
                self._fail(cause, b.arr[bad], b.key[bad])   # frees a blocking server's worker
                b.flags[bad] |= FLAG_INTERNAL       # its own query's work goes on; nobody waits for it
        go = (status == OK) | (status == GAVE_UP)
        pay = user[go]
        pay_ok = (b.flags[pay] & FLAG_TIMEOUT) == 0  # gave up at its own database: fails there
        shift = self._join_store[2][i[go]][pay_ok]
        v = pay[pay_ok]
        b.fin[v] += shift
        b.start[v] += shift                          # its own work keeps its length
        b.flags[user[status == GAVE_UP]] |= FLAG_TIMEOUT
        self._join_store[1][i] = PENDING - 1          # used: dropped at the next clean-up
        self._join_store[3][i] = -np.inf
        return b

    def _join_level(self, lv: int) -> None:
        """End of a level's admission: the requests that waited for a second query admitted after them."""
        if not self._join_held:
            return
        keys, self._join_held = np.concatenate(self._join_held), []
        p = self.pending[lv]
        m = np.isin(p.key, keys) & ((p.flags & FLAG_INTERNAL) == 0)
        if m.any():
            part = self._join_pay(p.take(m), held_ok=False)
            p.flags, p.fin, p.start = p.flags.copy(), p.fin.copy(), p.start.copy()
            p.flags[m], p.fin[m], p.start[m] = part.flags, part.fin, part.start
