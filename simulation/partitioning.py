"""Partitioning by table: which database holds which tables, and where a request goes.

A database declares the ``tables`` it holds (empty: every table); a client declares
its ``table_mix`` (which tables its requests touch) and a ``join_share`` of requests
that join the two ``join_tables`` (empty: the two most-used tables of its mix).

- A request touches one table drawn from its client's mix (a hash of its key, so
  every hop agrees). At a server or a cache with databases downstream (directly or
  through caches), it goes only towards the database that holds its table; the other
  downstream nodes get none of it. Within those, by capacity, as before.
- A join whose tables are held by two different databases queries both, one after
  the other (an app that runs two queries and joins in code): the request goes on
  to one of them (the deeper one in the graph; on a tie the one holding the join's first
  table, e.g. the users before their flights: one order for all joins, contradicting
  preferences by id; never the order of the nodes in the file) and, when that one
  answers, the server sends the second query straight to the other database (past any
  cache: joins are never cache hits). The request answers when the second query
  answers, and fails if either is refused (queue full, database down) or gives up; a
  failed first query sends no second one. The
  engine processes a level at a time, so the compiler puts each join's second
  database on a level deeper than its first (``sequenced_levels``).
- With no table mix anywhere, nothing changes: a server splits its calls over its
  databases in proportion to capacity, as if they were copies (a pool).

Consistency (checked when compiling, one line naming the node and the table): at
every server (and every cache a client or balancer reaches) whose downstream
databases are partitioned, each table its clients use is held by exactly one of those
databases, and every client reaching it has a mix.

This module is the plan, which the compiler and the structural SPOF analysis
(analysis.py) share; table_routing.py is the engine's side (routes and joins).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class PartitionError(ValueError):
    """The tables of a document are inconsistent; the message names the node and the table."""


@dataclass
class Plan:
    """Where each view of a request goes. A view is a table (0..T-1) or a join (T..)."""
    tables: list[str]
    joins: list[tuple[str, str]]                       # view T + k is joins[k]
    client_mix: dict[int, np.ndarray]                  # client node -> weights over tables (sums to 1)
    client_join: dict[int, tuple[float, int]]          # client node -> (join share, join view)
    routes: dict[tuple[int, int], list[tuple[int, float, int]]] = field(default_factory=dict)
    # (node, view) -> [(successor, probability, database of the second query or -1)]
    sequence: set[tuple[int, int]] = field(default_factory=set)   # (first database, second database) of joins
    rank: dict[int, int] = field(default_factory=dict)   # database -> its place in the joins' order (_rank)

    @property
    def n_views(self) -> int:
        return len(self.tables) + len(self.joins)

    def client_views(self, ids: list[str]) -> dict[str, list[tuple[int, float]]]:
        """Per client with a mix: [(view, share of its requests)]."""
        out = {}
        for c, w in self.client_mix.items():
            share, jv = self.client_join.get(c, (0.0, -1))
            out[ids[c]] = [(v, (1 - share) * float(x)) for v, x in enumerate(w) if x > 0] + \
                ([(jv, share)] if jv >= 0 else [])
        return out


def plan_views(plan: Plan, doc) -> list[dict[str, list[tuple[str, float, str | None]]]]:
    """Per view: node id -> [(successor id, probability, database of the second query or None)]."""
    ids = doc.node_ids()
    out: list[dict] = [{} for _ in range(plan.n_views)]
    for (n, v), entries in plan.routes.items():
        out[v][ids[n]] = [(ids[j], p, ids[d] if d >= 0 else None) for j, p, d in entries]
    return out


def _reach(ids, kinds, succ_of) -> list[frozenset[int]]:
    """The databases each node reaches through caches only (a database: itself)."""
    memo: dict[int, frozenset[int]] = {}

    def go(i: int, depth: int = 0) -> frozenset[int]:
        if i not in memo:
            if kinds[i] == "database":
                memo[i] = frozenset((i,))
            elif depth > 10_000:   # the loader refuses loops; a chain of caches is never this long
                memo[i] = frozenset()
            else:
                memo[i] = frozenset().union(*[go(j, depth + 1) for j in succ_of[i]
                                              if kinds[j] in ("cache", "database")])
        return memo[i]
    return [go(i) if kinds[i] in ("server", "cache", "database") else frozenset() for i in range(len(ids))]


def _descendants(start: int, succ_of) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        for j in succ_of[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


def build_plan(ids: list[str], kinds: list[str], params: list[dict], succ_of: list[list[int]],
               level: Callable[[int], int], capacity: Callable[[int], float]) -> Plan | None:
    """The routes by table, after checking that every table is held exactly once
    where it is needed; None when no client declares a table mix (today's routing)."""
    held = {i: list(params[i].get("tables") or []) for i, k in enumerate(kinds) if k == "database"}
    clients = [i for i, k in enumerate(kinds) if k == "client"]
    mixes = {c: {t: w for t, w in (params[c].get("table_mix") or {}).items() if w > 0} for c in clients}
    if not any(held.values()) and not any(mixes.values()):
        return None
    reach = _reach(ids, kinds, succ_of)

    def holds(d: int, t: str) -> bool:
        return not held[d] or t in held[d]

    def used(c: int) -> list[str]:
        extra = list(_join_pair(params[c], mixes[c], ids[c])) if float(params[c].get("join_share", 0)) > 0 else []
        return list(mixes[c]) + [t for t in extra if t not in mixes[c]]

    reached_by: dict[int, list[int]] = {}
    for c in clients:
        for n in _descendants(c, succ_of):
            reached_by.setdefault(n, []).append(c)
    for n, k in enumerate(kinds):
        dbs = sorted(reach[n])
        entry_cache = k == "cache" and any(kinds[q] in ("client", "load_balancer")
                                           for q in range(len(ids)) if n in succ_of[q])
        if not (k == "server" or entry_cache) or not dbs:
            continue
        who = reached_by.get(n, [])
        if not any(held[d] for d in dbs) and not any(mixes[c] for c in who):
            continue   # a pool: no tables here (capacity-proportional split)
        what = f'{k} "{ids[n]}"'
        for c in who:
            if not mixes[c] and len(dbs) > 1:
                raise PartitionError(f'client "{ids[c]}": it has no table_mix, but {what} calls databases that '
                                     f'hold tables ({_names(ids, dbs)}): say which tables its requests touch')
            for t in used(c) if mixes[c] else []:
                have = [d for d in dbs if holds(d, t)]
                if not have:
                    raise PartitionError(f'{what}: no database it calls holds table "{t}" (used by client '
                                         f'"{ids[c]}"); add "{t}" to the tables of one of {_names(ids, dbs)}')
                if len(have) > 1:
                    raise PartitionError(f'{what}: table "{t}" is held by two databases it calls, "{ids[have[0]]}" '
                                         f'and "{ids[have[1]]}"; a table must be held by exactly one (for copies of '
                                         f'a table, give one database read_replicas or shards)')
    if not any(mixes.values()):
        return None
    tables = sorted({t for c in clients if mixes[c] for t in used(c)})
    tindex = {t: v for v, t in enumerate(tables)}
    joins: list[tuple[str, str]] = []
    client_mix, client_join = {}, {}
    for c in sorted(clients, key=lambda c: ids[c]):   # (by id: the order of the nodes changes nothing)
        if not mixes[c]:
            continue
        w = np.zeros(len(tables))
        for t, x in mixes[c].items():
            w[tindex[t]] = x
        client_mix[c] = w / w.sum()
        share = float(params[c].get("join_share", 0.0))
        if share > 0:
            pair = _join_pair(params[c], mixes[c], ids[c])
            if pair not in joins:
                joins.append(pair)
            client_join[c] = (share, len(tables) + joins.index(pair))

    def holder(n: int, t: str) -> int:
        have = [d for d in sorted(reach[n]) if holds(d, t)]
        return have[0] if have else -1

    # equally deep databases of a join: the one holding its first table is queried first (the
    # app reads the user, then the flights), in one order for all joins (the levels must stay
    # a topological order): preferences that contradict an earlier one go by id
    prefer = {(holder(n, a), holder(n, b)) for n, k in enumerate(kinds) if k in ("server", "cache") and reach[n]
              for a, b in joins}
    prefer = {(x, y) for x, y in prefer if x >= 0 and y >= 0 and x != y and level(x) == level(y)}
    plan = Plan(tables, joins, client_mix, client_join, rank=_rank(ids, sorted(held), prefer))

    def leads(j: int, t: str) -> bool:
        return kinds[j] in ("cache", "database") and any(holds(d, t) for d in reach[j])

    for n, k in enumerate(kinds):
        if k not in ("server", "cache") or not reach[n]:
            continue
        for v in range(plan.n_views):
            if v < len(tables):
                go, other = tables[v], None
            else:
                a, b = joins[v - len(tables)]
                ha, hb = holder(n, a), holder(n, b)
                if ha < 0 and hb < 0:
                    continue
                if ha < 0 or hb < 0 or ha == hb:
                    go, other = (a if ha >= 0 else b), None     # one database does the whole join
                else:   # the deeper database first; on a tie the first by rank (one order for all joins)
                    go, other = (a, b) if (level(ha), -plan.rank[ha]) > (level(hb), -plan.rank[hb]) else (b, a)
            elig = [j for j in succ_of[n] if leads(j, go)]
            if not elig:
                continue
            caps = np.array([capacity(j) for j in elig], dtype=float)
            plan.routes[(n, v)] = [(j, float(c / caps.sum()),
                                    holder(n, other) if other is not None and not leads(j, other) else -1)
                                   for j, c in zip(elig, caps)]
            if any(d >= 0 for _, _, d in plan.routes[(n, v)]):
                plan.sequence.add((holder(n, go), holder(n, other)))
    return plan


def _rank(ids: list[str], nodes: list[int], prefer: set[tuple[int, int]]) -> dict[int, int]:
    """A total order of ``nodes`` (node -> place) that puts ``x`` before ``y`` for each
    preference (x, y) it can: Kahn's topological sort taking the smallest id first; on a
    cycle, the smallest id left goes next."""
    after: dict[int, list[int]] = {n: [] for n in nodes}
    before = {n: 0 for n in nodes}
    for x, y in prefer:
        after[x].append(y)
        before[y] += 1
    ready = [(ids[n], n) for n in nodes if before[n] == 0]
    heapq.heapify(ready)
    left = sorted((ids[n], n) for n in nodes)   # for cycles: the smallest id not yet placed
    rank: dict[int, int] = {}
    while len(rank) < len(nodes):
        if ready:
            _, n = heapq.heappop(ready)
            if n in rank:
                continue
        else:
            n = next(m for _, m in left if m not in rank)
        rank[n] = len(rank)
        for y in after[n]:
            before[y] -= 1
            if before[y] == 0 and y not in rank:
                heapq.heappush(ready, (ids[y], y))
    return rank


def sequenced_levels(plan: Plan | None, level: list[int]) -> list[int]:
    """Node levels with each join's second database deeper than its first, so that the
    engine, which processes a level at a time, sends the second query when the first
    answers. Databases send nowhere and the first database of a join is the higher in
    one total order (level, then ``plan.rank``), so the result is still a topological order."""
    out = list(level)
    if plan is None or not plan.sequence:
        return out
    for first in sorted({a for a, _ in plan.sequence}, key=lambda d: (-level[d], plan.rank[d])):
        for a, b in sorted(plan.sequence):
            if a == first:
                out[b] = max(out[b], out[a] + 1)
    return out


def _join_pair(p: dict, mix: dict[str, float], name: str) -> tuple[str, str]:
    pair = list(p.get("join_tables") or [])
    if not pair:
        pair = [t for t, _ in sorted(mix.items(), key=lambda kv: -kv[1])[:2]]
    if len(pair) < 2:
        raise PartitionError(f'client "{name}": join_share > 0 needs two tables to join: set join_tables, '
                             f"or put two tables in its table_mix")
    return pair[0], pair[1]


def joined_tables(doc) -> set[str]:
    """The tables some client joins (join_share > 0)."""
    out: set[str] = set()
    for c in doc.node_ids():
        p = doc.params(c) if doc.kind(c) == "client" else None
        if p and float(p["join_share"]) > 0:
            try:
                out.update(_join_pair(p, {t: w for t, w in p["table_mix"].items() if w > 0}, c))
            except PartitionError:
                pass
    return out


def _names(ids: list[str], nodes) -> str:
    return ", ".join(f'"{ids[d]}"' for d in nodes)


def doc_plan(doc) -> Plan | None:
    """The plan of a document (for the structural analysis); None if it has no table mix
    or its tables are inconsistent (compiling says why)."""
    from .compiler import _node_capacity, _node_levels
    ids = doc.node_ids()
    index = {n: i for i, n in enumerate(ids)}
    kinds = [doc.kind(n) for n in ids]
    params = [doc.params(n) for n in ids]
    succ_of = [[index[t] for t in doc.successors(n)] for n in ids]
    levels = _node_levels(doc, ids)
    try:
        return build_plan(ids, kinds, params, succ_of, lambda i: levels[ids[i]],
                          lambda i: _node_capacity(kinds[i], params[i]))
    except PartitionError:
        return None
