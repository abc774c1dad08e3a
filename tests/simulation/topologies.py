"""Small topologies for engine tests, built through the document API."""
from __future__ import annotations

from simulation.document import Document, NodeData, ScheduledEvent

BIG_QUEUE = {"queue_limit": 1_000_000, "timeout_s": 3600}


def single_queue(rate: float, capacity: float, workers: int = 1, service: str = "exponential",
                 seed: int = 1, **server) -> Document:
    """Client → one server: an M/M/c (or M/D/c) queue."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": capacity, "workers": workers,
                                                 "service": service, **BIG_QUEUE, **server}))
    d.add_edge("users", "web")
    d.set_settings(seed=seed)
    return d


def balanced(rate: float, n: int, capacity: float, algorithm: str, seed: int = 1, *,
             affinity: str = "none", sessions: str = "cookie", users: int = 10_000,
             interval: float = 2.0, fall: int = 3, rise: int = 2, database: bool = False,
             workers: int = 1) -> Document:
    """Client → load balancer → n servers (→ optional database)."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users}))
    d.add_node(NodeData("lb", "load_balancer", params={
        "algorithm": algorithm, "affinity": affinity, "capacity_rps": 10_000_000, "queue_limit": 1_000_000,
        "health_interval_s": interval, "unhealthy_after": fall, "healthy_after": rise}))
    d.add_edge("users", "lb")
    if database:
        d.add_node(NodeData("db", "database", params={"read_capacity_rps": 100_000, "write_capacity_rps": 50_000,
                                                      "connections": 100}))
    for i in range(1, n + 1):
        d.add_node(NodeData(f"web{i}", "server", params={"capacity_rps": capacity, "workers": workers,
                                                         "sessions": sessions, **BIG_QUEUE}))
        d.add_edge("lb", f"web{i}")
        if database:
            d.add_edge(f"web{i}", "db")
    d.set_settings(seed=seed)
    return d


def add_event(d: Document, at_s: float, action: str, node: str, replica: int | None = None) -> None:
    d.insert_event(len(d.events), ScheduledEvent(at_s, action, node, replica))


def saturated_sync_tier():
    """A blocking web tier calling a slow database: its waiting rooms fill, and which of the
    waiting requests a released worker takes next is known only once the database answers."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 400.0}))
    d.add_node(NodeData("web", "server", params={"blocking_calls": True, "workers": 4, "replicas": 2,
                                                 "queue_limit": 200, "timeout_s": 30.0}))
    d.add_node(NodeData("db", "database", params={"connections": 4, "read_capacity_rps": 300.0,
                                                  "write_capacity_rps": 300.0}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=5, duration_s=10.0)
    return d
