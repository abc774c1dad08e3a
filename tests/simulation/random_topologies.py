"""Random valid topologies with every kind of part, for fuzz and determinism tests.

Built from a seeded ``random.Random`` (not hypothesis) so that a failing case is
named by its seed and can be replayed with ``random_topology(seed)``."""
from __future__ import annotations

import random

from simulation.document import Document, NodeData, ScheduledEvent

ALGORITHMS = ["random", "round_robin", "least_connections", "weighted_round_robin",
              "least_response_time", "power_of_two", "consistent_hash"]


def random_topology(seed: int, duration_s: float = 20.0, tiers: bool = False, data: bool = False,
                    joins: bool = False, extras: bool = False) -> Document:
    """``tiers``: the servers may call an API tier (servers too); ``data``: the database may
    have several primaries or shards, and a second database may hold some tables; ``joins``
    (with ``data``): where two databases hold tables, the clients join them in either
    order, with their own join shares and mixes; ``extras``: the parameters and shapes the
    others leave at their defaults (machine types, health-check costs, VRRP priorities,
    balancers behind balancers, an internal balancer in front of the API tier (with
    ``tiers``), a cache among a balancer's backends, a caching proxy in front, private
    caching, unsigned cookies, autoscaling's own settings, database timeouts, cache
    connections, diurnal and stepped traffic). Each is drawn from its own stream: the other draws stay as they were."""
    r = random.Random(seed)
    d = Document()
    n_clients = r.randint(1, 2)
    for c in range(n_clients):
        d.add_node(NodeData(f"c{c}", "client", params={
            "rate_rps": r.choice([20.0, 150.0, 600.0, 2000.0]), "users": r.choice([1, 50, 3000]),
            "read_ratio": r.choice([0.0, 0.5, 0.9, 1.0]), "items": r.choice([1, 100, 10_000]),
            "zipf_s": r.choice([0.0, 1.0]), "entry_policy": r.choice(["round_robin", "failover"]),
            "forged_share": r.choice([0.0, 0.1]),
            "pattern": r.choice([{"type": "constant"},
                                 {"type": "spike", "at_s": 5.0, "duration_s": 3.0, "factor": 3.0},
                                 {"type": "ramp", "start_s": 0.0, "end_s": 10.0, "from_factor": 0.2,
                                  "to_factor": 1.5}])}))
    has_db, has_cache = r.random() < 0.7, r.random() < 0.4
    if has_db:
        d.add_node(NodeData("db", "database", params={
            "connections": r.randint(1, 20), "read_capacity_rps": r.choice([200.0, 2000.0]),
            "write_capacity_rps": r.choice([100.0, 1000.0]), "queue_limit": r.choice([0, 50, 1000]),
            "read_replicas": r.randint(0, 3), "replication_lag_ms": r.choice([0.0, 100.0, 1500.0]),
            "failover_s": r.choice([0.0, 0.0, 1.0, 4.0]), "monitor_interval_s": r.choice([0.5, 1.5]),
            "monitor_misses": r.randint(1, 3)}))
    if has_cache and has_db:
        d.add_node(NodeData("cache", "cache", params={"capacity_items": r.choice([10, 1000]),
                                                      "ttl_s": r.choice([1.0, 30.0]),
                                                      "invalidation": r.choice(["on_write", "ttl_only"])}))
        d.add_edge("cache", "db")
    store = "cache" if (has_cache and has_db) else ("db" if has_db else None)
    n_lb = r.randint(0, 2)
    for b in range(n_lb):
        d.add_node(NodeData(f"lb{b}", "load_balancer", params={
            "algorithm": r.choice(ALGORITHMS), "affinity": r.choice(["none", "sticky"]),
            "health_interval_s": r.choice([0.2, 1.0, 3.0]), "unhealthy_after": r.randint(1, 3),
            "healthy_after": r.randint(1, 3), "capacity_rps": r.choice([500.0, 100_000.0]),
            "queue_limit": r.choice([0, 100, 10_000])}))
    n_srv = r.randint(1, 4)
    for s in range(n_srv):
        autoscale = r.random() < 0.25
        params = {"capacity_rps": r.choice([20.0, 100.0, 800.0]), "workers": r.randint(1, 8),
                  "queue_limit": r.choice([0, 20, 1000]), "timeout_s": r.choice([0.1, 2.0, 30.0]),
                  "replicas": r.randint(1, 3), "service": r.choice(["exponential", "deterministic"]),
                  "sessions": r.choice(["local", "cookie"] + (["database"] if store else [])),
                  "cache_max_age_s": r.choice([0.0, 0.0, 5.0]), "etag": r.random() < 0.3}
        if random.Random(seed * 7919 + s).random() < 0.3:   # own stream: the other draws stay as they were
            params["blocking_calls"] = True
        if autoscale:
            params.update(autoscale=True, min_replicas=1, max_replicas=r.randint(2, 6), scale_interval_s=2.0,
                          boot_time_s=r.choice([0.0, 3.0]), scale_down_delay_s=4.0)
        d.add_node(NodeData(f"s{s}", "server", params=params))
        if store:
            d.add_edge(f"s{s}", store)
    if tiers:
        _api_tier(d, random.Random(seed * 104729 + 1), n_srv, store)
    if data and has_db:
        _data_tier(d, random.Random(seed * 130363 + 2), n_clients)
        if joins and "db2" in d.node_ids():
            j = random.Random(seed * 15485863 + 3)
            for c in range(n_clients):
                users = j.choice([0.2, 0.5, 0.8])
                d.set_params(f"c{c}", {"table_mix": {"users": users, "orders": 1.0 - users},
                                       "join_share": j.choice([0.1, 0.3, 0.6]),
                                       "join_tables": j.choice([["users", "orders"], ["orders", "users"]])})
    for b in range(n_lb):
        for s in range(n_srv):
            if s == 0 or r.random() < 0.6:
                d.add_edge(f"lb{b}", f"s{s}")
    for c in range(n_clients):
        entries = [f"lb{b}" for b in range(n_lb)] or [f"s{s}" for s in range(n_srv)]
        for e in entries:
            if e == entries[0] or r.random() < 0.7:
                d.add_edge(f"c{c}", e)
    # failures and recoveries: whole nodes, one replica, every replica one by one, all entries
    targets = [n for n in d.node_ids() if d.kind(n) != "client"] + [f"c{c}" for c in range(n_clients)]
    for _ in range(r.randint(0, 8)):
        node = r.choice(targets)
        at = round(r.uniform(0, duration_s), r.choice([0, 2, 5]))
        action = r.choice(["fail", "fail", "recover"])
        copies = _copies(d, node)
        how = r.random()
        if copies > 1 and how < 0.4:
            d.insert_event(len(d.events), ScheduledEvent(at, action, node, r.randrange(copies)))
        elif copies > 1 and how < 0.6:
            for k in range(copies):
                d.insert_event(len(d.events), ScheduledEvent(at + 0.1 * k, action, node, k))
        else:
            d.insert_event(len(d.events), ScheduledEvent(at, action, node, None))
    if n_lb and r.random() < 0.2:   # every entry down at once
        for b in range(n_lb):
            d.insert_event(len(d.events), ScheduledEvent(duration_s / 3, "fail", f"lb{b}", None))
    if extras:
        _extras(d, random.Random(seed * 32452843 + 4), duration_s)
    # least response time decides one tick at a time: 1 ms ticks make it slow, not wrong
    lrt = any(d.kind(n) == "load_balancer" and d.params(n)["algorithm"] == "least_response_time"
              for n in d.node_ids())
    # so do least connections and power of two in front of blocking servers (blocking.py)
    lrt = lrt or (any(d.kind(n) == "server" and d.params(n)["blocking_calls"] for n in d.node_ids())
                  and any(d.kind(n) == "load_balancer" and d.params(n)["algorithm"] in ("least_connections",
                                                                                          "power_of_two")
                          for n in d.node_ids()))
    d.set_settings(seed=seed, tick_ms=r.choice([10.0, 20.0] if lrt else [1.0, 10.0, 20.0]), duration_s=duration_s)
    return d


def _extras(d: Document, t: random.Random, duration_s: float) -> None:
    ids = list(d.node_ids())
    for n in ids:
        kind, p = d.kind(n), d.params(n)
        if kind == "client" and t.random() < 0.4:
            d.set_params(n, {"pattern": t.choice([
                {"type": "diurnal", "period_s": t.choice([4.0, 10.0]), "amplitude": t.choice([0.5, 1.0]),
                 "peak_s": t.uniform(0, 10)},
                {"type": "steps", "times_s": [0.0, 3.0, 7.5], "factors": [t.choice([0.0, 1.0]), 3.0, 0.5]}])})
        elif kind == "load_balancer":
            d.set_params(n, {"health_check_cost_ms": t.choice([0.0, 2.0, 50.0]),
                             "heartbeat_interval_s": t.choice([0.1, 1.0, 2.5]), "heartbeat_misses": t.randint(1, 3),
                             "priority": t.choice([50, 100, 100, 200])})
        elif kind == "server":
            changes = {"cache_control": t.choice(["public", "private"]), "cookie_signed": t.random() < 0.7,
                       "not_modified_cost": t.choice([0.0, 0.2, 1.0])}
            if t.random() < 0.3:
                changes["machine"] = t.choice(["m5.large", "m5.xlarge", "m5.4xlarge"])
            if p["autoscale"]:
                changes.update(target_utilization=t.choice([0.3, 0.6, 0.9]), scale_interval_s=t.choice([1.0, 2.0, 5.0]),
                               scale_down_delay_s=t.choice([0.0, 4.0]),
                               min_replicas=min(t.randint(1, 2), p["max_replicas"]))
            d.set_params(n, changes)
        elif kind == "database":
            d.set_params(n, {"timeout_s": t.choice([0.05, 1.0, 30.0])})
        elif kind == "cache":
            d.set_params(n, {"capacity_rps": t.choice([300.0, 50_000.0]), "connections": t.choice([1, 8, 64])})
    lbs = [n for n in ids if d.kind(n) == "load_balancer"]
    if len(lbs) == 2 and t.random() < 0.3 and not d.predecessors(lbs[1]):   # a balancer behind a balancer
        d.add_edge(lbs[0], lbs[1])
    callers = [n for n in ids if d.kind(n) == "server" and "api" in d.successors(n)]
    if callers and t.random() < 0.4:   # an internal balancer in front of the API tier
        d.add_node(NodeData("ilb", "load_balancer", params={
            "algorithm": t.choice(["round_robin", "least_connections", "power_of_two", "least_response_time"]),
            "affinity": t.choice(["none", "sticky"]), "health_interval_s": t.choice([0.5, 2.0])}))
        d.add_edge("ilb", "api")
        for n in callers:
            if t.random() < 0.7:
                d.remove_edge(n, "api")
            d.add_edge(n, "ilb")
        if t.random() < 0.5:
            d.insert_event(len(d.events), ScheduledEvent(round(t.uniform(0, duration_s), 2), "fail", "api", 0))
    if t.random() < 0.3:   # a caching reverse proxy in front of the entries (Varnish, a CDN)
        d.add_node(NodeData("front", "cache", params={"capacity_items": t.choice([10, 1000]),
                                                      "ttl_s": t.choice([1.0, 30.0]), "invalidation": "ttl_only",
                                                      "capacity_rps": t.choice([300.0, 50_000.0])}))
        for c in [n for n in ids if d.kind(n) == "client"]:
            entries = d.successors(c)
            for e in entries:
                d.remove_edge(c, e)
                if ("front", e) not in d.edges():
                    d.add_edge("front", e)
            d.add_edge(c, "front")
        if t.random() < 0.5:
            d.insert_event(len(d.events), ScheduledEvent(round(t.uniform(0, duration_s), 2), "fail", "front", None))
    # (last: the draws above stay as they were when it came)
    if lbs and t.random() < 0.3:   # a balancer spreading over a caching proxy too (a cache as a backend)
        d.add_node(NodeData("edge", "cache", params={"capacity_items": t.choice([10, 1000]), "ttl_s": 2.0,
                                                     "invalidation": "ttl_only", "connections": t.choice([2, 64])}))
        d.add_edge(lbs[0], "edge")
        d.add_edge("edge", t.choice([n for n in ids if d.kind(n) == "server" and n != "api"]))


def _copies(d: Document, node: str) -> int:
    p = d.params(node)
    kind = d.kind(node)
    if kind == "server":
        return int(p["max_replicas"] if p["autoscale"] else p["replicas"])
    if kind == "database":
        return 1 + int(p["read_replicas"])
    return 1


def _api_tier(d: Document, t: random.Random, n_srv: int, store: str | None) -> None:
    """An API server (any kind of replicas, sessions and calls) that some of the servers call."""
    d.add_node(NodeData("api", "server", params={
        "capacity_rps": t.choice([100.0, 800.0, 3000.0]), "workers": t.randint(1, 8),
        "queue_limit": t.choice([0, 20, 1000]), "timeout_s": t.choice([0.1, 2.0, 30.0]),
        "replicas": t.randint(1, 3), "service": t.choice(["exponential", "deterministic"]),
        "sessions": t.choice(["local", "local", "cookie"] + (["database"] if store else [])),
        "blocking_calls": t.random() < 0.3}))
    if store and (t.random() < 0.7 or d.params("api")["sessions"] == "database"):
        d.add_edge("api", store)
    for s in range(n_srv):
        if s == 0 or t.random() < 0.5:
            d.add_edge(f"s{s}", "api")
            if d.params(f"s{s}")["sessions"] == "cookie" and t.random() < 0.5:
                d.set_params(f"s{s}", {"sessions": "local"})


def _data_tier(d: Document, t: random.Random, n_clients: int) -> None:
    """Multi-primary or sharded data, inserts and cross-shard queries; sometimes a second
    database holding one of two tables, with joins across them."""
    how = t.choice(["primaries", "shards"])
    p = {}
    if how == "primaries":
        p.update(primaries=t.randint(2, 3), auto_increment_offsets=t.random() < 0.5)
    else:
        p.update(shards=t.randint(2, 4), shard_key=t.choice(["item", "user"]),
                 shard_scheme=t.choice(["hash", "range", "consistent_hash"]))
    d.set_params("db", p)
    for c in range(n_clients):
        d.set_params(f"c{c}", {"insert_share": t.choice([0.0, 0.5]), "cross_shard_share": t.choice([0.0, 0.2])})
    if t.random() < 0.4:
        d.set_params("db", {"tables": ["users"]})
        d.add_node(NodeData("db2", "database", params={"tables": ["orders"], "connections": t.randint(1, 10),
                                                       "read_replicas": t.randint(0, 2)}))
        for n in d.node_ids():
            if d.kind(n) == "server" and {"db", "cache"} & set(d.successors(n)):
                d.add_edge(n, "db2")
        for c in range(n_clients):
            d.set_params(f"c{c}", {"table_mix": {"users": 0.5, "orders": 0.5}, "join_share": t.choice([0.0, 0.3])})
