"""Where requests go after a blocking server, and what they cost there, drawn in advance.

A part of :class:`simulation.blocking.Blocking` (blocking_window.py's event window): a
request's journey downstream is fixed before it starts, as routing and admission will
draw it, because every choice is a hash of the request's key and hop and of state that
does not change inside a window: the split over downstream nodes (``Routing._route``),
the shard that owns its key, the copy of a replicated database the proxy sends it to (``_database_targets``: writes to
the primary, reads to a copy it believes up), whether a read hits a cache (the cache's
state of the window's second: such windows never cross a whole second), and each
service (``Stations._service_ns``: a session read at the first store after a server that
keeps sessions in the database). A write committed at a primary makes every replica
apply it (``Replication._ship``): those apply jobs are journeys of their own, started
when the write ends.
"""
from __future__ import annotations

import math

import numpy as np

from .blocking_events import END, NOWHERE
from .choice_hops import ChoiceHops
from .compiler import CACHE
from .flight import FLAG_INTERNAL, Batch
from .randomness import CACHE_HIT, ROUTE, uniform
from .replication import apply_keys



class Journeys(ChoiceHops):
    def _journeys(self, b: Batch, flags: np.ndarray, t1: float) -> tuple:
        """Journeys of requests ``b``, finished at their stations (``flags`` as they leave):
        (stations, services in ns) per request and hop (END after the last, NOWHERE where
        the proxy knows of no copy: it fails on leaving), and the apply jobs the writes
        start: per request and hop the first of them and how many, and their stations,
        services and keys; then a cross-shard query's parts at the other shards: per
        request and hop the first and how many, and their stations and services; then,
        for a balancer's choice the kernel makes (choice_hops.py), per request and hop the
        draw and flags of the service at the backend, the draws of the choice, the user and
        the backend a hash gives; last,
        each apply job's delay (0 at a read replica; the lag at another primary:
        ``Replication._mp_delay``)."""
        depth = self._ev_depth
        n = len(b)
        jp = np.full((n, depth), END, dtype=np.int64)
        js = np.zeros((n, depth), dtype=np.int64)
        ja_first = np.full((n, depth), -1, dtype=np.int64)
        ja_n = np.zeros((n, depth), dtype=np.int64)
        applies: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        n_applies = 0
        px_first = np.zeros((n, depth), dtype=np.int64)   # cross-shard parts (sharding.py), per row and hop
        px_n = np.zeros((n, depth), dtype=np.int64)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        n_parts = 0
        # the kernel's choices at balancers downstream (choice_hops.py): service draw, flags, choice draws
        rows_ch = n if self._ev_choice else 0   # none without such balancers (the kernel never reads them)
        ch = [np.zeros((rows_ch, depth)), np.zeros((rows_ch, depth), dtype=np.int8),
              *(np.zeros((rows_ch, depth)) for _ in range(3)), np.zeros((rows_ch, depth), dtype=np.int64),
              np.full((rows_ch, depth), -1, dtype=np.int64)]
        net, st = self.net, self.stations
        cur, hop, flags = b.st.copy(), b.hop.copy(), flags.copy()
        # a join's second query (table_routing.py): the database node it goes to once its
        # first database answers (-1: none, or sent already)
        join = None
        if self._joins_on:
            i = self._join_find(b.key)
            join = np.where(i >= 0, self._js_db[np.maximum(i, 0)], -1) if len(self._js_db) else np.full(n, -1)
        on = self._goes_on(cur) if join is None else self._goes_on(cur) | (join >= 0)
        alive = np.flatnonzero(on) if n else np.zeros(0, dtype=np.int64)
        for h in range(depth):
            if not len(alive):
                break
            key, hp = b.key[alive], hop[alive]
            draw = cur[alive] + uniform(key, hp, ROUTE)
            idx = np.minimum(np.searchsorted(self._route_key, draw, side="left"), len(self._route_key) - 1)
            nxt = self._registered_only(net.route_target[idx], key, hp)
            code = None
            if self._ev_choice:   # leaving a balancer (choice_hops.py)
                at = np.flatnonzero(self._choice_at[cur[alive]] >= 0)
                if len(at):
                    code = np.zeros(len(alive), dtype=np.int64)
                    nxt[at], code[at] = self._choose_hop(cur[alive[at]], b, key[at], hp[at], alive[at])
                    lost = nxt == NOWHERE
                    if lost.any():   # no backend left: it fails as it leaves
                        jp[alive[lost], h] = NOWHERE
                        alive, nxt, key, hp, code = alive[~lost], nxt[~lost], key[~lost], hp[~lost], code[~lost]
                        if not len(alive):
                            break
            if self._sharded or self._replicated or self._parts is not None:
                here = Batch._raw((cur[alive], b.birth[alive], b.fin[alive], b.start[alive], b.fin[alive],
                                   b.cls[alive], b.user[alive], flags[alive], key, hp, b.item[alive]))
            second = None
            if join is not None:   # at its first database: on to the second (Partitioning._join_onward)
                second = (join[alive] >= 0) & ~self._goes_on(cur[alive])
            if self._parts is not None:   # towards the database that holds the table
                nxt, dbs = self._partition_plan(nxt, here)
                if join is not None:
                    two = (dbs >= 0) & ~second
                    join[alive[two]] = dbs[two]
            if self._sharded:   # the shard that owns the key; a cross-shard query's copies at the others
                if second is not None and second.any():   # a join's second query: at one shard (below), no parts
                    nxt[second] = -1
                nxt, copies, _ = self._shard_targets(nxt, here)
                if len(copies):
                    n_parts = self._cross_parts(copies, alive, key, h, px_first, px_n, parts, n_parts)
            if second is not None and second.any():
                nxt[second] = self._copy_stations(join[alive[second]], here.take(second))
                join[alive[second]] = -1
            if self._replicated:   # writes to the primary, reads to the copies the proxy believes up
                nxt = self._database_targets(nxt, here)
                lost = nxt < 0
                if lost.any():
                    jp[alive[lost], h] = NOWHERE
                    alive, nxt, key, hp = alive[~lost], nxt[~lost], key[~lost], hp[~lost]
                    code = None if code is None else code[~lost]
                    if not len(alive):
                        break
            hop[alive] = hp + 1
            there = Batch._raw((nxt, b.birth[alive], b.fin[alive], b.start[alive], b.fin[alive], b.cls[alive],
                                b.user[alive], flags[alive], key, hop[alive], b.item[alive]))
            js[alive, h] = st._service_ns(there, np.unique(nxt))
            jp[alive, h] = nxt
            if code is not None and code.any():   # the kernel chooses the backend: its draw and flags there
                k = np.flatnonzero(code)
                jp[alive[k], h] = code[k]
                for arr, v in zip(ch, self._choice_draws(there.take(k))):
                    arr[alive[k], h] = v
            if self._replicated:
                n_applies = self._apply_jobs(there, alive, h, ja_first, ja_n, applies, n_applies)
            flags[alive] = self._session_read_flags(there.flags.astype(flags.dtype), nxt)
            cur[alive] = nxt
            on = self._goes_on(nxt)
            if self._ev_caches:
                hits = self._cache_hits(there, np.full(len(there), math.floor(t1 - 1e-9)))
                if join is not None and hits.any():   # a cache holds items, not joins (Routing._route)
                    hits &= ~self._is_join(there)
                on &= ~hits
            if join is not None:
                on |= join[alive] >= 0
            alive = alive[on]
        if applies:
            a_st, a_svc, a_key, a_delay = (np.concatenate([a[k] for a in applies]) for k in range(4))
        else:
            a_st, a_svc, a_key, a_delay = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64), \
                np.zeros(0)
        if parts:
            p_st, p_svc = (np.concatenate([p[k] for p in parts]) for k in range(2))
        else:
            p_st, p_svc = np.zeros(0, np.int64), np.zeros(0, np.int64)
        return jp, js, ja_first, ja_n, a_st, a_svc, a_key, (px_first, px_n, p_st, p_svc), ch, a_delay

    def _cross_parts(self, copies: Batch, alive: np.ndarray, key: np.ndarray, h: int, px_first: np.ndarray,
                     px_n: np.ndarray, parts: list, n_parts: int) -> int:
        """Note the copies of cross-shard queries (``Sharding._shard_targets``: each copy's
        ``item`` is its query's key) as the parts of the journeys ``alive`` at hop ``h``;
        returns how many parts there are now."""
        parent = copies.item.view(np.uint64)
        order = np.lexsort((copies.key, parent))   # each query's parts together (in the order of their keys)
        copies, parent = copies.take(order), parent[order]
        row = self._lookup(key, np.arange(len(key), dtype=float), parent).astype(np.int64)
        uniq, first, counts = np.unique(parent, return_index=True, return_counts=True)
        r = alive[row[first]]
        px_first[r, h] = n_parts + first
        px_n[r, h] = counts
        parts.append((copies.st.astype(np.int64), self.stations._service_ns(copies, np.unique(copies.st))))
        return n_parts + len(copies)

    def _apply_jobs(self, there: Batch, rows: np.ndarray, h: int, ja_first: np.ndarray, ja_n: np.ndarray,
                    applies: list, n_applies: int) -> int:
        """The apply jobs of the user writes among ``there`` (at hop ``h`` of journeys ``rows``)
        that reach a primary: one per other copy of its database, as ``Replication._ship``
        makes them (keys, hops and services). Returns how many jobs there are now."""
        db_k = self._db_of_station[there.st]
        w = np.flatnonzero((db_k >= 0) & (self.primary[there.st] == there.st) & (there.cls == 1)
                           & ((there.flags & FLAG_INTERNAL) == 0))
        for ws in np.unique(there.st[w]).tolist():   # each primary's writes (several primaries: each one's)
            db = self.net.databases[int(self._db_of_station[ws])]
            mine = w[there.st[w] == ws]
            # the other copies (other primaries after the lag: Replication._mp_delay)
            others = [int(s) for s in db.stations.tolist() if s != ws]
            if not others or not len(mine):
                continue
            k = len(others)
            ja_first[rows[mine], h] = n_applies + np.arange(len(mine)) * k
            ja_n[rows[mine], h] = k
            s = np.tile(np.asarray(others, dtype=np.int64), len(mine))   # row-major: each write's jobs together
            src = np.repeat(mine, k)
            key = apply_keys(there.key[src], np.searchsorted(db.stations, s))   # (a group's stations ascend)
            job = Batch._raw((s, there.fin[src], there.fin[src], there.fin[src], there.fin[src], there.cls[src],
                              there.user[src], np.full(len(s), FLAG_INTERNAL, dtype=there.flags.dtype), key,
                              there.hop[src] + 1, there.item[src]))
            delay = np.array([self._mp_delay(x) if self._mp_primary[x] >= 0 else 0.0 for x in others])
            applies.append((s, self.stations._service_ns(job, np.unique(s)), key, np.tile(delay, len(mine))))
            n_applies += len(s)
        return n_applies

    def _cache_hits(self, b: Batch, second: np.ndarray) -> np.ndarray:
        """Which of requests ``b``, at their stations, are reads that hit a cache, for
        arrivals there in ``second`` (``Routing._route``'s draw, from the same state)."""
        hit = np.zeros(len(b), dtype=bool)
        at = (self.net.st_kind[b.st] == CACHE) & (b.cls == 0)
        if not at.any():
            return hit
        u = uniform(b.key, b.hop, CACHE_HIT)
        for s in np.unique(b.st[at]).tolist():
            model = self._caches[s]
            mine = at & (b.st == s)
            for k in np.unique(second[mine]).tolist():
                part = mine & (second == k)
                p_hit = model.state_at(int(k))[0]
                hit[part] = u[part] < p_hit[np.minimum(b.item[part], len(p_hit) - 1)]
        return hit

