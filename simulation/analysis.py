"""Single points of failure: by structure (graph only) and empirically (with the engine).

The question is asked per machine: what is lost, for good, while one machine is
down? A node's machine is the node itself, replica 0 of a replicated server, or
the primary of a database with read replicas (``failed_machine``).

- A **full** SPOF cuts some client off completely: (at least 99 % of) all of
  its requests fail.
- A **partial** SPOF loses a share of the requests and nothing takes that share
  over, so it stays lost until the machine recovers: one of two databases a
  server splits its calls over (there is no retry), one of two entries of a
  client in DNS round robin (the dead one keeps getting its share), a database
  primary without failover (its writes), one replica of a server reached
  without a load balancer, a database behind a cache (the hits are still
  answered)…

Structural model. The share is computed from the routing probabilities the
engine uses, for reads and writes separately (``compiler.py``, ``arrivals.py``):

- a **client** sends its requests uniformly over its entries (entry policy
  round_robin) or all to the first entry that has a machine up (failover);
- a **load balancer** spreads over its backends' machines (equally, or by
  capacity for the weighted and load-aware algorithms); its health checks take
  a dead machine out, so only what is lost downstream of the live ones counts
  (all of it when no backend is left);
- a **server**, **cache** or **database** splits its calls over its downstream
  nodes in proportion to their capacity, and over each node's machines
  equally; nothing checks their health, so a dead machine keeps its share;
- a **cache** answers read hits (its steady-state hit ratio, ``caching.py``)
  and passes misses and writes on;
- a database's writes go to its primary; when it is down they fail, unless
  failover promotes a read replica or the database has several primaries (the
  proxy moves a dead primary's writes to the others).

This is a linear recursion over "what share of this node's reads and writes is
lost when machine *b* fails" (a map per node, only for the *b* that change it),
done once in reverse topological order (the loader refuses loops). A client's
loss weighs reads and writes by its read ratio; the share of a SPOF is the
expected share of the requests served with nothing failed that it loses
(clients weighted by their rates), which is what the engine measures. Browser
caches count in the steady state: the reads they answer are not requests and do
not reach the caches (so a cache sees flatter popularity). 304 answers and
overload are left out: ``empirical_spof`` measures them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import networkx as nx
import numpy as np

from .document import Document
from .steady_traffic import BY_CAPACITY, _browser_kept, _cache_hits, _requests, _split, machines  # noqa: F401

# Shares below this are not reported (by either analysis): noise, not a lesson.
PARTIAL_MIN = 0.02
# A client that loses this share of its requests is cut off (both analyses): a
# full SPOF. Measured, the rest are requests that were already on their way.
FULL_MIN = 0.99
# The app's database proxy stops sending reads to a dead copy once its monitor
# notices (replication.py), so a dead copy loses no reads for good.
DEAD_REPLICA_GETS_READS = False

Loss = tuple[float, float]          # share of the reads and of the writes lost
NONE: Loss = (0.0, 0.0)
ALL: Loss = (1.0, 1.0)


@dataclass(frozen=True)
class Spof:
    """A single point of failure as a user reads it."""
    full: bool          # some client is cut off completely
    share: float        # expected share of the requests served with nothing failed that are lost while it is down
    reason: str         # one or two sentences for a tooltip

    @property
    def kind(self) -> str:
        return "full" if self.full else "partial"


@dataclass(frozen=True)
class Measured:
    """What the engine loses while one machine is down (``empirical_spof``)."""
    share: float        # share of the requests served without the failure that are lost (nan: not measured)
    spof_share: float   # the same with unlimited capacity: what nothing takes over, overload left out
    worst: float        # spof_share of the client that loses most
    kind: str | None    # SPOF: "full" (some client loses all), "partial" or None (under PARTIAL_MIN)


@dataclass
class _Map:
    """Share of a node's reads and writes lost: with nothing failed (``base``: a
    broken path) and when one machine is down (``by``, only where it differs)."""
    base: Loss
    by: dict[str, Loss]

    def at(self, machine: str) -> Loss:
        return self.by.get(machine, self.base)


def _mix(parts: list[tuple[float, _Map]]) -> _Map:
    """The loss of a request that goes on with probability ``w`` through each part."""
    base = (sum(w * m.base[0] for w, m in parts), sum(w * m.base[1] for w, m in parts))
    delta: dict[str, list[float]] = {}
    for w, m in parts:
        for b, (r, wr) in m.by.items():
            d = delta.setdefault(b, [0.0, 0.0])
            d[0] += w * (r - m.base[0])
            d[1] += w * (wr - m.base[1])
    return _Map(base, {b: (base[0] + d[0], base[1] + d[1]) for b, d in delta.items()})


class _Cached:
    """What this module asks of a document, answered once (``Document.successors``
    sorts all edges on every call: too slow for a pass over thousands of nodes)."""

    def __init__(self, doc: Document) -> None:
        self.graph = doc.graph
        self._doc = doc
        self._ids = doc.node_ids()
        self._kind = {n: doc.kind(n) for n in self._ids}
        self._succ: dict[str, list[str]] = {n: [] for n in self._ids}
        self._pred: dict[str, list[str]] = {n: [] for n in self._ids}
        for a, b in doc.edges():
            self._succ[a].append(b)
            self._pred[b].append(a)
        self._params: dict[str, dict] = {}
        self.label_counts = Counter(doc.node(n).label or n for n in self._ids)   # for spof_text.label

    def node_ids(self) -> list[str]:
        return self._ids

    def node(self, node_id: str):  # noqa: ANN201 (a NodeData)
        return self._doc.node(node_id)

    def kind(self, node_id: str) -> str:
        return self._kind[node_id]

    def successors(self, node_id: str) -> list[str]:
        return self._succ[node_id]

    def predecessors(self, node_id: str) -> list[str]:
        return self._pred[node_id]

    def params(self, node_id: str) -> dict:
        if node_id not in self._params:
            self._params[node_id] = self._doc.params(node_id)
        return self._params[node_id]


# ----- machines ------------------------------------------------------------------------------------
def failed_machine(doc: Document, node_id: str) -> int | None:
    """The replica failed to ask "what if one machine fails": replica 0 (a database's
    primary) where there are several, ``None`` (the whole node) otherwise."""
    return 0 if doc.kind(node_id) != "client" and machines(doc, node_id) >= 2 else None


def _own(doc: Document, node_id: str, cross: bool = False) -> Loss:
    """Share of the requests sent to a node by a client or a server (no health
    checks) that fail while its machine is down. ``cross``: the requests are
    cross-shard queries (at a sharded database they need every shard)."""
    n = machines(doc, node_id)
    p = doc.params(node_id)
    if p.get("autoscale"):   # a replacement boots, and the dead replica keeps its share among n + 1
        return 1.0 / (n + 1), 1.0 / (n + 1)
    if n < 2:
        return ALL
    if doc.kind(node_id) == "database" and int(p.get("shards", 1)) > 1:   # a shard: the requests it owns
        share = shard_share(doc, node_id, 0, cross=False)
        group = 1 + int(p["read_replicas"])
        if group == 1:
            return (1.0, 1.0) if cross else (share, share)
        failover = float(p["failover_s"]) > 0
        if cross:   # its parts go to the same place in every shard, without asking the proxy (sharding.py):
            # a read whose own place is the dead primary's (1 / group) fails unless its own shard is the dead one
            return (1 - share) / group, 0.0 if failover else 1.0
        reads = share / group if DEAD_REPLICA_GETS_READS else 0.0   # its primary
        return reads, 0.0 if failover else share
    if doc.kind(node_id) == "database":
        reads = 1.0 / n if DEAD_REPLICA_GETS_READS else 0.0
        # several primaries: the proxy moves a dead one's writes to the others
        takes_over = float(p["failover_s"]) > 0 or int(p.get("primaries", 1)) >= 2
        return reads, 0.0 if takes_over else 1.0
    return 1.0 / n, 1.0 / n


def _through(doc: Document, maps: dict[str, _Map], node_id: str, cross: bool = False) -> _Map:
    """Loss of a request sent to ``node_id`` by a client or a server: its own machine, then downstream."""
    m = maps[node_id]
    o = _own(doc, node_id, cross)
    own = (o[0] + (1 - o[0]) * m.base[0], o[1] + (1 - o[1]) * m.base[1])
    return _Map(m.base, {**m.by, node_id: own})


def shard_share(doc: Document, node_id: str, shard: int, cross: bool = True) -> float:
    """Share of a sharded database's requests that shard ``shard`` owns (items weighted by
    the clients' Zipf popularity, users equally), plus (``cross``) the cross-shard queries
    of all clients (they need every shard)."""
    from .sharding import owner, query_weights
    p = doc.params(node_id)
    pop, share = query_weights(doc, p["shard_key"])
    own = owner(p["shard_scheme"], int(p["shards"]), np.arange(len(pop)), len(pop))
    mine = float(pop[own == shard].sum() / pop.sum()) if pop.sum() > 0 else 0.0
    return share + (1 - share) * mine if cross else mine


def _balance(doc: Document, maps: dict[str, _Map], lb: str) -> _Map:
    """A load balancer: dead machines are taken out by its health checks."""
    by_capacity = doc.params(lb)["algorithm"] in BY_CAPACITY
    backends = []   # (node, weight of all its machines, weight of the machine that fails)
    for s in doc.successors(lb):
        w = float(doc.params(s).get("capacity_rps", 1.0)) if by_capacity else 1.0
        # one machine fails; an autoscaler replaces it, so in the end the node keeps its weight
        backends.append((s, w * machines(doc, s), 0.0 if doc.params(s).get("autoscale") else w))
    total = sum(w for _, w, _ in backends)
    if not total:
        return _Map(ALL, {})
    out = _mix([(w / total, maps[s]) for s, w, _ in backends])
    for s, w, dead in backends:
        left = total - dead
        if left <= 1e-12:
            out.by[s] = ALL
            continue
        mixed, own = out.at(s), maps[s].base
        out.by[s] = ((total * mixed[0] - dead * own[0]) / left, (total * mixed[1] - dead * own[1]) / left)
    return out


def _both(a: _Map, b: _Map) -> _Map:
    """The loss of a request that needs two independent paths (a join over two databases)."""
    def f(x: Loss, y: Loss) -> Loss:
        return 1 - (1 - x[0]) * (1 - y[0]), 1 - (1 - x[1]) * (1 - y[1])
    return _Map(f(a.base, b.base), {k: f(a.at(k), b.at(k)) for k in {*a.by, *b.by}})


def _loss_maps(doc: Document, hits: dict[str, float], routes: dict | None = None, cross: bool = False) -> dict[str, _Map]:
    """``routes``: a view of the partitioning plan (node -> [(successor, probability,
    database of a join's second query or None)]); None: the usual split. ``cross``: of
    cross-shard queries (a join's second query is not one: it goes to its key's shard)."""
    maps: dict[str, _Map] = {}
    for node_id in reversed(list(nx.topological_sort(doc.graph))):
        kind = doc.kind(node_id)
        if kind == "client":
            continue
        if kind == "load_balancer":
            maps[node_id] = _balance(doc, maps, node_id)
            continue
        if routes is not None and node_id in routes:
            m = _mix([(p, _through(doc, maps, s, cross) if d is None
                       else _both(_through(doc, maps, s, cross), _through(doc, maps, d)))
                      for s, p, d in routes[node_id]])
        else:
            split = _split(doc, node_id)
            m = _mix([(p, _through(doc, maps, s, cross)) for s, p in split]) if split else _Map(NONE, {})
        if kind == "cache":   # hits are answered here: only misses and writes go on
            miss = 1.0 - hits.get(node_id, 0.0)
            m = _Map((miss * m.base[0], m.base[1]), {b: (miss * r, w) for b, (r, w) in m.by.items()})
        maps[node_id] = m
    return maps


def _client_map(doc: Document, maps: dict[str, _Map], client: str) -> _Map:
    entries = doc.successors(client)
    if doc.params(client)["entry_policy"] != "failover":   # DNS round robin: equal shares
        return _mix([(1.0 / len(entries), _through(doc, maps, e)) for e in entries])
    first = _through(doc, maps, entries[0])
    if machines(doc, entries[0]) < 2 and not doc.params(entries[0]).get("autoscale"):
        # the first entry is gone (an autoscaled one is replaced): the next one takes everything
        first.by[entries[0]] = _through(doc, maps, entries[1]).at(entries[0]) if len(entries) > 1 else ALL
    return first


def _table_maps(doc: Document, hits: dict[str, float], cross: bool) -> dict[str, list]:
    """For each client with a table mix: [(share of its requests, loss maps of that table
    or join)] (partitioning.py); joins are never cache hits."""
    from .partitioning import doc_plan, plan_views
    plan = doc_plan(doc)
    if plan is None:
        return {}
    views = [_loss_maps(doc, hits if v < len(plan.tables) else {}, r, cross)
             for v, r in enumerate(plan_views(plan, doc))]
    return {c: [(w, views[v]) for v, w in ws] for c, ws in plan.client_views(doc.node_ids()).items()}


def _client_loss(doc: Document, c: str, classes: list[tuple[dict[str, _Map], dict[str, list]]]) -> _Map:
    """A client's loss map: over its cross-shard and other queries (``classes``: the maps
    of plain queries, then of cross-shard ones), and over its tables and joins."""
    def of(maps: dict[str, _Map], by_table: dict[str, list]) -> _Map:
        if c in by_table:
            return _mix([(w, _client_map(doc, tm, c)) for w, tm in by_table[c]])
        return _client_map(doc, maps, c)
    x = float(doc.params(c).get("cross_shard_share", 0.0)) if len(classes) > 1 else 0.0
    if x <= 0:
        return of(*classes[0])
    if x >= 1:
        return of(*classes[1])
    return _mix([(1 - x, of(*classes[0])), (x, of(*classes[1]))])


def structural_spof(doc: Document) -> dict[str, Spof]:
    """Single points of failure by structure, full and partial, in document order.

    Clients are never SPOFs (their failure only stops their own traffic); a
    client that cannot reach a server even with everything up has none either
    (it is broken already, not fragile).
    """
    from .spof_text import full_reason, partial_reason  # (it uses this module's machines)

    doc = _Cached(doc)   # type: ignore[assignment]
    hits = _cache_hits(doc)
    clients = [c for c in doc.node_ids() if doc.kind(c) == "client" and doc.successors(c)]
    classes = [(_loss_maps(doc, hits), _table_maps(doc, hits, False))]
    sharded = any(doc.kind(n) == "database" and int(doc.params(n).get("shards", 1)) > 1 for n in doc.node_ids())
    if sharded and any(float(doc.params(c).get("cross_shard_share", 0.0)) > 0 for c in clients):
        # cross-shard queries need every shard: a client's own share of them, not the average (sharding.py)
        classes.append((_loss_maps(doc, hits, cross=True), _table_maps(doc, hits, True)))
    kept = _browser_kept(doc)
    requests = {c: _requests(doc, c, kept) for c in clients}   # browser hits are not requests
    rates = {c: requests[c][0] for c in clients}
    if not any(rates.values()):
        rates = dict.fromkeys(clients, 1.0)
    cut_off: dict[str, list[str]] = {}
    lost: dict[str, list[float]] = {}   # machine -> [reads lost, writes lost] per second
    served = 0.0                         # requests served per second with nothing failed
    for c in clients:
        m = _client_loss(doc, c, classes)
        rr = requests[c][1]
        base = rr * m.base[0] + (1 - rr) * m.base[1]
        if base >= 1 - 1e-9 or not rates[c]:
            continue   # broken already, or sends nothing
        served += rates[c] * (1 - base)
        for b, (r, w) in m.by.items():
            if (rr * r + (1 - rr) * w - base) / (1 - base) >= FULL_MIN:   # of what it was served
                cut_off.setdefault(b, []).append(c)
            acc = lost.setdefault(b, [0.0, 0.0])
            acc[0] += rates[c] * rr * (r - m.base[0])
            acc[1] += rates[c] * (1 - rr) * (w - m.base[1])
    # shares of what is served with nothing failed (what the engine measures too)
    lost = {b: [v / served for v in acc] for b, acc in lost.items()} if served > 0 else {}
    out: dict[str, Spof] = {}
    for n in doc.node_ids():
        reads, writes = lost.get(n, (0.0, 0.0))
        share = reads + writes
        if n in cut_off:
            whole = "" if share >= FULL_MIN else f" ({share:.0%} of all requests)"
            out[n] = Spof(True, share, full_reason(doc, n, cut_off[n]) + whole)
        elif share >= PARTIAL_MIN:
            out[n] = Spof(False, share, partial_reason(doc, n, share, reads, writes))
    return out


def empirical_spof(doc: Document, seconds: float = 60.0, seed: int | None = None, *,
                   whole_node: bool = False, overload: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Measured]:
    """Fail each node's machine in turn and measure what is lost (see ``spof_measure.py``)."""
    from .spof_measure import measure  # the engine is optional for the structural analysis
    return measure(doc, seconds, seed, whole_node=whole_node, overload=overload, progress=progress)
