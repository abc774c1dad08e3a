"""The component kinds and their declared parameters (the single source of truth)."""
from __future__ import annotations

from dataclasses import dataclass

from .machines import CHOICES as MACHINE_CHOICES
from .params import Param

P = Param

PATTERN_VARIANTS: dict[str, tuple[Param, ...]] = {
    "constant": (),
    "ramp": (
        P("start_s", "float", 0.0, "When the ramp starts.", unit="s", minimum=0, maximum=1e7),
        P("end_s", "float", 60.0, "When the ramp reaches its final rate.", unit="s", minimum=0, maximum=1e7),
        P("from_factor", "float", 0.1, "Rate at the start, as a multiple of rate_rps.", unit="×", minimum=0, maximum=1000),
        P("to_factor", "float", 1.0, "Rate at the end, as a multiple of rate_rps.", unit="×", minimum=0, maximum=1000),
    ),
    "spike": (
        P("at_s", "float", 60.0, "When the spike starts.", unit="s", minimum=0, maximum=1e7),
        P("duration_s", "float", 10.0, "How long the spike lasts.", unit="s", minimum=0, exclusive_minimum=True, maximum=1e7),
        P("factor", "float", 5.0, "Rate during the spike, as a multiple of rate_rps.", unit="×", minimum=0, maximum=1000),
    ),
    "diurnal": (
        P("period_s", "float", 600.0, "Length of one day-night cycle (86400 for a real day).", unit="s", minimum=1, maximum=1e7),
        P("amplitude", "float", 0.5, "Swing around the mean: the rate goes from (1−a) to (1+a) × rate_rps.", minimum=0, maximum=1),
        P("peak_s", "float", 300.0, "Time of the daily peak within the cycle.", unit="s", minimum=0, maximum=1e7),
    ),
    "steps": (
        P("times_s", "floats", [0.0, 60.0, 120.0], "Times at which the rate changes (increasing).", unit="s", minimum=0, maximum=1e7),
        P("factors", "floats", [1.0, 2.0, 4.0], "Rate from each time on, as a multiple of rate_rps.", unit="×", minimum=0, maximum=1000),
    ),
}

LB_ALGORITHMS = ("random", "round_robin", "least_connections", "weighted_round_robin",
                 "least_response_time", "power_of_two", "consistent_hash")


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    description: str
    params: tuple[Param, ...]
    sends_to: tuple[str, ...]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}


CLIENT = Kind(
    "client", "Client", "A group of users sending requests (Poisson arrivals).",
    (
        P("rate_rps", "float", 100.0, "Mean total requests per second of the whole group; the pattern varies it over time.",
          label="Request rate", unit="req/s", minimum=0, maximum=10_000_000),
        P("users", "int", 1000, "Distinct users in the group. Sessions, cookies, sticky routing and hashing are per user.",
          unit="users", minimum=1, maximum=10_000_000),
        P("pattern", "object", {"type": "constant"}, "How the rate varies over time: constant, ramp, spike, diurnal or steps.",
          variants=PATTERN_VARIANTS),
        P("read_ratio", "float", 0.9, "Share of requests that only read data; the rest write.",
          label="Read share", minimum=0, maximum=1),
        P("items", "int", 10_000, "Distinct data items (pages, rows) the users read and write; caches hold items.",
          unit="items", minimum=1, maximum=1_000_000),
        P("zipf_s", "float", 1.0, "Popularity skew of the items (Zipf exponent): 0 = all equally popular, "
          "1 = the usual web skew (the 10th item is read 10× less than the 1st).",
          label="Popularity skew", minimum=0, maximum=3),
        P("forged_share", "float", 0.0, "Share of requests whose session cookie an attacker edited "
          "(e.g. another user id). Counted as forged_accepted or forged_rejected at the first server.",
          label="Forged cookies", minimum=0, maximum=1),
        P("cross_shard_share", "float", 0.0, "Share of requests whose database query joins data across shards: "
          "at a sharded database it goes to every shard, answers when the slowest shard answers and fails if "
          "any shard is down.", label="Cross-shard share", minimum=0, maximum=1),
        P("entry_policy", "choice", "round_robin",
          "With several entry nodes: round_robin spreads requests over all of them (DNS round robin, a dead entry "
          "keeps getting its share until it recovers); failover sends everything to the active one of a redundant pair "
          "(VRRP: the highest-priority live entry; a dead active is replaced only after its heartbeats are missed).",
          choices=("round_robin", "failover")),
        P("insert_share", "float", 0.0, "Share of the writes that insert a new row and take the next "
          "auto-increment id (the rest update existing items). With several primaries, inserts on different "
          "primaries within the replication lag can take the same id (id_collisions).",
          label="Insert share", minimum=0, maximum=1),
        P("table_mix", "weights", {}, "Which tables the requests touch, e.g. {\"users\": 0.3, \"flights\": 0.7} "
          "(normalised). Each request touches one table drawn from the mix and goes to the database that holds it "
          "(see tables on a database). Empty: no tables (a server with several databases splits by capacity).",
          label="Table mix", group="Partitioning"),
        P("join_share", "float", 0.0, "Share of requests that join two tables (join_tables). When the two are held "
          "by different databases, the server queries one, then the other: the request pays both latencies and fails "
          "if either database is down.", label="Join share", minimum=0, maximum=1, group="Partitioning"),
        P("join_tables", "names", [], "The two tables a join reads, e.g. [\"users\", \"flights\"]. Empty: the two "
          "most-used tables of the mix.", label="Join tables", maximum=2, group="Partitioning"),
    ),
    ("load_balancer", "server", "cache"),
)

SERVER = Kind(
    "server", "Server", "An application server: finite capacity, a waiting room and a timeout.",
    (
        P("capacity_rps", "float", 100.0, "Requests per second one replica completes when all its workers are busy.",
          label="Capacity", unit="req/s", minimum=0, exclusive_minimum=True, maximum=1_000_000),
        P("workers", "int", 4, "Requests served at once; each worker serves at capacity_rps / workers.",
          unit="workers", minimum=1, maximum=1024),
        P("service", "choice", "exponential", "Service-time distribution: exponential (variable work) or deterministic (every request the same).",
          choices=("exponential", "deterministic")),
        P("queue_limit", "int", 1000, "Requests that may wait for a worker; more are rejected (queue full). 0 = no waiting room.",
          label="Queue limit", unit="requests", minimum=0, maximum=1_000_000),
        P("timeout_s", "float", 30.0, "A request that has waited this long for a worker gives up (timeout).",
          label="Timeout", unit="s", minimum=0, exclusive_minimum=True, maximum=3600),
        P("replicas", "int", 1, "Identical copies of this server (horizontal scaling); drawn as a stack.",
          minimum=1, maximum=10_000),
        P("sessions", "choice", "cookie",
          "Where user sessions live: cookie (in the client's signed cookie, Flask's default: survives), "
          "local (in this server's memory: lost if it dies or the user is sent to another server), "
          "database (one extra database read per request: survives).",
          choices=("local", "database", "cookie")),
        P("blocking_calls", "bool", False, "Sync workers (gunicorn's sync workers, Django or Flask thread-per-"
          "request): the worker that took a request stays busy until its database and cache calls return, so a "
          "slow database fills this server's workers and queue. Off: async workers (asyncio, Node, gevent), "
          "free while the downstream call runs.", label="Blocking calls"),
        P("machine", "choice", "custom", "Machine type (vertical scaling). custom: set capacity, workers and price "
          "yourself; an m5 type (modelled on AWS's general-purpose family) sets all three (a file that names a type "
          "leaves them out), and the list ends at the largest type: nothing bigger exists. Price is linear in "
          "vCPUs, capacity is not (see docs).",
          label="Machine type", choices=MACHINE_CHOICES),
        P("price_per_hour", "float", 0.096, "What one replica costs per hour it exists (booting and draining "
          "included). Set by the machine type unless it is custom; the default is an m5.large's price, which "
          "the default server equals.", label="Price", unit="$/h", minimum=0, maximum=1000),
        P("cache_max_age_s", "float", 0.0, "Cache-Control: max-age of its responses. Browsers reuse a response "
          "this long without asking again (0 = no-cache: every page view is a request).",
          label="Browser max-age", unit="s", minimum=0, maximum=31_536_000, group="HTTP caching"),
        P("etag", "bool", False, "Send an ETag: a browser whose copy expired asks again with If-None-Match, "
          "and if the item did not change it gets a cheap 304 Not Modified (no database call).",
          label="ETag", group="HTTP caching"),
        P("cache_control", "choice", "public", "public: shared caches in front of this server (a Cache node "
          "acting as a CDN or reverse proxy) may store its responses for every user; private: the responses hold "
          "one user's data, only the user's own browser may keep them, so a shared cache in front passes every "
          "read through (max-age still applies in the browser).",
          label="Cache-Control", choices=("public", "private"), group="HTTP caching"),
        P("not_modified_cost", "float", 0.2, "Work of a 304 Not Modified answer, as a share of a full response.",
          label="304 cost", minimum=0, maximum=1, group="HTTP caching"),
        P("cookie_signed", "bool", True, "Sign session cookies with a secret key (Flask's default). A forged "
          "signed cookie is rejected (the user gets an empty session); an unsigned one is believed.",
          label="Signed cookies"),
        P("autoscale", "bool", False, "Add and remove replicas with the load (Kubernetes HPA rule: "
          "desired = ceil(current × utilization / target)); replicas is then the starting count.",
          group="Autoscaling"),
        P("min_replicas", "int", 1, "The autoscaler never goes below this many replicas.",
          label="Min replicas", minimum=1, maximum=10_000, group="Autoscaling"),
        P("max_replicas", "int", 10, "The autoscaler never goes above this many replicas.",
          label="Max replicas", minimum=1, maximum=10_000, group="Autoscaling"),
        P("target_utilization", "float", 0.6, "Utilization the autoscaler aims at (changes within ±10 % are ignored).",
          label="Target utilization", minimum=0.05, maximum=1.0, group="Autoscaling"),
        P("scale_interval_s", "float", 15.0, "How often the autoscaler looks at the utilization (HPA: 15 s).",
          label="Scale interval", unit="s", minimum=1, maximum=3600, group="Autoscaling"),
        P("scale_down_delay_s", "float", 60.0, "Scale in only to the highest count wanted over this long "
          "(HPA's stabilization window, 300 s by default), so a dip does not remove servers at once.",
          label="Scale-in delay", unit="s", minimum=0, maximum=3600, group="Autoscaling"),
        P("boot_time_s", "float", 20.0, "Time a new replica takes to start before it gets traffic.",
          label="Boot time", unit="s", minimum=0, maximum=3600, group="Autoscaling"),
    ),
    ("database", "cache", "load_balancer", "server"),
)

LOAD_BALANCER = Kind(
    "load_balancer", "Load balancer", "Spreads requests over its backends and checks their health.",
    (
        P("algorithm", "choice", "round_robin", "How a backend is chosen for each request.", choices=LB_ALGORITHMS),
        P("affinity", "choice", "none", "sticky: a cookie pins each user to the backend that served them first.",
          choices=("none", "sticky")),
        P("health_interval_s", "float", 2.0, "Time between two health checks (heartbeats) of a backend.",
          label="Health-check interval", unit="s", minimum=0.05, maximum=300),
        P("unhealthy_after", "int", 3, "Failed checks in a row before a backend is taken out (HAProxy 'fall').",
          label="Unhealthy after", unit="checks", minimum=1, maximum=100),
        P("healthy_after", "int", 2, "Passed checks in a row before a backend is put back (HAProxy 'rise').",
          label="Healthy after", unit="checks", minimum=1, maximum=100),
        P("health_check_cost_ms", "float", 2.0, "Work one health check costs a server replica: a small request "
          "(GET /health) that takes a worker this long. A trivial Flask route costs about a millisecond or two of "
          "framework overhead; a check that also queries the database costs more. Checks at a load balancer or "
          "cache cost one ordinary request there.",
          label="Health-check cost", unit="ms", minimum=0, maximum=10_000),
        P("capacity_rps", "float", 20_000.0, "Requests per second the load balancer itself can forward.",
          label="Capacity", unit="req/s", minimum=0, exclusive_minimum=True, maximum=10_000_000),
        P("queue_limit", "int", 10_000, "Requests that may wait when the load balancer itself is saturated.",
          label="Queue limit", unit="requests", minimum=0, maximum=1_000_000),
        P("heartbeat_interval_s", "float", 1.0, "Redundant pair (a client whose entry_policy is failover): the "
          "active balancer announces itself this often (VRRP/keepalived advert_int, 1 s by default). Give both "
          "balancers of a pair the same value.",
          label="Heartbeat interval", unit="s", minimum=0.01, maximum=255, group="Redundancy"),
        P("heartbeat_misses", "int", 3, "A passive balancer takes over after hearing nothing for this many "
          "heartbeat intervals plus its skew time (VRRP's Master_Down_Interval = 3 × advert_int + skew).",
          label="Heartbeat misses", unit="heartbeats", minimum=1, maximum=100, group="Redundancy"),
        P("priority", "int", 100, "VRRP priority: the live balancer with the highest priority is active and takes "
          "back over when it recovers (preemption; equal priorities: the client's first edge wins). It also sets "
          "the skew time (256 − priority) / 256 s added to the takeover delay.",
          minimum=1, maximum=254, group="Redundancy"),
    ),
    ("server", "load_balancer", "cache"),
)

DATABASE = Kind(
    "database", "Database", "Stores data; reads and writes cost different amounts of work.",
    (
        P("read_capacity_rps", "float", 2000.0, "Reads per second when all connections are busy with reads.",
          label="Read capacity", unit="req/s", minimum=0, exclusive_minimum=True, maximum=10_000_000),
        P("write_capacity_rps", "float", 500.0, "Writes per second when all connections are busy with writes.",
          label="Write capacity", unit="req/s", minimum=0, exclusive_minimum=True, maximum=10_000_000),
        P("connections", "int", 20, "Queries executed at once (connection pool size).",
          unit="connections", minimum=1, maximum=4096),
        P("queue_limit", "int", 1000, "Queries that may wait for a connection; more are rejected.",
          label="Queue limit", unit="queries", minimum=0, maximum=1_000_000),
        P("timeout_s", "float", 30.0, "A query that has waited this long gives up.",
          label="Timeout", unit="s", minimum=0, exclusive_minimum=True, maximum=3600),
        P("read_replicas", "int", 0, "Read-only copies (single-primary replication): reads are spread over the "
          "primary and its replicas, writes go to the primary, which copies them to the replicas.",
          label="Read replicas", minimum=0, maximum=100, group="Replication"),
        P("primaries", "int", 1, "Copies that take writes (multi-primary replication when ≥ 2): each takes "
          "reads and writes and copies its writes to the others after the replication lag. Two writes to the same "
          "item on different primaries within the lag conflict (last writer wins: write_conflicts).",
          minimum=1, maximum=16, group="Replication"),
        P("auto_increment_offsets", "bool", False, "Each primary hands out auto-increment ids offset + k × "
          "primaries (MySQL's auto_increment_increment / auto_increment_offset), so inserts on different "
          "primaries never take the same id.", label="Per-primary id offsets", group="Replication"),
        P("replication_lag_ms", "float", 100.0, "How long a write takes to reach the replicas (the other "
          "primaries: at least 1 ms). A user who reads from a replica sooner after their own write sees old "
          "data (a stale read).",
          label="Replication lag", unit="ms", minimum=0, maximum=3_600_000, group="Replication"),
        P("failover_s", "float", 0.0, "When the primary has been down this long, a read replica is promoted "
          "to primary and takes the writes (0 = no automatic failover). A recovered old primary rejoins as a "
          "replica. Not used with several primaries: the live ones take a dead one's writes.", label="Failover after", unit="s", minimum=0, maximum=3600, group="Replication"),
        P("monitor_interval_s", "float", 1.5, "How often the app's database proxy (ProxySQL, HAProxy in front "
          "of MySQL) checks each copy. Until it has missed enough checks, reads sent to a dead replica or a dead "
          "old primary fail. ProxySQL checks every 1.5 s by default.",
          label="Monitor every", unit="s", minimum=0.05, maximum=3600, group="Replication"),
        P("monitor_misses", "int", 3, "Missed checks in a row before the proxy stops sending reads to a copy; "
          "one answered check brings it back.", label="Monitor misses", unit="checks", minimum=1, maximum=100,
          group="Replication"),
        P("shards", "int", 1, "Horizontal partitioning: the data is split over this many shards, each its own "
          "primary (drawn as one node with its shards; fail one as replica shard × (1 + read_replicas)). A query "
          "goes to the shard that owns its key, so a popular key makes a hot shard.",
          minimum=1, maximum=64, group="Sharding"),
        P("shard_key", "choice", "item", "What decides a query's shard: the item it reads or writes, or the user "
          "who sends it.", label="Shard key", choices=("item", "user"), group="Sharding"),
        P("shard_scheme", "choice", "hash", "hash: shard = hash(key) mod shards (changing shards moves about "
          "(N−1)/N of the keys); range: contiguous ranges of keys; consistent_hash: a ring with 160 points per "
          "shard (changing shards moves about 1/N of the keys).", label="Shard scheme",
          choices=("hash", "range", "consistent_hash"), group="Sharding"),
        P("tables", "names", [], "The tables this database holds (vertical or horizontal partitioning), e.g. "
          "[\"users\"] or [\"flights_domestic\"]. A request for a table goes only to the database that holds it. "
          "Empty: it holds every table.", label="Tables", group="Partitioning"),
    ),
    (),
)

CACHE = Kind(
    "cache", "Cache", "A shared in-memory cache (Redis, Memcached) in front of a database or server.",
    (
        P("capacity_rps", "float", 50_000.0, "Lookups per second the cache can answer.",
          label="Capacity", unit="req/s", minimum=0, exclusive_minimum=True, maximum=10_000_000),
        P("capacity_items", "int", 1000, "Items the cache holds; the least recently used one is evicted.",
          label="Size", unit="items", minimum=1, maximum=10_000_000),
        P("ttl_s", "float", 60.0, "An item expires this long after it was cached.", label="TTL", unit="s",
          minimum=0, exclusive_minimum=True, maximum=1e7),
        P("invalidation", "choice", "on_write", "on_write: a write deletes the cached item (never stale); "
          "ttl_only: the item stays until it expires, so reads after a write can be stale.",
          choices=("on_write", "ttl_only")),
        P("connections", "int", 64, "Lookups served at once.", unit="connections", minimum=1, maximum=4096),
    ),
    ("database", "server", "load_balancer"),
)

KINDS: dict[str, Kind] = {k.name: k for k in (CLIENT, LOAD_BALANCER, SERVER, DATABASE, CACHE)}

SIMULATION_PARAMS: tuple[Param, ...] = (
    P("tick_ms", "float", 10.0, "Length of one engine step: how often a traffic pattern's rate is applied. "
      "Requests keep exact times. A least-connections, least-response-time or power-of-two balancer in front "
      "of sync servers that the engine cannot follow request by request, or sharing its users' sticky "
      "cookies with a random or round-robin balancer, decides once per step: smaller steps make its decisions "
      "fresher.",
      label="Tick", unit="ms", minimum=0.1, maximum=1000),
    P("duration_s", "float", 300.0, "How long a headless run simulates.", label="Duration", unit="s",
      minimum=0, exclusive_minimum=True, maximum=1e7),
    P("seed", "int", 1, "Random seed: the same file and seed give the same numbers.", minimum=0, maximum=2**63 - 1),
)

EVENT_ACTIONS = ("fail", "recover")


def cross_check(kind: str, params: dict, where: str) -> None:
    """Checks that involve several parameters of one node (``params`` has all of them)."""
    from .params import FormatError
    if kind == "client" and len(params["join_tables"]) == 1:
        prefix = f"{where}." if where else ""
        raise FormatError(f"{prefix}join_tables", "must name two tables (or none: the two most-used of the mix), "
                          f"got only {params['join_tables'][0]!r}")
    if kind == "server" and params["min_replicas"] > params["max_replicas"]:
        prefix = f"{where}." if where else ""
        raise FormatError(f"{prefix}min_replicas", f"must be ≤ max_replicas ({params['max_replicas']}), "
                          f"got {params['min_replicas']}")


def can_connect(source_kind: str, target_kind: str) -> tuple[bool, str]:
    """Whether an edge from a ``source_kind`` node to a ``target_kind`` node is allowed, and why not."""
    src, dst = KINDS[source_kind], KINDS[target_kind]
    if target_kind == "client":
        return False, f"a {src.label.lower()} cannot send traffic to a client: clients only send requests"
    if target_kind not in src.sends_to:
        if not src.sends_to:
            return False, f"a {src.label.lower()} does not send traffic anywhere: it is the end of a request's path"
        allowed = ", ".join(KINDS[k].label.lower() for k in src.sends_to)
        return False, f"a {src.label.lower()} can only send traffic to: {allowed} (not a {dst.label.lower()})"
    return True, ""
