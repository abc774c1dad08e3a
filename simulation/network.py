"""The compiled network the engine runs on (built by ``compiler.py``): stations and their
parameters, where each station sends its completions, the clients, the balancers, the
autoscalers and the replicated, sharded and partitioned databases, all as numpy arrays
and small records. The engine never looks at the document while it runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .budget import Estimate
    from .sharding import ShardedDatabase
    from .table_routing import StationRoutes

KIND_CODES = {"load_balancer": 0, "server": 1, "database": 2, "cache": 3}
LB, SERVER, DATABASE, CACHE = 0, 1, 2, 3


class SimulationError(ValueError):
    """The document cannot be simulated as it is; the message says why and where."""


@dataclass
class Client:
    node_id: str
    rate_rps: float
    users: int
    user_offset: int
    pattern: dict
    read_ratio: float
    entries: list[int]           # node indices of entry nodes, edge order
    failover: bool
    node_index: int
    stream: int                  # random stream of its arrivals (stable under edits)
    forged_share: float = 0.0
    items: int = 10_000
    zipf_s: float = 1.0
    max_age_s: float = 0.0       # browser caching, from the Cache-Control of the servers it reaches
    etag: bool = False
    insert_share: float = 0.0    # share of its writes that insert a row (auto-increment id)
    cross_shard_share: float = 0.0   # share of its requests that join across shards (sharding.py)


@dataclass
class Balancer:
    node_index: int
    station: int                 # the load balancer's own station
    algorithm: str
    sticky: bool
    backends: np.ndarray         # station indices, in edge/replica order
    weights: np.ndarray          # capacity of each backend replica
    interval_s: float
    fall: int
    rise: int
    check_cost_s: float = 0.002  # work of one health check at a server backend
    heartbeat_s: float = 1.0     # redundant pair (VRRP): advert_int
    heartbeat_misses: int = 3    # adverts missed before a backup takes over
    priority: int = 100          # VRRP priority (preemption, skew time)


@dataclass
class Scaler:
    """An autoscaled server node: its stations are slots first..end, of which
    ``start`` are provisioned when the run begins."""
    node_index: int
    first: int
    end: int
    minimum: int
    maximum: int
    start: int
    target: float
    interval_s: float
    down_delay_s: float
    boot_s: float


class EdgeLookup:
    """Edge numbers by (source node, target node), vectorised: ``lookup[a, b]`` with
    arrays a, b gives each pair's edge number, or -1 where there is no edge. A sorted
    array of keys a·n + b (memory O(edges), not an n × n matrix)."""

    def __init__(self, n_nodes: int, edge_index: dict[tuple[int, int], int]) -> None:
        self.n = max(n_nodes, 1)
        keys = np.array([a * self.n + b for (a, b) in edge_index], dtype=np.int64)
        ids = np.array(list(edge_index.values()), dtype=np.int64)
        order = np.argsort(keys)
        self.keys, self.ids = keys[order], ids[order]

    def __getitem__(self, pair: tuple) -> np.ndarray:
        a, b = pair
        key = np.asarray(a, dtype=np.int64) * self.n + np.asarray(b, dtype=np.int64)
        if not len(self.keys):
            return np.full(np.shape(key), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(self.keys[i] == key, self.ids[i], -1)


@dataclass
class ReplicatedDatabase:
    """A database node with several copies: its stations (the primaries first, then the
    read replicas; replica 0 is the first primary), the lag, failover and the app's
    proxy monitor."""
    node_index: int
    stations: np.ndarray
    lag_s: float
    failover_s: float
    monitor_interval_s: float
    monitor_misses: int
    primaries: int = 1               # its first ``primaries`` stations take writes (multi-primary when ≥ 2)
    auto_increment_offsets: bool = False
    shard: int = 0               # a sharded database has one group (primary + replicas) per shard

    @property
    def key(self):
        """Its key for the proxy's monitor and failover: the node, or (node, shard)."""
        return self.node_index if self.shard == 0 else (self.node_index, self.shard)


@dataclass
class Network:
    node_ids: list[str]
    node_kind: list[str]
    node_stations: list[np.ndarray]        # per node: its station indices ([] for clients)
    # stations
    st_node: np.ndarray
    st_replica: np.ndarray
    st_kind: np.ndarray
    st_level: np.ndarray
    st_workers: np.ndarray
    st_mean_read: np.ndarray               # mean service time of a read, s
    st_mean_write: np.ndarray              # mean service time of a write, s
    st_deterministic: np.ndarray
    st_queue_limit: np.ndarray
    st_timeout: np.ndarray
    st_sessions: np.ndarray                # servers: 0 local, 1 database, 2 cookie
    st_signed: np.ndarray                  # servers: session cookies are signed
    st_nm_cost: np.ndarray                 # servers: work of a 304 answer (share of a full one)
    # where a station sends its completions (non-balancer stations): CSR over target stations
    route_ptr: np.ndarray
    route_target: np.ndarray
    route_cum: np.ndarray                  # cumulative probabilities within each station's row
    clients: list[Client]
    balancers: list[Balancer]
    st_balancer: np.ndarray                # station -> balancer index or -1
    levels: list[np.ndarray]               # station indices per level, in order
    edge_index: dict[tuple[int, int], int]  # (source node, target node) -> edge number
    edges: list[tuple[str, str]]
    total_users: int
    scalers: list["Scaler"] = field(default_factory=list)
    st_primary: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # database replicas -> primary
    st_lag: np.ndarray = field(default_factory=lambda: np.zeros(0))       # replication lag of read replicas, s
    caches: list[tuple[int, int, float, bool]] = field(default_factory=list)
    failovers: list[tuple[int, float]] = field(default_factory=list)
    max_workers: int = field(default=1)
    databases: list[ReplicatedDatabase] = field(default_factory=list)
    estimate: Estimate | None = None   # sizes and memory the document implies (budget.py)
    shards: list[ShardedDatabase] = field(default_factory=list)   # sharded databases (sharding.py)
    partitions: StationRoutes | None = None   # routes by table (table_routing.py); None: no table mix
    st_blocking: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # servers with blocking_calls
    # stations some client's requests can reach (a node dropped on the canvas and not yet
    # connected is not): empty means all
    st_reached: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def reached(self) -> np.ndarray:
        """Per station: whether user requests can reach it."""
        if len(self.st_reached) == self.n_stations:
            return self.st_reached
        return np.ones(self.n_stations, dtype=bool)

    @property
    def n_stations(self) -> int:
        return len(self.st_node)
