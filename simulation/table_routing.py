"""The engine's side of partitioning by table (the plan is in partitioning.py): each
request's table, its route towards the database that holds it, and joins over two
databases, one query after the other.

A join leaves its server towards its first database like any request, and a small
store keeps (by the request's key) where its second query goes and who sends it.
When the first query answers, the request itself goes on to the second database,
arriving at that moment (the server sends the second query when it has the first
one's rows): latency adds, the second database's queue sees the query when it really
comes, and a first query that fails or gives up sends no second one. The compiler
puts the second database on a deeper level (``partitioning.sequenced_levels``), so
the engine admits it in the same window. A blocking server's worker stays held until
the second query answers (``_join_waits``).

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the simulation's
own state), plus ``station_routes``, the plan compiled over stations (compiler.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flight import FLAG_INTERNAL, Batch
from .partitioning import Plan
from .randomness import ROUTE, uniform

TABLE, JOIN, JOIN_PLACE = 111, 112, 113     # salts (randomness.py uses 1..17, sharding.py 101)
DATABASE = 2           # compiler.DATABASE (the compiler imports this module)
PRUNE_EVERY_S = 5.0    # how often the store drops the joins whose request is gone (failed on its way)


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
        ids = self.net.node_ids
        if not hasattr(self, "_js_key") or not self._joins_on:   # the joins under way: key, second database,
            # sender (nodes); a live edit that ends the joins lets those at their first database end there
            self._js_key, self._js_db, self._js_src = np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
            self._js_prune_at = 0.0
        elif self._js_names != ids and len(self._js_key):   # a live edit: the same nodes by name
            where = {n: i for i, n in enumerate(ids)}
            db = np.array([where.get(self._js_names[d], -1) for d in self._js_db.tolist()], dtype=np.int64)
            src = np.array([where.get(self._js_names[d], -1) for d in self._js_src.tolist()], dtype=np.int64)
            keep = db >= 0                  # a removed second database: the join ends at its first
            self._js_key, self._js_db, self._js_src = self._js_key[keep], db[keep], src[keep]
        self._js_names = list(ids)
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

    def _partition_targets(self, target: np.ndarray, b: Batch) -> np.ndarray:
        """Requests leaving a server or cache go towards the database that holds their
        table; joins that leave the other table's database here are noted: their
        second query goes there when the first answers (``_join_onward``)."""
        target, second = self._partition_plan(target, b)
        two = np.flatnonzero(second >= 0)
        if len(two):
            self._join_remember(b.key[two], second[two], self.net.st_node[b.st[two]])
        return target

    def _partition_plan(self, target: np.ndarray, b: Batch) -> tuple[np.ndarray, np.ndarray]:
        """``_partition_targets`` without noting anything: (targets, the database node of
        each join's second query, -1 for the others). blocking_journeys.py draws journeys
        with it."""
        pt = self._parts
        second = np.full(len(b), -1, dtype=np.int64)
        views = self._views(b)
        row = np.where(views >= 0, pt.row_of[self.net.st_node[b.st], np.maximum(views, 0)], -1)
        m = np.nonzero(row >= 0)[0]
        if not len(m):
            return target, second
        u = uniform(b.key[m], b.hop[m], ROUTE)
        idx = np.minimum(np.searchsorted(pt.cum, row[m] + u, side="left"), len(pt.cum) - 1)
        target = target.copy()
        target[m] = pt.target[idx]
        second[m] = pt.copy[idx]
        return target, second

    def _join_onward(self, end: Batch, inbox: list[list[Batch]]) -> Batch:
        """Requests done at a database whose join still needs its second query go on to
        the second database now; returns the ones that end here."""
        if len(self._js_key) and len(end):
            at_db = np.nonzero((self.net.st_kind[end.st] == DATABASE) & ((end.flags & FLAG_INTERNAL) == 0))[0]
            i = self._join_find(end.key[at_db])
            if (i >= 0).any():
                idx, i = at_db[i >= 0], i[i >= 0]
                second, db, src = end.take(idx), self._js_db[i], self._js_src[i]
                self._join_forget(i)
                rest = np.ones(len(end), dtype=bool)
                rest[idx] = False
                end = end.take(rest)
                at = self._copy_stations(db, second)
                if self._replicated:   # the proxy: reads to the copies it believes up, writes to the primary
                    at = self._database_targets(at, second)
                    nowhere = at < 0
                    if nowhere.any():
                        self._fail("no_healthy_backend", second.fin[nowhere], second.key[nowhere])
                        second, at, src = second.take(~nowhere), at[~nowhere], src[~nowhere]
                self.ledger.book_edges(self._node_edge[src, self.net.st_node[at]], second.fin)
                self._deliver(second.forward(at), inbox)
        if self.now >= self._js_prune_at:
            self._join_prune(inbox)
        return end

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

    # ----- the store of joins under way (sorted by key) --------------------------------------------
    def _join_remember(self, key: np.ndarray, db: np.ndarray, src: np.ndarray) -> None:
        keep = ~np.isin(self._js_key, key)     # sent again (a second server on its path): the latest counts
        k = np.concatenate([self._js_key[keep], key])
        order = np.argsort(k, kind="stable")
        self._js_key = k[order]
        self._js_db = np.concatenate([self._js_db[keep], db])[order]
        self._js_src = np.concatenate([self._js_src[keep], src])[order]

    def _join_find(self, keys: np.ndarray) -> np.ndarray:
        """Each key's entry in the store, -1 where it has none."""
        k = self._js_key
        if not len(k) or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(k, keys), len(k) - 1)
        return np.where(k[i] == keys, i, -1)

    def _join_forget(self, i: np.ndarray) -> None:
        keep = np.ones(len(self._js_key), dtype=bool)
        keep[i] = False
        self._js_key, self._js_db, self._js_src = self._js_key[keep], self._js_db[keep], self._js_src[keep]

    def _join_prune(self, inbox: list[list[Batch]]) -> None:
        """Drop the joins whose request is no longer in flight (it failed before its first
        database answered). Called from routing, where every request in flight is pending
        or in the inbox."""
        self._js_prune_at = self.now + PRUNE_EVERY_S
        if not len(self._js_key):
            return
        alive = np.concatenate([p.key for p in self.pending] + [b.key for lv in inbox for b in lv])
        keep = np.isin(self._js_key, alive)
        self._js_key, self._js_db, self._js_src = self._js_key[keep], self._js_db[keep], self._js_src[keep]

    def _join_waits(self, keys: np.ndarray) -> np.ndarray:
        """Which of these requests still have a second query to send (blocking.py: a worker
        held for one of them is not released when it ends at its first database)."""
        if not self._joins_on:
            return np.zeros(len(keys), dtype=bool)
        return self._join_find(keys) >= 0
