"""Budgets: the work and memory a document implies, estimated before anything is built.

The file format allows sizes that no machine can simulate (20,000 nodes, 10,000 replicas
of 1,024 workers each, 10⁷ req/s × a spike of 1,000). The compiler asks :func:`check`
before it allocates anything; what is beyond a budget is refused with one line naming
the node and the parameter. The budgets are chosen so that everything accepted stays
well under ~2 GB (the in-flight requests are bounded while running, see
:data:`MAX_IN_FLIGHT`) and every built-in lesson and benchmark scenario is far inside.
``docs/engine.md`` (*Limits*) lists them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .params import object_with_defaults

MAX_PEAK_RPS = 1_000_000          # arrivals per simulated second, all clients at their peak
MAX_REQUESTS = 10_000_000_000     # requests in one run (peak rate over the pattern × duration)
MAX_STATIONS = 200_000            # replicas of all servers, databases, caches and balancers
MAX_WORKER_SLOTS = 8_000_000      # stations × the most workers (connections) of any station
MAX_WAITING_SLOTS = 25_000_000    # exact waiting-room places: Σ min(queue_limit, 4,096) per station
MAX_ROUTES = 4_000_000            # replica-to-replica routes (a node calling a node without a balancer)
MAX_BACKENDS = 50_000             # backend replicas of all load balancers together
MAX_USER_BYTES = 512 * 2**20      # per-user state: sessions, sticky cookies
MAX_ITEM_BYTES = 256 * 2**20      # item popularity tables (clients whose items a cache or browser sees)
MAX_MEMORY = 1024 * 2**20         # all of the above together (the estimate of Estimate.memory_bytes)
MAX_IN_FLIGHT = 4_000_000         # requests waiting, in service or giving up at one moment
RING_CAP = 4096                   # stations.RING_CAP: exact waiting-room accounting per replica
RING_POINTS = 160                 # dispatch.RING_POINTS: consistent-hash points per backend


class BudgetError(ValueError):
    """Raised as the compiler's SimulationError (see compiler.py); kept apart to avoid an import loop."""


@dataclass
class Estimate:
    """What a document implies (see :func:`estimate`)."""
    peak_rps: float = 0.0
    stations: int = 0
    worker_slots: int = 0
    waiting_slots: int = 0
    routes: int = 0
    backends: int = 0
    user_bytes: int = 0
    item_bytes: int = 0
    memory_bytes: int = 0
    problems: list[str] = field(default_factory=list)   # one line per budget exceeded, worst first


def peak_factor(pattern: dict) -> float:
    """The largest multiplier of rate_rps a pattern reaches."""
    kind = pattern.get("type")
    if kind == "spike":
        return max(1.0, float(pattern.get("factor", 5.0)))
    if kind == "ramp":
        return max(float(pattern.get("from_factor", 0.1)), float(pattern.get("to_factor", 1.0)), 1e-3)
    if kind == "diurnal":
        return 1.0 + float(pattern.get("amplitude", 0.5))
    if kind == "steps":
        return max(max(pattern.get("factors", [1.0])), 1e-3)
    return 1.0


def mean_factor(pattern: dict, duration_s: float) -> float:
    """The mean multiplier of rate_rps over [0, duration_s] (exact for every pattern)."""
    from .patterns import PATTERN_PARAM
    p = object_with_defaults(PATTERN_PARAM, pattern)
    d = max(float(duration_s), 1e-9)
    kind = p["type"]
    if kind == "ramp":
        a, b = min(p["start_s"], d), min(p["end_s"], d)
        f0, f1 = p["from_factor"], p["to_factor"]
        span = max(p["end_s"] - p["start_s"], 1e-12)
        fb = f0 + (f1 - f0) * (b - p["start_s"]) / span if b > p["start_s"] else f0
        return (f0 * a + 0.5 * (f0 + fb) * (b - a) + f1 * (d - b)) / d
    if kind == "spike":
        inside = max(0.0, min(p["at_s"] + p["duration_s"], d) - min(p["at_s"], d))
        return 1.0 + (p["factor"] - 1.0) * inside / d
    if kind == "diurnal":
        w = 2 * math.pi / p["period_s"]
        return 1.0 + p["amplitude"] * (math.sin(w * (d - p["peak_s"])) - math.sin(-w * p["peak_s"])) / (w * d)
    if kind == "steps":
        edges = [min(t, d) for t in p["times_s"]] + [d]
        total = 1.0 * edges[0]                                # before the first step: × 1
        for f, a, b in zip(p["factors"], edges, edges[1:]):
            total += f * (b - a)
        return total / d
    return 1.0


def _n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) < 1e12 else f"{x:.3g}"


def _mb(b: float) -> str:
    return f"{b / 2**30:.1f} GB" if b >= 2**30 else f"{b / 2**20:.0f} MB"


def estimate(ids: list[str], kinds: list[str], params: list[dict], succ_of: list[list[int]]) -> Estimate:
    """Sizes and memory implied by the nodes' parameters and edges (``succ_of``: successors
    of each node by index), in one pass; ``problems`` says what is beyond a budget."""
    e = Estimate()
    n = len(ids)
    stations = [0] * n
    workers = [0] * n
    for i in range(n):
        k, p = kinds[i], params[i]
        if k == "server":
            stations[i] = int(p["max_replicas"] if p["autoscale"] else p["replicas"])
            workers[i] = int(p["workers"])
        elif k == "load_balancer":
            stations[i], workers[i] = 1, 1
        elif k == "database":
            stations[i], workers[i] = ((int(p.get("primaries", 1)) + int(p["read_replicas"])) * int(p.get("shards", 1)),
                                       int(p["connections"]))
        elif k == "cache":
            stations[i], workers[i] = 1, int(p["connections"])
    where = [f'{kinds[i].replace("_", " ")} "{ids[i]}"' for i in range(n)]
    problems: list[tuple[float, str]] = []   # (how far beyond, message)

    def over(value: float, limit: float, line: str) -> None:
        if value > limit:
            problems.append((value / limit, line))

    # Arrivals per second at the peak.
    peaks = [(float(params[i]["rate_rps"]) * peak_factor(params[i]["pattern"]), i)
             for i in range(n) if kinds[i] == "client" and succ_of[i]]
    e.peak_rps = sum(r for r, _ in peaks)
    if peaks:
        top, i = max(peaks)
        rate, factor = float(params[i]["rate_rps"]), peak_factor(params[i]["pattern"])
        if top > MAX_PEAK_RPS:
            over(top, MAX_PEAK_RPS, f"{where[i]}: rate_rps × pattern factor = {_n(rate)} × {factor:g} = "
                 f"{_n(top)} req/s at the peak; the engine simulates at most {_n(MAX_PEAK_RPS)} req/s")
        else:
            over(e.peak_rps, MAX_PEAK_RPS, f"clients send {_n(e.peak_rps)} req/s together at the peak (the most: "
                 f"{where[i]}, {_n(top)}); the engine simulates at most {_n(MAX_PEAK_RPS)} req/s")

    # Stations and their workers (stored per station up to the most workers of any station).
    e.stations = sum(stations)
    biggest = max(range(n), key=lambda i: stations[i], default=0)
    if n and e.stations > MAX_STATIONS:
        param = "max_replicas" if kinds[biggest] == "server" and params[biggest]["autoscale"] else (
            "read_replicas" if kinds[biggest] == "database" else "replicas")
        over(e.stations, MAX_STATIONS, f"{where[biggest]}: {param} = {_n(stations[biggest])} makes "
             f"{_n(e.stations)} replicas in all; at most {_n(MAX_STATIONS)}")
    most = max(range(n), key=lambda i: workers[i], default=0)
    e.worker_slots = e.stations * (workers[most] if n else 0)
    if n:
        param = "workers" if kinds[most] == "server" else "connections"
        over(e.worker_slots, MAX_WORKER_SLOTS, f"{where[most]}: {param} = {_n(workers[most])}, and every one of the "
             f"{_n(e.stations)} replicas in all keeps that many worker slots: {_n(e.worker_slots)} "
             f"({_mb(e.worker_slots * 17)}); at most {_n(MAX_WORKER_SLOTS)}")

    # Waiting rooms: exact accounting keeps the last min(queue_limit, 4,096) starts per station.
    rooms = [stations[i] * min(int(params[i].get("queue_limit", 100_000)), RING_CAP) if stations[i] else 0
             for i in range(n)]
    e.waiting_slots = sum(rooms)
    if n:
        i = max(range(n), key=lambda j: rooms[j])
        over(e.waiting_slots, MAX_WAITING_SLOTS, f"{where[i]}: queue_limit × replicas = "
             f"{_n(min(int(params[i].get('queue_limit', 100_000)), RING_CAP))} × {_n(stations[i])} "
             f"(all nodes: {_n(e.waiting_slots)} waiting places, {_mb(e.waiting_slots * 8)}); "
             f"at most {_n(MAX_WAITING_SLOTS)}")

    # Routes: every replica of a server or cache may call every replica of its successors.
    worst = (0, 0, 0)
    for i in range(n):
        if kinds[i] in ("client", "load_balancer") or not stations[i]:
            continue
        for j in succ_of[i]:
            r = stations[i] * stations[j]
            e.routes += r
            worst = max(worst, (r, i, j))
    if e.routes > MAX_ROUTES:
        r, i, j = worst
        over(e.routes, MAX_ROUTES, f'{where[i]} ({_n(stations[i])} replicas) calls {where[j]} '
             f"({_n(stations[j])} replicas): {_n(e.routes)} replica-to-replica routes in all; at most "
             f"{_n(MAX_ROUTES)} (put a load balancer between them)")

    # Load balancers: health state, and a consistent-hash ring of 160 points per backend.
    per_lb = [(sum(stations[j] for j in succ_of[i]), i) for i in range(n) if kinds[i] == "load_balancer"]
    e.backends = sum(b for b, _ in per_lb)
    if per_lb:
        b, i = max(per_lb)
        over(e.backends, MAX_BACKENDS, f"{where[i]} has {_n(b)} backend replicas ({_n(e.backends)} for all "
             f"balancers); at most {_n(MAX_BACKENDS)}")

    # Per-user state: a session slot per level of servers that keep sessions in memory (at most
    # one per such server), and a sticky cookie per sticky balancer (at most; balancers in front
    # of the same backends share one).
    users = [(int(params[i]["users"]), i) for i in range(n) if kinds[i] == "client"]
    sticky = sum(1 for i in range(n) if kinds[i] == "load_balancer" and params[i]["affinity"] == "sticky")
    local = sum(1 for i in range(n) if kinds[i] == "server" and params[i]["sessions"] == "local")
    per_user = 4 * local + 4 * sticky
    e.user_bytes = sum(u for u, _ in users) * per_user
    if users and per_user:
        u, i = max(users)
        over(e.user_bytes, MAX_USER_BYTES, f"{where[i]}: users = {_n(u)} ({_n(e.user_bytes // per_user)} users in "
             f"all × {per_user} bytes = {_mb(e.user_bytes)}); at most {_mb(MAX_USER_BYTES)} of user state")

    # Item popularity: a table per client when a cache or a browser cache sees items, and a hit
    # and a stale-read probability per item in every cache.
    n_caches = sum(1 for k in kinds if k == "cache")
    browser = any(kinds[i] == "server" and (float(params[i]["cache_max_age_s"]) > 0 or params[i]["etag"])
                  for i in range(n))
    items = [(int(params[i]["items"]), i) for i in range(n) if kinds[i] == "client"]
    if (n_caches or browser) and items:
        x, i = max(items)
        e.item_bytes = sum(v for v, _ in items) * 8 + (n_caches * 16 + 8) * x if n_caches else \
            sum(v for v, _ in items) * 8
        over(e.item_bytes, MAX_ITEM_BYTES, f"{where[i]}: items = {_n(x)} (popularity tables of {len(items)} "
             f"client{'s' * (len(items) != 1)} and {n_caches} cache{'s' * (n_caches != 1)}: "
             f"{_mb(e.item_bytes)}); at most {_mb(MAX_ITEM_BYTES)}")

    parts = {"replicas": e.stations * 1024, "worker slots": e.worker_slots * 17,
             "waiting rooms": e.waiting_slots * 8, "routes": e.routes * 24,
             "balancer backends": e.backends * RING_POINTS * 32, "user state": e.user_bytes,
             "item tables": e.item_bytes}
    e.memory_bytes = sum(parts.values())
    if not problems and e.memory_bytes > MAX_MEMORY:     # each part fits, all of them together do not
        name = max(parts, key=lambda k: parts[k])
        over(e.memory_bytes, MAX_MEMORY, f"this network needs about {_mb(e.memory_bytes)} (the most: {name}, "
             f"{_mb(parts[name])}); at most {_mb(MAX_MEMORY)} for all its parts together")
    e.problems = [line for _, line in sorted(problems, key=lambda x: -x[0])]
    return e


def check(ids: list[str], kinds: list[str], params: list[dict], succ_of: list[list[int]]) -> Estimate:
    """The estimate, or :class:`BudgetError` with the worst problem as its one-line message."""
    e = estimate(ids, kinds, params, succ_of)
    if e.problems:
        raise BudgetError(e.problems[0])
    return e


def check_work(doc, duration_s: float) -> float:
    """Requests a run of ``duration_s`` of the document implies (Σ rate × mean pattern factor
    × duration over the clients that send somewhere); BudgetError beyond :data:`MAX_REQUESTS`."""
    d = float(duration_s)
    per = []
    for node in doc.node_ids():
        if doc.kind(node) == "client" and doc.successors(node):
            p = doc.params(node)
            per.append((float(p["rate_rps"]) * mean_factor(p["pattern"], d) * d, node))
    total = sum(r for r, _ in per)
    if total > MAX_REQUESTS:
        r, node = max(per)
        raise BudgetError(f'client "{node}": about {_n(r)} requests in {d:g} s '
                          f"({_n(total)} for all clients); at most {_n(MAX_REQUESTS)} in one run "
                          f"(lower duration_s or rate_rps)")
    return total


def in_flight_message(count: int, node: str, at_node: int, now: float) -> str:
    return (f'{node}: {_n(at_node)} requests waiting or giving up at t = {now:.0f} s '
            f"({_n(count)} in flight in all); the engine holds at most {_n(MAX_IN_FLIGHT)} "
            f"(lower its queue_limit or timeout_s, or add capacity)")
