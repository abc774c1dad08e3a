"""Single points of failure: by structure (graph only) and empirically (with the engine).

Structural model. A client's requests are served when they can follow a path
client → … → the end of a request's path, and every node on it works:

- a **client** needs one working entry node (DNS round robin or failover);
- a **load balancer** needs one working backend (none at all: it serves nobody);
- a **server** or **cache** with downstream nodes needs one working downstream
  node: it calls them (a server that calls a database needs that database); the
  engine spreads its calls over all of them in proportion to capacity, so two
  databases behind a server are interchangeable, like two entries of a client;
- a server, cache or database with nothing downstream ends the path.

A cache answers read hits itself but passes misses and writes on, and writes
have no other way: so the cache counts as needing its downstream node, and the
database behind a lone cache stays a SPOF (a user sees every write fail),
although while it is down the hits are still answered (the empirical loss is
then a large share rather than everything).

A SPOF is a node whose failure cuts some client off *completely*; a failure that
only loses a share of the traffic (one of two DNS entries, one of two databases)
is not a SPOF, since another path still serves. The question is asked per
machine: a node with ``replicas`` ≥ 2 is several machines and one of them
failing leaves the others, so a replicated node is never the single point
itself; what all its replicas share (the lone load balancer in front, the
database they all call) still can be. This is what ``empirical_spof`` measures
too: a SPOF loses (nearly) all traffic, any other node a share of it (but see
caches above).

For an acyclic graph (the loader refuses loops) this gives an exact recursion
over "the set of single failures that break this node": a node needing one of
its children is broken by what breaks all of them (the intersection), plus
itself unless it is replicated: a linear pass in topological order.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import networkx as nx

from .document import Document

# Kinds that serve nobody without a downstream node; the others end the path there.
NEEDS_DOWNSTREAM = {"client", "load_balancer"}

# None means "broken whatever fails" (e.g. a load balancer with no backend).
Breakers = frozenset[str] | None


def _replicas(doc: Document, node_id: str) -> int:
    """Machines that always exist: an autoscaled server keeps at least min_replicas."""
    params = doc.params(node_id)
    if params.get("autoscale"):
        return int(params["min_replicas"])
    if params.get("read_replicas") and params.get("failover_s", 0) > 0:
        return 1 + int(params["read_replicas"])   # a replica takes over the writes
    return int(params.get("replicas", 1))


def _breakers(doc: Document) -> dict[str, Breakers]:
    """For every node, the set of single non-replicated nodes whose failure breaks it."""
    out: dict[str, Breakers] = {}
    for node_id in reversed(list(nx.topological_sort(doc.graph))):
        kind = doc.kind(node_id)
        children = [out[c] for c in doc.graph.successors(node_id)]
        working = [c for c in children if c is not None]
        if (children and not working) or (not children and kind in NEEDS_DOWNSTREAM):
            out[node_id] = None
            continue
        merged = frozenset.intersection(*working) if working else frozenset()
        if kind != "client" and _replicas(doc, node_id) < 2:
            merged = merged | {node_id}
        out[node_id] = merged
    return out


def _names(doc: Document, ids: list[str]) -> str:
    names = [doc.node(i).label or i for i in ids]
    if len(names) <= 1:
        return "".join(names)
    if len(names) > 4:
        names = names[:3] + [f"{len(names) - 3} more client groups"]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _called_by_servers(doc: Document, node_id: str) -> bool:
    """Whether the node is only reached as a call made by servers (a dependency, not an entry)."""
    preds = list(doc.graph.predecessors(node_id))
    return bool(preds) and all(doc.kind(p) in ("server", "cache") for p in preds)


def _reason(doc: Document, node_id: str, clients: list[str]) -> str:
    who = _names(doc, clients)
    kind = doc.kind(node_id)
    label = {"load_balancer": "load balancer"}.get(kind, kind)
    if kind == "database" and int(doc.params(node_id).get("read_replicas", 0)):
        return (f"Every server of {who} writes to this database's primary: its read replicas "
                "cannot take writes (single-primary replication) unless failover is on")
    if kind == "database" or (kind == "server" and _called_by_servers(doc, node_id)):
        preds = list(doc.graph.predecessors(node_id))
        if preds and all(doc.kind(p) == "cache" for p in preds):
            return (f"Every server of {who} calls this {label} through a cache that only answers read hits: "
                    "writes and misses need it; it has no replica")
        return f"Every server of {who} calls this {label}; it has no replica"
    if kind == "server":
        return (f"If this server fails, {who} cannot reach any server: "
                "it is the only one on their path and has no replica")
    return f"If this {label} fails, {who} cannot reach any server"


def structural_spof(doc: Document) -> dict[str, str]:
    """Single points of failure by structure: ``{node_id: reason for a tooltip}``.

    Nodes are returned in document order. Clients are never SPOFs (their failure
    only stops their own traffic); a client that cannot reach a server even with
    everything up has no SPOF either (it is broken already, not fragile).
    """
    breakers = _breakers(doc)
    cut_off: dict[str, list[str]] = {}
    for node_id in doc.node_ids():
        if doc.kind(node_id) != "client" or not doc.successors(node_id):
            continue
        hits = breakers[node_id]
        if hits is None:
            continue
        for spof in hits:
            cut_off.setdefault(spof, []).append(node_id)
    return {n: _reason(doc, n, cut_off[n]) for n in doc.node_ids() if n in cut_off}


def _availability(totals: dict[str, Any]) -> float:
    """Share of finished requests that were served (in-flight ones are not judged yet)."""
    finished = totals["served"] + totals["failed"]
    return totals["served"] / finished if finished else math.nan


def empirical_spof(doc: Document, seconds: float = 60.0, seed: int | None = None, *,
                   whole_node: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Fail each node in turn and measure the availability lost: ``{node_id: lost share}``.

    Each run starts from the same seed, fails the node at t = 0 and simulates
    ``seconds``; the loss is the baseline's served share minus the run's (0 = no
    effect, 1 = nothing served any more). Like the structural analysis it asks about
    one machine: a replicated node loses only replica 0 unless ``whole_node``. The
    file's own scheduled events apply in every run. Clients are not failed.
    ``progress(done, total)`` is called after each run.
    """
    from .engine import Simulation  # the engine is optional for the structural analysis

    if seed is None:
        seed = int(doc.settings.get("seed", 1))
    targets = [n for n in doc.node_ids() if doc.kind(n) != "client"]
    total = len(targets) + 1

    def run(fail: str | None) -> float:
        sim = Simulation(doc, seed=seed)
        if fail is not None:
            if not whole_node and _replicas(doc, fail) >= 2:
                sim.fail(fail, replica=0)
            else:
                sim.fail(fail)
        sim.advance(seconds)
        return _availability(sim.totals())

    baseline = run(None)
    if progress:
        progress(1, total)
    out: dict[str, float] = {}
    for i, node_id in enumerate(targets, start=2):
        lost = baseline - run(node_id)
        out[node_id] = max(0.0, lost) if math.isfinite(lost) else math.nan
        if progress:
            progress(i, total)
    return out
