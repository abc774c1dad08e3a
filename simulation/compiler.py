"""Compile a :class:`Document` into immutable numpy arrays for the engine.

Every queueing element becomes a *station*: one per replica of a server,
database, cache or load balancer. A station has ``workers`` identical workers
(FIFO, the earliest free worker takes the next request), a waiting room of
``queue_limit`` requests and a patience of ``timeout_s``. Stations are grouped
by *level* (longest path from a client), so that the engine can process a
whole level at once and route its completions to the next levels (a join's second
database one level below its first: ``partitioning.sequenced_levels``). The records it
builds are in ``network.py``.
"""
from __future__ import annotations

import math
import zlib

import networkx as nx
import numpy as np

from . import budget
from .document import Document
from .partitioning import PartitionError, build_plan, sequenced_levels
from .table_routing import station_routes
from .sharding import ShardedDatabase
from .network import (CACHE, DATABASE, KIND_CODES, LB, SERVER, Balancer, Client, EdgeLookup,  # noqa: F401
                      Network, ReplicatedDatabase, Scaler, SimulationError)


def compile_document(doc: Document) -> Network:
    ids = doc.node_ids()
    index = {n: i for i, n in enumerate(ids)}
    kinds = [doc.kind(n) for n in ids]
    params = [doc.params(n) for n in ids]
    levels_of = _node_levels(doc, ids)
    succ_of = [[index[t] for t in doc.successors(n)] for n in ids]
    try:    # before anything is allocated: refuse what no machine can simulate
        estimate = budget.check(ids, kinds, params, succ_of)
    except budget.BudgetError as e:
        raise SimulationError(str(e)) from None

    st_rows: list[tuple] = []
    node_stations: list[np.ndarray] = []
    scalers: list[Scaler] = []
    replicated: list[tuple[int, float, int, int]] = []   # (first primary station, lag s, primaries, copies)
    caches: list[tuple[int, int, float, bool]] = []   # (station, size in items, TTL s, invalidate on write)
    failovers: list[tuple[int, float]] = []   # (database node, seconds before a replica is promoted)
    databases: list[ReplicatedDatabase] = []
    sharded: list[tuple[int, int]] = []   # (database node, first station)
    for i, n in enumerate(ids):
        k, p = kinds[i], params[i]
        if k == "client":
            node_stations.append(np.zeros(0, dtype=np.int64))
            continue
        first = len(st_rows)
        if k == "server":
            c = int(p["workers"])
            mean = c / float(p["capacity_rps"])
            sessions = {"local": 0, "database": 1, "cookie": 2}[p["sessions"]]
            slots = int(p["replicas"])
            if p["autoscale"]:
                slots = int(p["max_replicas"])
                start = min(max(int(p["replicas"]), int(p["min_replicas"])), slots)
                scalers.append(Scaler(i, first, first + slots, int(p["min_replicas"]), slots, start,
                                      float(p["target_utilization"]), float(p["scale_interval_s"]),
                                      float(p["scale_down_delay_s"]), float(p["boot_time_s"])))
            for r in range(slots):
                st_rows.append((i, r, SERVER, c, mean, mean, p["service"] == "deterministic",
                                int(p["queue_limit"]), float(p["timeout_s"]), sessions))
        elif k == "load_balancer":
            mean = 1.0 / float(p["capacity_rps"])
            st_rows.append((i, 0, LB, 1, mean, mean, True, int(p["queue_limit"]), 30.0, -1))
        elif k == "database":
            c = int(p["connections"])
            n_primaries, n_shards = int(p.get("primaries", 1)), int(p.get("shards", 1))
            group = n_primaries + int(p["read_replicas"])
            if n_shards > 1 and n_primaries > 1:
                raise SimulationError(f'database "{n}": several primaries and several shards together are not '
                                      "modelled; each shard has one primary (set primaries to 1, or shards to 1)")
            if n_shards > 1:
                sharded.append((i, first))
            for r in range(group * n_shards):   # shard s: replicas s·group (its first primary) .. s·group + group − 1
                st_rows.append((i, r, DATABASE, c, c / float(p["read_capacity_rps"]),
                                c / float(p["write_capacity_rps"]), False, int(p["queue_limit"]),
                                float(p["timeout_s"]), -1))
            if group > 1:
                if float(p["failover_s"]) > 0 and n_primaries == 1:
                    failovers.append((i, float(p["failover_s"])))
                for s in range(n_shards):
                    g = first + s * group
                    replicated.append((g, float(p["replication_lag_ms"]) / 1000.0, n_primaries, group))
                    databases.append(ReplicatedDatabase(
                        i, np.arange(g, g + group, dtype=np.int64), float(p["replication_lag_ms"]) / 1000.0,
                        float(p["failover_s"]), float(p["monitor_interval_s"]), int(p["monitor_misses"]),
                        n_primaries, bool(p.get("auto_increment_offsets", False)), shard=s))
        elif k == "cache":
            c = int(p["connections"])
            mean = c / float(p["capacity_rps"])
            st_rows.append((i, 0, CACHE, c, mean, mean, False, 100_000, 30.0, -1))
            caches.append((len(st_rows) - 1, int(p["capacity_items"]), float(p["ttl_s"]),
                           p["invalidation"] == "on_write"))
        node_stations.append(np.arange(first, len(st_rows), dtype=np.int64))

    cols = list(zip(*st_rows)) if st_rows else [()] * 10
    st_node = np.array(cols[0], dtype=np.int64)
    st_level = np.array([levels_of[ids[i]] for i in range(len(ids))], dtype=np.int64)[st_node]
    n_st = len(st_node)
    node_capacity = np.array([float(p.get("capacity_rps", p.get("read_capacity_rps", 1.0))) for p in params])
    st_capacity = node_capacity[st_node] if n_st else np.zeros(0)

    # Routing of completions for servers, caches and databases: split over successors.
    # Every replica of a node has the same row: built once per node, repeated per replica.
    row_target: list[np.ndarray] = []
    row_cum: list[np.ndarray] = []
    row_len = np.zeros(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        succ = succ_of[i]
        if kinds[i] in ("client", "load_balancer") or not succ or not len(node_stations[i]):
            row_target.append(np.zeros(0, dtype=np.int64))
            row_cum.append(np.zeros(0))
            continue
        caps = np.array([_node_capacity(kinds[j], params[j]) for j in succ], dtype=float)
        counts = np.array([len(node_stations[j]) for j in succ], dtype=np.int64)
        targets = np.concatenate([node_stations[j] for j in succ]).astype(np.int64)
        prob = np.repeat(caps / caps.sum() / np.maximum(counts, 1), counts)
        c = np.cumsum(prob)
        row_target.append(targets)
        row_cum.append(c / c[-1])
        row_len[i] = len(targets)
    st_row_len = row_len[st_node] if n_st else np.zeros(0, dtype=np.int64)
    route_ptr_a = np.concatenate([[0], np.cumsum(st_row_len)]).astype(np.int64)
    routed = [int(s[0]) for s in node_stations if len(s)]   # nodes in station order
    route_target_a = np.concatenate([np.tile(row_target[st_node[f]], len(node_stations[st_node[f]]))
                                     for f in routed]).astype(np.int64) if n_st else np.zeros(0, dtype=np.int64)
    route_cum = np.concatenate([np.tile(row_cum[st_node[f]], len(node_stations[st_node[f]]))
                                for f in routed]) if n_st else np.zeros(0)

    # Balancers.
    balancers: list[Balancer] = []
    st_balancer = np.full(n_st, -1, dtype=np.int64)
    for i, n in enumerate(ids):
        if kinds[i] != "load_balancer":
            continue
        p = params[i]
        backends, weights = [], []
        for j in succ_of[i]:
            backends.extend(node_stations[j].tolist())
            weights.extend(st_capacity[node_stations[j]].tolist())
        b = Balancer(i, int(node_stations[i][0]), p["algorithm"], p["affinity"] == "sticky",
                     np.array(backends, dtype=np.int64), np.array(weights, dtype=float),
                     float(p["health_interval_s"]), int(p["unhealthy_after"]), int(p["healthy_after"]),
                     float(p["health_check_cost_ms"]) / 1000.0, float(p["heartbeat_interval_s"]),
                     int(p["heartbeat_misses"]), int(p["priority"]))
        st_balancer[b.station] = len(balancers)
        balancers.append(b)

    # Clients.
    clients: list[Client] = []
    browser = _browser_policies(doc, ids, kinds, params, succ_of)
    offset = 0
    for i in sorted((i for i, k in enumerate(kinds) if k == "client"), key=lambda i: ids[i]):
        n = ids[i]   # (by id: the users' numbers, and all that follows them, do not depend on the order of the nodes)
        p = params[i]
        entries = list(succ_of[i])
        clients.append(Client(n, float(p["rate_rps"]), int(p["users"]), offset, p["pattern"],
                              float(p["read_ratio"]), entries, p["entry_policy"] == "failover", i,
                              zlib.crc32(n.encode()), float(p["forged_share"]), int(p["items"]),
                              float(p["zipf_s"]), *browser[i], insert_share=float(p.get("insert_share", 0.0)),
                              cross_shard_share=float(p.get("cross_shard_share", 0.0))))
        offset += int(p["users"])
    if offset > 50_000_000:
        raise SimulationError("users of " + ", ".join(f'client "{c.node_id}" ({c.users:,})' for c in clients[:4])
                              + (", ..." if len(clients) > 4 else "")
                              + f": too many in all ({offset:,}); at most 50,000,000")

    _check_sessions(doc, ids, kinds, params)
    _check_events(doc)
    key_space = {"item": max((c.items for c in clients), default=1), "user": max(offset, 1)}
    shards = [ShardedDatabase(i, first, int(params[i]["shards"]), params[i]["shard_key"], params[i]["shard_scheme"],
                              key_space[params[i]["shard_key"]], 1 + int(params[i]["read_replicas"]))
              for i, first in sharded]

    try:   # tables: which database holds what (partitioning.py)
        plan = build_plan(ids, kinds, params, succ_of, lambda i: levels_of[ids[i]],
                          lambda i: _node_capacity(kinds[i], params[i]))
    except PartitionError as e:
        raise SimulationError(str(e)) from None
    partitions = station_routes(plan, len(ids), node_stations, clients) if plan is not None else None
    if plan is not None and plan.sequence:   # a join's second database after its first (partitioning.py)
        node_level = sequenced_levels(plan, [levels_of[n] for n in ids])
        st_level = np.array(node_level, dtype=np.int64)[st_node]

    max_level = int(st_level.max()) if n_st else -1
    by_level = np.argsort(st_level, kind="stable")
    cuts = np.searchsorted(st_level[by_level], np.arange(1, max_level + 1))
    levels = [a.astype(np.int64) for a in np.split(by_level, cuts)] if n_st else []
    edges = doc.edges()
    edge_index = {(index[s], index[t]): k for k, (s, t) in enumerate(edges)}
    st_workers = np.array(cols[3], dtype=np.int64)
    # a blocking server holds its worker until its downstream calls return: without any, the
    # request leaves at the end of its service there, as at any server (no held time, no sweeps);
    # nor does one that no client's requests reach (health checks there hold nothing either)
    reached = _reached(kinds, succ_of)
    blocks = [kinds[i] == "server" and bool(params[i].get("blocking_calls", False)) and bool(succ_of[i])
              and reached[i] for i in range(len(ids))]
    return Network(
        node_ids=ids, node_kind=kinds, node_stations=node_stations,
        st_node=st_node, st_replica=np.array(cols[1], dtype=np.int64), st_kind=np.array(cols[2], dtype=np.int64),
        st_level=st_level, st_workers=st_workers,
        st_mean_read=np.array(cols[4], dtype=float), st_mean_write=np.array(cols[5], dtype=float),
        st_deterministic=np.array(cols[6], dtype=bool), st_queue_limit=np.array(cols[7], dtype=np.int64),
        st_timeout=np.array(cols[8], dtype=float),
        st_sessions=np.array(cols[9], dtype=np.int64),
        st_signed=np.array([bool(params[i].get("cookie_signed", True)) for i in cols[0]], dtype=bool),
        st_nm_cost=np.array([float(params[i].get("not_modified_cost", 1.0)) for i in cols[0]], dtype=float),
        route_ptr=route_ptr_a, route_target=route_target_a, route_cum=route_cum,
        clients=clients, balancers=balancers, st_balancer=st_balancer, levels=levels,
        edge_index=edge_index, edges=edges, total_users=offset,
        scalers=scalers,
        caches=caches,
        failovers=failovers,
        st_primary=_primaries(len(st_rows), st_node, node_stations, replicated),
        st_lag=_lags(len(st_rows), st_node, node_stations, replicated),
        max_workers=int(st_workers.max()) if n_st else 1,
        databases=databases,
        estimate=estimate,
        shards=shards,
        partitions=partitions,
        st_blocking=np.array([blocks[i] for i in cols[0]], dtype=bool),
        st_reached=np.array([reached[i] for i in cols[0]], dtype=bool),
    )


def _reached(kinds: list[str], succ_of: list[list[int]]) -> list[bool]:
    """Per node: whether the clients' requests can reach it (along the connections)."""
    seen = [k == "client" for k in kinds]
    todo = [i for i, k in enumerate(seen) if k]
    while todo:   # each node is pushed at most once
        i = todo.pop()
        for j in succ_of[i]:
            if not seen[j]:
                seen[j] = True
                todo.append(j)
    return seen


def _browser_policies(doc: Document, ids: list[str], kinds: list[str], params: list[dict],
                      succ_of: list[list[int]]) -> dict[int, tuple[float, bool]]:
    """The Cache-Control each client's browser sees: that of the first servers on its
    paths (the shortest max-age if they differ; ETags only if all send them).

    One pass over the graph from its ends: each node knows the (shortest max-age,
    all ETags, any server) of the first servers reachable through it."""
    seen: dict[int, tuple[float, bool, bool]] = {}
    for i in _reverse_topological(ids, succ_of):
        age, etag, any_server = math.inf, True, False
        for j in succ_of[i]:
            if kinds[j] == "server":
                a, e, f = float(params[j]["cache_max_age_s"]), bool(params[j]["etag"]), True
            else:
                a, e, f = seen[j]
            if f:
                age, etag, any_server = min(age, a), etag and e, True
        seen[i] = (age, etag, any_server)
    out = {}
    for i, k in enumerate(kinds):
        if k == "client":
            age, etag, any_server = seen[i]
            out[i] = (age, etag) if any_server else (0.0, False)
    return out


def _reverse_topological(ids: list[str], succ_of: list[list[int]]) -> list[int]:
    """Node indices, every node after all of its successors (the graph has no loops)."""
    indegree = [0] * len(ids)
    for succ in succ_of:
        for j in succ:
            indegree[j] += 1
    stack = [i for i in range(len(ids)) if indegree[i] == 0]
    order = []
    while stack:
        i = stack.pop()
        order.append(i)
        for j in succ_of[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                stack.append(j)
    return order[::-1]


def _primaries(n: int, st_node: np.ndarray, node_stations: list[np.ndarray],
               replicated: list[tuple[int, float, int]]) -> np.ndarray:
    """Each station's primary: itself, except for a database's read replicas (the first primary of their group)."""
    out = np.arange(n, dtype=np.int64)
    for first, _, n_primaries, size in replicated:
        out[first + n_primaries:first + size] = first
    return out


def _lags(n: int, st_node: np.ndarray, node_stations: list[np.ndarray],
          replicated: list[tuple[int, float, int]]) -> np.ndarray:
    out = np.zeros(n)
    for first, lag, n_primaries, size in replicated:
        out[first + n_primaries:first + size] = lag
    return out


def _node_capacity(kind: str, p: dict) -> float:
    if kind == "server":
        return float(p["capacity_rps"]) * int(p["replicas"])
    if kind == "database":
        return float(p["read_capacity_rps"]) * (int(p.get("primaries", 1)) + int(p["read_replicas"])) \
            * int(p.get("shards", 1))
    return float(p["capacity_rps"])


def _node_levels(doc: Document, ids: list[str]) -> dict[str, int]:
    """Longest distance from any source: a node's stations come after all their feeders."""
    g = doc.graph
    level = {n: 0 for n in ids}
    for n in nx.topological_sort(g):
        for t in g.successors(n):
            level[t] = max(level[t], level[n] + 1)
    return level


def _check_events(doc: Document) -> None:
    """A scheduled event must name a replica its node has (the file loader checks this; a
    document built or edited in code may not: it stopped the run when the event came)."""
    for i, ev in enumerate(doc.events):
        if ev.replica is not None and ev.node in doc.node_ids():
            count = doc.replicas(ev.node)
            if not 0 <= ev.replica < count:
                raise SimulationError(f'scheduled event #{i + 1} ({ev.action} "{ev.node}" replica {ev.replica} at '
                                      f'{ev.at_s:g} s): "{ev.node}" has replicas 0 to {count - 1}; remove the event '
                                      f"or give the node more replicas")


def _check_sessions(doc: Document, ids, kinds, params) -> None:
    for i, n in enumerate(ids):
        if kinds[i] == "server" and params[i]["sessions"] == "database":
            stores = [t for t in doc.successors(n) if doc.kind(t) in ("database", "cache")]
            if not stores:
                raise SimulationError(
                    f'server "{n}" keeps its sessions in the database but calls no database: '
                    f"connect it to a database (or a cache), or set sessions to local or cookie")
