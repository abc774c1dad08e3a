"""Networks for the admission tests: a client in front of servers of given workers,
waiting room, patience, service and blocking, and a database behind them."""
from __future__ import annotations

from simulation.compiler import compile_document
from simulation.document import Document, NodeData


def servers_network(servers, database=False):
    """``servers``: (workers, queue_limit, timeout_s, service, blocking) per server node;
    a database behind every server when ``database`` or when one blocks."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 10.0, "users": 100}))
    for i, (workers, limit, timeout, service, blocking) in enumerate(servers):
        d.add_node(NodeData(f"s{i}", "server", params={"capacity_rps": 80.0 * workers, "workers": workers,
                                                       "queue_limit": limit, "timeout_s": timeout,
                                                       "service": service, "blocking_calls": blocking}))
        d.add_edge("users", f"s{i}")
    if database or any(s[4] for s in servers):
        d.add_node(NodeData("db", "database", params={"connections": 2, "read_capacity_rps": 300.0,
                                                      "write_capacity_rps": 100.0, "queue_limit": 30}))
        for i in range(len(servers)):
            d.add_edge(f"s{i}", "db")
    return compile_document(d)
