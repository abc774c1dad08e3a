"""The steady-state traffic the structural SPOF analysis (``analysis.py``) works on: the
machines of a node, how a node splits its calls (as the engine routes them), what each
client's requests are once browser caches have answered their reads, and each shared
cache's hit ratio from the rates that reach it (Che's approximation, ``caching.py``)."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np

from .document import Document

# Load balancer algorithms that spread by capacity (the others: equally per machine).
BY_CAPACITY = ("weighted_round_robin", "least_connections", "least_response_time", "power_of_two")


def machines(doc: Document, node_id: str) -> int:
    """Machines of a node that serve when a run starts (an autoscaled server: its starting replicas)."""
    p = doc.params(node_id)
    if p.get("autoscale"):
        return min(max(int(p["replicas"]), int(p["min_replicas"])), int(p["max_replicas"]))
    if "read_replicas" in p:
        return (int(p.get("primaries", 1)) + int(p["read_replicas"])) * int(p.get("shards", 1))
    return int(p.get("replicas", 1))


def _capacity(doc: Document, node_id: str) -> float:
    """The weight a server gives a downstream node (as ``compiler._node_capacity``)."""
    p = doc.params(node_id)
    kind = doc.kind(node_id)
    if kind == "server":
        return float(p["capacity_rps"]) * int(p["replicas"])
    if kind == "database":
        return float(p["read_capacity_rps"]) * (int(p.get("primaries", 1)) + int(p["read_replicas"])) \
            * int(p.get("shards", 1))
    return float(p["capacity_rps"])


def _split(doc: Document, node_id: str) -> list[tuple[str, float]]:
    """Where a server, cache or database sends its calls, with probabilities."""
    succ = doc.successors(node_id)
    caps = [_capacity(doc, s) for s in succ]
    return [(s, c / sum(caps)) for s, c in zip(succ, caps)]


def _browser_kept(doc: Document) -> dict[str, np.ndarray]:
    """Per client whose browsers cache (max-age > 0): the share of each item's reads that still
    become requests in the steady state, 1 − rM / (1 + rM) (docs/engine.md, Browser caching)."""
    from .compiler import _browser_policies
    ids = doc.node_ids()
    if not any(doc.kind(n) == "server" and float(doc.params(n)["cache_max_age_s"]) > 0 for n in ids):
        return {}
    index = {n: i for i, n in enumerate(ids)}
    params = [doc.params(n) for n in ids]
    policies = _browser_policies(doc, ids, [doc.kind(n) for n in ids], params,
                                 [[index[t] for t in doc.successors(n)] for n in ids])
    out = {}
    for i, (age, _) in policies.items():
        p = params[i]
        if age > 0 and math.isfinite(age):
            pmf = np.diff(np.r_[0.0, zipf_cdf_of(p)])
            r = float(p["rate_rps"]) * float(p["read_ratio"]) / int(p["users"]) * pmf
            out[ids[i]] = 1.0 / (1.0 + r * age)
    return out


def _requests(doc: Document, client: str, kept: dict[str, np.ndarray]) -> tuple[float, float]:
    """(requests/s, read share) of a client's requests that reach the system (browser hits never do)."""
    p = doc.params(client)
    rate, rr = float(p["rate_rps"]), float(p["read_ratio"])
    if client not in kept:
        return rate, rr
    pmf = np.diff(np.r_[0.0, zipf_cdf_of(p)])
    reads = rr * float(np.dot(pmf, kept[client]))
    total = reads + (1.0 - rr)
    return rate * total, (reads / total if total > 0 else rr)


def zipf_cdf_of(p: dict) -> np.ndarray:
    from .caching import zipf_cdf
    return zipf_cdf(int(p["items"]), float(p["zipf_s"]))


def _cache_hits(doc: Document) -> dict[str, float]:
    """Steady-state read hit ratio of every cache, from the rates that reach it: split as
    the engine routes them (by table where the document partitions its tables)."""
    caches = [n for n in doc.node_ids() if doc.kind(n) == "cache"]
    if not caches:
        return {}
    from .caching import CacheModel, may_store, zipf_cdf
    from .partitioning import doc_plan, plan_views

    clients = [n for n in doc.node_ids() if doc.kind(n) == "client"]
    rates = {c: float(doc.params(c)["rate_rps"]) for c in clients}
    kept = _browser_kept(doc)    # the reads browsers answer never reach a cache
    plan = doc_plan(doc)
    n_views = plan.n_views if plan is not None else 0
    views = plan_views(plan, doc) if plan is not None else []
    mixes = plan.client_views(doc.node_ids()) if plan is not None else {}
    joins = np.arange(n_views + 1) >= (len(plan.tables) if plan is not None else 0)
    joins[-1] = False      # the last row: requests of clients without a table mix
    flow = {n: np.zeros((n_views + 1, 2)) for n in doc.node_ids()}   # per view: reads/s and writes/s arriving
    for c in clients:
        p, entries = doc.params(c), doc.successors(c)
        if not entries:
            continue
        share = [1.0] + [0.0] * (len(entries) - 1) if p["entry_policy"] == "failover" else [1 / len(entries)] * len(entries)
        total, rr = _requests(doc, c, kept)
        of_view = np.zeros(n_views + 1)
        if c in mixes:
            for v, w in mixes[c]:
                of_view[v] += w
        else:
            of_view[-1] = 1.0
        for e, s in zip(entries, share):
            flow[e][:, 0] += total * rr * s * of_view
            flow[e][:, 1] += total * (1 - rr) * s * of_view
    items = max(int(doc.params(c)["items"]) for c in clients) if clients else 1
    pop = np.zeros(items)
    total = sum(rates.values()) or 1.0
    for c in clients:
        pmf = np.diff(np.r_[0.0, zipf_cdf(int(doc.params(c)["items"]), float(doc.params(c)["zipf_s"]))])
        pop[:len(pmf)] += (rates[c] or total / len(clients)) / total * pmf
    pop /= pop.sum()
    seen = pop    # the items of the reads that reach the caches
    if kept:
        seen = np.zeros(items)
        for c in clients:
            pmf = np.diff(np.r_[0.0, zipf_cdf_of(doc.params(c))])
            seen[:len(pmf)] += rates[c] * float(doc.params(c)["read_ratio"]) * pmf * kept.get(c, 1.0)
        seen = seen / seen.sum() if seen.sum() > 0 else pop
    hits: dict[str, float] = {}
    for n in nx.topological_sort(doc.graph):
        kind, f = doc.kind(n), flow[n].copy()
        if kind == "client":
            continue
        if kind == "cache":
            p = doc.params(n)
            model = CacheModel(pop, int(p["capacity_items"]), float(p["ttl_s"]), p["invalidation"] == "on_write")
            model.stores = may_store(doc, n)
            model.read_rate, model.write_rate = float(f[:, 0].sum()), float(f[:, 1].sum())   # joins pass, and count
            model._compute()
            hits[n] = float(np.dot(seen, model.hit))
            f[~joins, 0] *= 1.0 - hits[n]    # a join is never a hit
        if kind == "load_balancer":
            by_capacity = doc.params(n)["algorithm"] in BY_CAPACITY
            ws = {s: (float(doc.params(s).get("capacity_rps", 1.0)) if by_capacity else 1.0) * machines(doc, s)
                  for s in doc.successors(n)}
            split = [(s, v / sum(ws.values())) for s, v in ws.items()]
        else:
            split = _split(doc, n)
        for v in range(n_views + 1):
            routed = views[v].get(n) if v < n_views else None   # by table (partitioning.py), else the pool
            for s, q, *_ in (routed if routed is not None else split):
                flow[s][v] += q * f[v]
    return hits
