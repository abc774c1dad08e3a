"""Live state of nodes, as the engine reports it to the designer and the CLI."""
from __future__ import annotations

from dataclasses import dataclass, field

# Why a request failed. Every request that arrives ends up served, failed with
# one of these causes, or is still in flight.
FAILURE_CAUSES: tuple[str, ...] = (
    "queue_full",          # rejected: the waiting room was full
    "timeout",             # waited longer than timeout_s for a worker
    "backend_down",        # sent to a node that is down (not yet detected by health checks)
    "no_healthy_backend",  # a load balancer had no healthy backend left
    "node_failed",         # was queued or in service at a node when it failed
    "session_lost",        # its user's local session was on another server (or a dead one)
)

CAUSE_INDEX: dict[str, int] = {c: i for i, c in enumerate(FAILURE_CAUSES)}

CAUSE_LABELS: dict[str, str] = {
    "queue_full": "Queue full",
    "timeout": "Timeout",
    "backend_down": "Backend down",
    "no_healthy_backend": "No healthy backend",
    "node_failed": "Lost in a failed node",
    "session_lost": "Session lost",
}


@dataclass
class NodeState:
    """What a node looks like right now (averaged over the last simulated second)."""

    utilization: float = 0.0       # busy share of its workers, 0..1 (mean over its replicas that are up)
    queue: float = 0.0             # requests waiting for a worker, now
    in_system: float = 0.0         # requests waiting or in service, now
    throughput_rps: float = 0.0    # requests completed per second
    replicas: int = 1
    replicas_up: int = 1
    failed_replicas: tuple[int, ...] = field(default_factory=tuple)
    utilization_max: float = 0.0   # busy share of its busiest replica that is up, 0..1

    @property
    def failed(self) -> bool:
        """Every replica of the node is down."""
        return self.replicas_up == 0
