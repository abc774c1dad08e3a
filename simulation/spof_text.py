"""Single points of failure in words: the reasons shown in tooltips and by ``scalelab check``."""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

from .analysis import Measured, Spof, failed_machine, machines
from .document import Document


def label(doc: Document, node_id: str) -> str:
    """A node's label, with its id when another node has the same label."""
    name = doc.node(node_id).label or node_id
    counts = getattr(doc, "label_counts", None) or Counter(doc.node(n).label or n for n in doc.node_ids())
    return f"{name} ({node_id})" if counts[name] > 1 else name


def _names(doc: Document, ids: list[str], more: str = "client groups") -> str:
    names = [doc.node(i).label or i for i in ids]
    if len(names) <= 1:
        return "".join(names)
    if len(names) > 4:
        names = names[:3] + [f"{len(names) - 3} more {more}"]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _called_by_servers(doc: Document, node_id: str) -> bool:
    """Whether the node is only reached as a call made by servers (a dependency, not an entry)."""
    preds = list(doc.predecessors(node_id))
    return bool(preds) and all(doc.kind(p) in ("server", "cache") for p in preds)


def full_reason(doc: Document, node_id: str, clients: list[str]) -> str:
    who = _names(doc, clients)
    kind = doc.kind(node_id)
    what = {"load_balancer": "load balancer"}.get(kind, kind)
    if kind == "database" and int(doc.params(node_id).get("read_replicas", 0)):
        return (f"Every server of {who} writes to this database's primary: its read replicas "
                "cannot take writes (single-primary replication) unless failover is on")
    if kind == "database" and int(doc.params(node_id).get("shards", 1)) > 1:   # sharding.py
        if any(float(doc.params(c).get("cross_shard_share", 0.0)) > 0 for c in clients):
            return (f"Every query of {who} joins across shards and needs every shard of this database: "
                    "one dead shard fails them all")
        return f"Every key that {who} query is owned by one shard of this database; it has no replica"
    if kind == "database" and doc.params(node_id).get("tables"):   # partitioning.py
        tables = doc.params(node_id)["tables"]
        return (f"Every query of {who} needs this database: it is the only home of table"
                f"{'s' if len(tables) > 1 else ''} {', '.join(tables)}, which each of their queries "
                "reads or joins")
    if kind == "database" or (kind == "server" and _called_by_servers(doc, node_id)):
        return f"Every server of {who} calls this {what}; it has no replica"
    if kind == "server":
        return (f"If this server fails, {who} cannot reach any server: "
                "it is the only one on their path and has no replica")
    return f"If this {what} fails, {who} cannot reach any server"


def _why_partial(doc: Document, node_id: str, reads: float, writes: float) -> str:
    """Why nothing takes over the share that a partial SPOF loses."""
    kind, p, n = doc.kind(node_id), doc.params(node_id), machines(doc, node_id)
    preds = list(doc.predecessors(node_id))
    if kind == "database" and p.get("tables") and n < 2:   # partitioning.py
        from .partitioning import joined_tables
        joins = bool(joined_tables(doc) & set(p["tables"]))
        names = ", ".join(p["tables"])
        return (f"it is the only home of table{'s' if len(p['tables']) > 1 else ''} {names}: the queries for "
                f"{'them' if len(p['tables']) > 1 else 'it'} fail{' (and the joins that need it)' if joins else ''}, "
                "the other tables are served")
    if kind == "database" and int(p.get("shards", 1)) > 1 and not int(p["read_replicas"]):
        cross = ", and so do the cross-shard queries, which need every shard" if any(
            float(doc.params(c).get("cross_shard_share", 0)) > 0 for c in doc.node_ids() if doc.kind(c) == "client") else ""
        return f"a shard is the only home of the keys it owns: the queries for its keys fail{cross}"
    if kind == "database" and n >= 2:
        cross = int(p.get("shards", 1)) > 1 and reads > 1e-9
        if float(p["failover_s"]) <= 0:
            tail = ("; the cross-shard queries that read at its place in the other shards fail too" if cross
                    else "; the reads sent to it fail too" if reads > 1e-9 else "")
            return f"only its primary takes writes and no read replica is promoted (failover is off){tail}"
        if cross:
            return ("a read replica takes over the writes, but a cross-shard query sends its parts to the same "
                    "place in every shard without asking the proxy: those at the dead primary's place fail")
        return "a read replica takes over the writes, but the servers keep sending the dead primary its share of reads"
    if p.get("autoscale") and any(doc.kind(q) != "load_balancer" for q in preds):
        return ("the autoscaler replaces a dead replica, but nothing checks their health: the dead one keeps "
                "its share of the requests (a load balancer in front would route around it)")
    if n >= 2 and any(doc.kind(q) != "load_balancer" for q in preds):
        return (f"nothing checks the health of its {n} replicas: the share of requests sent to the dead one fails "
                "(a load balancer in front would route around it)")
    for q in preds:
        if doc.kind(q) == "client" and len(doc.successors(q)) > 1 and doc.params(q)["entry_policy"] != "failover":
            return (f"it is one of the entries of {label(doc, q)} in DNS round robin, and a dead entry keeps "
                    "getting its share (entry policy failover would avoid it)")
    for q in preds:
        if doc.kind(q) in ("server", "cache") and len(doc.successors(q)) > 1:
            return (f"the calls of {label(doc, q)} are split over {len(doc.successors(q))} nodes without retry: "
                    "those sent to this one fail")
    if preds and all(doc.kind(q) == "cache" for q in preds):
        return "the cache in front still answers read hits, but writes and misses need it; it has no replica"
    for q in preds:
        if doc.kind(q) == "load_balancer" and len(doc.successors(q)) == 1:
            return f"it is the only backend of {label(doc, q)}, which still gets its share of the requests"
    if preds and all(doc.kind(q) in ("server", "cache") for q in preds):
        return (f"requests keep reaching {_names(doc, preds, 'nodes')} (health checks see that a server is up, "
                "not what it calls), and they need it")
    return "nothing takes over its share of the requests"


def partial_reason(doc: Document, node_id: str, share: float, reads: float, writes: float) -> str:
    what = " (writes)" if reads <= 1e-9 else " (reads)" if writes <= 1e-9 else ""
    shards = int(doc.params(node_id).get("shards", 1)) if doc.kind(node_id) == "database" else 1
    replicated = shards > 1 and int(doc.params(node_id)["read_replicas"]) > 0
    down = f"the primary of one of its {shards} shards is" if replicated else \
        f"one of its {shards} shards is" if shards > 1 else \
        "its primary is" if doc.kind(node_id) == "database" and machines(doc, node_id) >= 2 else \
        f"one of its {machines(doc, node_id)} replicas is" if machines(doc, node_id) >= 2 else "it is"
    return f"{_percent(share)} of requests{what} fail while {down} down: {_why_partial(doc, node_id, reads, writes)}"


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"


def check_lines(doc: Document, spof: dict[str, Spof]) -> list[str]:
    """What ``scalelab check`` prints about the structure: full SPOFs first, then by share."""
    if not spof:
        return ["No single points of failure."]
    full = sum(s.full for s in spof.values())
    out = [f"Single points of failure ({full} full, {len(spof) - full} partial):"]
    for node_id, s in sorted(spof.items(), key=lambda kv: (not kv[1].full, -kv[1].share)):
        out.append(f"  {label(doc, node_id)} — {s.kind}: {s.reason}")
    return out


def empirical_lines(doc: Document, lost: dict[str, Measured], seconds: float, delays: dict[str, float]) -> list[str]:
    """What ``scalelab check --empirical`` prints: the loss per machine, worst first."""
    out = [f"Requests lost while one machine is down (failed at 0 s, counted from {seconds / 2:g} to {seconds:g} s; "
           f"seed {doc.settings['seed']}; the file's scheduled events left out):"]
    names = {n: label(doc, n) + _machine(doc, n) for n in lost}
    width = max((len(v) for v in names.values()), default=0)
    for n in sorted(lost, key=lambda n: -lost[n].share if not math.isnan(lost[n].share) else 1.0):
        m = lost[n]
        if math.isnan(m.share):
            out.append(f"  {names[n]:<{width}}  n/a (nothing served)")
            continue
        overload = m.share - (m.spof_share if m.kind else 0.0) >= 0.02
        what = {"full": "full SPOF", "partial": "partial SPOF", None: "no SPOF" if overload else ""}[m.kind]
        if overload:
            what += (f": {m.spof_share * 100:.1f} % has no other way, the rest is lost to overload" if m.kind else
                     ": the machines left are overloaded without it")
        out.append(f"  {names[n]:<{width}}  {m.share * 100:5.1f} %  {what}".rstrip())
    slow = {k: v for k, v in delays.items() if v > seconds / 2}
    if slow:
        said = ", ".join(f"{k} {v:g} s" for k, v in slow.items())
        out.append(f"Note: some reactions take longer than half a run ({said}): run longer, e.g. --empirical "
                   f"{2 * max(slow.values()) + 10:g}")
    return out


def _machine(doc: Any, node_id: str) -> str:
    if failed_machine(doc, node_id) is None:
        return ""
    if doc.kind(node_id) == "database":
        p = doc.params(node_id)
        return (" (primary of shard 0)" if int(p["read_replicas"]) else " (shard 0)") if int(p["shards"]) > 1 \
            else " (primary)"
    return " (one replica)"
