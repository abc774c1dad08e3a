"""The load-aware balancers' slower path (some blocking servers, a sticky one sharing its
users' cookies with a blind one: docs/engine.md, Load balancers) decides tick by tick, from the connections at
the tick's start plus the requests it placed earlier in the tick.

Power of two compared every request of a tick with the counts at the tick's start, so a
burst in one tick all went to whichever backend had looked emptier: over four caches at
85 % load (then on this path: test_store_backends.py) its mean response was 9 % above an
independent event simulation of power of two choices at ``tick_ms`` 1, 90 % above at 10
and 170 % above at 20. It now counts its placements as least connections does.

Counting also the departures within the tick of the requests already there (their ends
are known) made it worse (2026-12-01: 3.67 ms at 10 ms, 4.17 at 20, against 3.55 and
3.79 without): the tick's own placements, whose ends are not known until the tick's
requests are admitted, then stay counted while the others leave."""
from __future__ import annotations

import heapq

import numpy as np
import pytest

from simulation.document import Document, NodeData
from simulation.engine import Simulation

from wallclock import within

RATE, MU, N, WARM = 3400.0, 1000.0, 4, 20.0


def caches_behind_power_of_two(tick_ms: float, seed: int, duration: float) -> Document:
    """Clients (one hot item: after the warm-up every read is a hit) → power of two →
    four caches of one connection at 1,000 req/s each (rho = 0.85) → a database."""
    d = Document()
    d.add_node(NodeData("c", "client", params={"rate_rps": RATE, "read_ratio": 1.0, "items": 1}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "power_of_two", "capacity_rps": 1e6,
                                                       "health_check_cost_ms": 0.0}))
    d.add_node(NodeData("db", "database", params={}))
    d.add_edge("c", "lb")
    for i in range(N):
        d.add_node(NodeData(f"cache{i}", "cache", params={"capacity_rps": MU, "connections": 1}))
        d.add_edge("lb", f"cache{i}")
        d.add_edge(f"cache{i}", "db")
    d.set_settings(seed=seed, tick_ms=tick_ms, duration_s=duration)
    return d


def servers_behind_sticky_balancers(tick_ms: float, seed: int, duration: float) -> Document:
    """Clients → a sticky power of two → four servers of one worker at 1,000 req/s each
    (rho = 0.85), and an admin's trickle through a blind sticky balancer in front of the
    same servers: the two read and write the same cookies, so the power of two decides on
    the slower path. So many users that nearly every request is a user's first (about
    0.4 % are not), and chooses."""
    d = Document()
    d.add_node(NodeData("c", "client", params={"rate_rps": RATE, "read_ratio": 1.0, "users": 20_000_000}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "power_of_two", "affinity": "sticky",
                                                       "capacity_rps": 1e6, "health_check_cost_ms": 0.0}))
    d.add_node(NodeData("admin", "client", params={"rate_rps": 1.0, "read_ratio": 1.0, "users": 10}))
    d.add_node(NodeData("lb_admin", "load_balancer", params={"algorithm": "random", "affinity": "sticky",
                                                             "capacity_rps": 1e6, "health_check_cost_ms": 0.0}))
    d.add_edge("c", "lb")
    d.add_edge("admin", "lb_admin")
    for i in range(N):
        d.add_node(NodeData(f"web{i}", "server", params={"capacity_rps": MU, "workers": 1, "queue_limit": 10_000}))
        d.add_edge("lb", f"web{i}")
        d.add_edge("lb_admin", f"web{i}")
    d.set_settings(seed=seed, tick_ms=tick_ms, duration_s=duration)
    return d


def power_of_two_ms(seed: int, duration: float) -> float:
    """An independent event simulation: Poisson arrivals, each joins the one with fewer
    requests in it (waiting or in service; ties: the first) of two distinct backends drawn
    at random; each backend a FIFO single server with exponential service."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / RATE, int(RATE * duration * 1.2)))
    t = t[t < duration]
    first, second = rng.integers(0, N, len(t)), rng.integers(0, N - 1, len(t))
    service = rng.exponential(1 / MU, len(t))
    in_system = [[] for _ in range(N)]   # end times of the requests in each backend (heaps)
    free = [0.0] * N
    total, n = 0.0, 0
    for x, a, b, s in zip(t.tolist(), first.tolist(), second.tolist(), service.tolist()):
        b += b >= a
        for q in (a, b):
            while in_system[q] and in_system[q][0] <= x:
                heapq.heappop(in_system[q])
        q = a if len(in_system[a]) <= len(in_system[b]) else b
        free[q] = max(x, free[q]) + s
        heapq.heappush(in_system[q], free[q])
        if x > WARM:
            total += free[q] - x
            n += 1
    return 1000 * total / n


def engine_ms(tick_ms: float, seed: int, duration: float) -> float:
    """The engine's mean response time of the seconds after the warm-up (the admin's
    trickle, one request in 3,400, included)."""
    sim = Simulation(servers_behind_sticky_balancers(tick_ms, seed, duration))
    sim.run_until(duration)
    assert sim.__dict__.get("_last_exact") is None   # the slower path decided, not the compiled pass
    m = sim.metrics
    rows = np.arange(m.n) >= WARM
    return float(np.nansum((m.mean_ms * m.served_rps)[rows]) / m.served_rps[rows].sum())


@pytest.mark.parametrize("tick_ms,within_share", [(1.0, 0.08), (10.0, 0.30)])
def test_power_of_two_on_the_slower_path_counts_the_requests_it_placed_in_the_tick(tick_ms, within_share):
    reference = np.mean([power_of_two_ms(seed, 80.0) for seed in (11, 12)])   # 2.86 ms
    with within(240, f"tick {tick_ms} ms"):
        got = np.mean([engine_ms(tick_ms, seed, 80.0 if tick_ms >= 10 else 50.0) for seed in (1, 2)])
    # counts read at the tick's start miss the departures within it: a little above, more
    # with longer ticks (2.97 ms at 1 ms, 3.55 at 10; before: 3.11 and 5.43)
    assert reference * 0.97 < got < reference * (1 + within_share), (got, reference)


def servers_beside_a_sticky_balancer(tick_ms: float, seed: int, duration: float) -> Document:
    """The power of two → four servers, and beside it (the same level) a blind sticky
    balancer with cookies of its own, which an admin's trickle goes through to servers of
    its own."""
    d = Document()
    d.add_node(NodeData("c", "client", params={"rate_rps": RATE, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "power_of_two", "capacity_rps": 1e6,
                                                       "health_check_cost_ms": 0.0}))
    d.add_node(NodeData("admin", "client", params={"rate_rps": 5.0, "read_ratio": 1.0, "users": 10}))
    d.add_node(NodeData("lb_admin", "load_balancer", params={"algorithm": "round_robin", "affinity": "sticky",
                                                             "capacity_rps": 1e6}))
    d.add_edge("c", "lb")
    d.add_edge("admin", "lb_admin")
    for i in range(N):
        d.add_node(NodeData(f"web{i}", "server", params={"capacity_rps": MU, "workers": 1, "queue_limit": 10_000}))
        d.add_edge("lb", f"web{i}")
    for i in range(2):
        d.add_node(NodeData(f"admin{i}", "server", params={}))
        d.add_edge("lb_admin", f"admin{i}")
    d.set_settings(seed=seed, tick_ms=tick_ms, duration_s=duration)
    return d


def test_a_balancer_beside_a_blind_sticky_one_decides_request_by_request():
    # before 2026-12-01 the sticky one beside it (cookies of its own) sent the power of two
    # to the slower path: 2.98 ms at tick_ms 1, 3.55 at 10, 3.80 at 20
    reference = np.mean([power_of_two_ms(seed, 80.0) for seed in (11, 12, 13)])   # 2.86 ms
    got = []
    with within(120, "three ticks"):
        for tick_ms in (1.0, 10.0, 20.0):
            sim = Simulation(servers_beside_a_sticky_balancer(tick_ms, 1, 80.0))
            sim.run_until(80.0)
            assert sim.__dict__.get("_last_exact") is not None   # the compiled pass decided
            m = sim.metrics
            rows = np.arange(m.n) >= WARM
            got.append((sim.totals()["served"], sim.totals()["mean_ms"],
                        float(np.nansum((m.mean_ms * m.served_rps)[rows]) / m.served_rps[rows].sum()),
                        {n: m.flow[("lb_admin", n)].sum() for n in ("admin0", "admin1")}))
    assert got[0][0] == got[1][0] == got[2][0] and got[0][3] == got[1][3] == got[2][3]
    assert got[0][1] == pytest.approx(got[1][1], rel=1e-9) == pytest.approx(got[2][1], rel=1e-9)
    assert reference * 0.95 < got[1][2] < reference * 1.05, (got, reference)
