"""Each built-in lesson shows what its notes say it shows, with numbers.

The lessons are run headless as the CLI runs them (the file as shipped, its own seed),
sometimes with one edit a student would make (another algorithm, signed cookies, one
group of users alone); their effect is compared with a closed form where there is one.
Rows of the metrics are seconds: row i covers second i + 1.
"""
from __future__ import annotations

import heapq

import math
from pathlib import Path

import numpy as np
import pytest

from simulation.analysis import structural_spof
from simulation.document import Document
from simulation.engine import Simulation
from simulation.fileformat import load

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"
LN20 = math.log(20.0)          # p95 of an exponential response time = ln 20 × its mean


def lesson(name: str, **edits: dict) -> Document:
    doc = load(LESSONS / f"{name}.scalelab")
    for node, params in edits.items():
        doc.set_params(node, params)
    return doc


def run(doc: Document, seconds: float | None = None) -> Simulation:
    sim = Simulation(doc)
    sim.run_until(float(doc.settings["duration_s"]) if seconds is None else seconds)
    return sim


def alone(name: str, client: str, clients: tuple[str, ...], **edits: dict) -> Document:
    """The lesson with every other group of users silent (rate 0)."""
    return lesson(name, **{c: {"rate_rps": 0.0} for c in clients if c != client}, **edits)


def mean_ms(sim: Simulation, rows: slice) -> float:
    """Mean latency of the requests served in ``rows`` (weighted by the requests served)."""
    served = sim.metrics.served_rps[rows]
    return float(np.nansum(sim.metrics.mean_ms[rows] * served) / served.sum())


# ----- 1. capacity ------------------------------------------------------------------------------
def test_capacity_latency_follows_mm1_and_explodes_past_the_knee():
    doc = lesson("capacity")
    mu = doc.params("web")["capacity_rps"]
    pattern = doc.params("users")["pattern"]
    rate = doc.params("users")["rate_rps"]
    starts, loads = pattern["times_s"], [rate * f for f in pattern["factors"]]
    sim = run(doc)
    means = {}
    for start, end, lam in zip(starts, starts[1:], loads):
        means[lam] = mean_ms(sim, slice(int(start) + 10, int(end)))        # the last 20 s of each step
        assert means[lam] == pytest.approx(1000 / (mu - lam), rel=0.3), lam   # M/M/1: 1 / (μ − λ)
    assert means[90] > 3 * means[50]                                      # the knee (theory: 5×)
    # past 100 %: the server serves μ whatever comes; the backlog grows by λ − μ per second and
    # requests start to time out once it holds timeout × μ of them (a fluid model)
    over, timeout = loads[-1], doc.params("web")["timeout_s"]
    last = slice(int(starts[-1]) + 5, None)
    assert sim.metrics.util["web"][last].min() > 0.99
    assert sim.metrics.served_rps[last].mean() == pytest.approx(mu, rel=0.05)
    first_timeout = np.nonzero(sim.metrics.failed_by_cause["timeout"])[0][0] + 1
    assert first_timeout == pytest.approx(starts[-1] + timeout * mu / (over - mu), abs=5)


# ----- 3. scaling out ---------------------------------------------------------------------------
def test_scaling_out_one_server_turns_away_the_excess_and_four_carry_it():
    doc = lesson("scaling_out")
    seconds = 70.0                                       # saturation starts at about 41 s
    one = run(doc, seconds).totals()
    # fluid model: beyond 200 req/s the server turns away λ(t) − 200, once its 400 places are full
    p, rate = doc.params("users")["pattern"], doc.params("users")["rate_rps"]
    t = np.arange(0.0, seconds, 0.01) + 0.005
    lam = rate * np.interp(t, [p["start_s"], p["end_s"]], [p["from_factor"], p["to_factor"]])
    excess = np.maximum(lam - doc.params("app")["capacity_rps"], 0).sum() * 0.01
    expected = excess - doc.params("app")["queue_limit"]
    assert one["failed_by_cause"]["queue_full"] == pytest.approx(expected, rel=0.15)
    assert one["p95_ms"] > 1000
    four = run(lesson("scaling_out", app={"replicas": 4}), seconds).totals()
    assert four["failed"] == 0 and four["p95_ms"] < 500


# ----- 4. load-balancing algorithms -------------------------------------------------------------
LB_USERS = ("users_random", "users_rr", "users_fewest")


def e_k_m_1_sigma(k: int, lam: float, mu: float) -> float:
    """GI/M/1 with Erlang-k interarrivals: the root σ of σ = A*(μ(1 − σ)), A*(s) = (kλ/(kλ + s))^k.
    The response time is then exponential with rate μ(1 − σ)."""
    lo, hi = 0.0, 1.0 - 1e-12
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid - (k * lam / (k * lam + mu * (1 - mid))) ** k < 0:
            lo = mid
        else:
            hi = mid
    return lo


def test_round_robin_beats_random_on_equal_servers_and_fewest_connections_beats_both():
    doc = lesson("lb_algorithms")
    n, mu = 3, doc.params("web1")["capacity_rps"]
    lam = doc.params("users_rr")["rate_rps"] / n                       # per server
    p95 = {}
    for client in LB_USERS:   # each group's minute alone, moved to the start (the same servers and load)
        doc1 = alone("lb_algorithms", client, LB_USERS, **{client: {"pattern": {"type": "constant"}}})
        p95[client] = run(doc1, 60).totals()["p95_ms"]
    assert p95["users_random"] == pytest.approx(1000 * LN20 / (mu - lam), rel=0.15)    # M/M/1 per server
    sigma = e_k_m_1_sigma(n, lam, mu)                                                   # E₃/M/1 per server
    assert p95["users_rr"] == pytest.approx(1000 * LN20 / (mu * (1 - sigma)), rel=0.2)
    assert p95["users_rr"] < 0.8 * p95["users_random"]
    assert p95["users_fewest"] < 0.9 * p95["users_rr"]
    # fewest connections: each request joins the shortest queue at its arrival (JSQ), against
    # an independent event simulation of JSQ over n M/M/1 servers (the notes say about 80 ms)
    assert p95["users_fewest"] == pytest.approx(jsq_p95_ms(n, n * lam, mu), rel=0.2)


def jsq_p95_ms(n: int, lam: float, mu: float, requests: int = 120_000, seed: int = 5) -> float:
    """p95 response (ms) of join-the-shortest-queue (ties at random) over n FIFO exponential servers."""
    rng = np.random.default_rng(seed)
    gaps, work, ties = rng.exponential(1 / lam, requests), rng.exponential(1 / mu, requests), rng.random(requests)
    t, free, ends, resp = 0.0, [0.0] * n, [[] for _ in range(n)], np.empty(requests)
    for i in range(requests):
        t += gaps[i]
        for q in ends:
            while q and q[0] <= t:
                heapq.heappop(q)
        least = min(len(q) for q in ends)
        pick = [s for s in range(n) if len(ends[s]) == least]
        s = pick[int(ties[i] * len(pick))]
        free[s] = max(t, free[s]) + work[i]
        heapq.heappush(ends[s], free[s])
        resp[i] = free[s] - t
    return float(np.percentile(resp[requests // 20:], 95) * 1000)


def test_round_robin_overloads_the_small_server_and_fewest_connections_does_not():
    doc = lesson("lb_unequal")
    rate = doc.params("users_rr")["rate_rps"]
    caps = {s: doc.params(s)["capacity_rps"] for s in ("big", "medium", "small")}
    assert rate / 3 > caps["small"] and rate < sum(caps.values())      # the premise
    rr = run(alone("lb_unequal", "users_rr", LB_USERS), 120)
    t = rr.totals()
    phase = slice(75, 120)
    for server, cap in caps.items():            # a third each, whatever the size
        assert rr.metrics.util[server][phase].mean() == pytest.approx(min(rate / 3 / cap, 1.0), abs=0.05)
    assert t["failed"] > 0.05 * t["arrived"] and t["p95_ms"] > 2000
    # fewest connections decides tick by tick: its minute is run alone, moved to the start
    fewest = run(alone("lb_unequal", "users_fewest", LB_USERS, users_fewest={"pattern": {"type": "constant"}}),
                 60).totals()
    assert fewest["failed"] == 0 and fewest["p95_ms"] < t["p95_ms"] / 10


# ----- 5. sticky sessions -----------------------------------------------------------------------
def test_sticky_users_stay_where_their_cookie_points_so_the_recovered_server_gets_only_new_users():
    doc = lesson("sticky_sessions")
    sim = run(doc)
    t, m = sim.totals(), sim.metrics
    users = doc.params("users")["users"]
    assert m.failed_rps[:40].sum() == 0
    assert t["sessions_lost"] == pytest.approx(users / 3, rel=0.3)      # Web 1's users, once each
    rate, lb = doc.params("users")["rate_rps"], doc.params("lb")
    detect = (lb["unhealthy_after"] - 0.5) * lb["health_interval_s"]
    assert t["failed_by_cause"]["backend_down"] == pytest.approx(rate / 3 * detect, rel=0.35)
    web1 = m.flow[("lb", "web1")]
    assert web1[50:115].sum() == 0                  # recovered at 100 s, and still empty
    newcomers = doc.params("newcomers")["rate_rps"]
    assert web1[120:].mean() == pytest.approx(newcomers / 3, rel=0.35)     # a third of the new users
    others = m.flow[("lb", "web2")][120:].mean() + m.flow[("lb", "web3")][120:].mean()
    assert others == pytest.approx(rate + newcomers * 2 / 3, rel=0.1)


# ----- 6. sessions in a database ----------------------------------------------------------------
def test_sessions_in_the_database_survive_a_server_and_cost_one_read_per_request():
    doc = lesson("sessions_database")
    db, r = doc.params("db"), doc.params("users")["read_ratio"]
    before = slice(5, 40)                                               # Web 2 dies at 40 s
    sim = run(doc)
    assert sim.totals()["sessions_lost"] == 0
    lam = sim.metrics.served_rps[before].mean()
    with_sessions = (r * lam + lam) / db["read_capacity_rps"] + (1 - r) * lam / db["write_capacity_rps"]
    assert sim.metrics.util["db"][before].mean() == pytest.approx(with_sessions, rel=0.1)
    cookie = run(lesson("sessions_database", **{w: {"sessions": "cookie"} for w in ("web1", "web2", "web3")}), 40)
    lam_c = cookie.metrics.served_rps[before].mean()
    without = r * lam_c / db["read_capacity_rps"] + (1 - r) * lam_c / db["write_capacity_rps"]
    assert cookie.metrics.util["db"][before].mean() == pytest.approx(without, rel=0.1)
    extra = sim.metrics.util["db"][before].mean() - cookie.metrics.util["db"][before].mean()
    assert extra == pytest.approx(lam / db["read_capacity_rps"], rel=0.2)    # one read per request


# ----- 7. sessions in cookies -------------------------------------------------------------------
def test_unsigned_cookies_are_forged_and_signed_ones_are_not():
    doc = lesson("cookie_sessions")
    share = doc.params("users_a")["forged_share"]
    t = run(doc).totals()
    # shop A (unsigned) believes its forged cookies, shop B (signed) refuses its own; half the traffic each
    assert t["forged_accepted"] == pytest.approx(share * t["arrived"] / 2, rel=0.2)
    assert t["forged_rejected"] == pytest.approx(share * t["arrived"] / 2, rel=0.2)
    assert t["sessions_lost"] == 0
    signed = run(lesson("cookie_sessions", web_a1={"cookie_signed": True}, web_a2={"cookie_signed": True})).totals()
    assert signed["forged_accepted"] == 0
    assert signed["forged_rejected"] == pytest.approx(share * signed["arrived"], rel=0.15)


# ----- 8. autoscaling ---------------------------------------------------------------------------
FLEETS = ("users_peak", "users_small", "users_auto")


def test_autoscaling_is_a_third_cheaper_than_the_peak_fleet_and_the_small_fleet_fails():
    doc = lesson("autoscaling")
    fixed = {"peak": doc.params("app_peak")["replicas"], "small": doc.params("app_small")["replicas"]}
    runs = {c.split("_")[1]: run(alone("autoscaling", c, FLEETS)) for c in FLEETS}
    totals = {k: s.totals() for k, s in runs.items()}
    seconds = runs["auto"].metrics.n
    # cost_server_s counts every server replica that exists; the fixed fleets never change
    auto_cost = runs["auto"].metrics.cost_server_s.sum() - (fixed["peak"] + fixed["small"]) * seconds
    peak_cost = fixed["peak"] * seconds
    assert auto_cost < 0.7 * peak_cost
    assert totals["auto"]["p95_ms"] < 1.5 * totals["peak"]["p95_ms"]
    assert totals["peak"]["failed"] == 0 and totals["auto"]["failed"] < 0.001 * totals["auto"]["arrived"]
    # the small fleet loses about what exceeds its capacity (a fluid model of the diurnal rate)
    small = totals["small"]
    assert small["failed"] > 0.01 * small["arrived"]
    p, rate = doc.params("users_small")["pattern"], doc.params("users_small")["rate_rps"]
    t = np.arange(0.0, seconds, 0.01) + 0.005
    lam = rate * (1 + p["amplitude"] * np.cos(2 * np.pi * (t - p["peak_s"]) / p["period_s"]))
    capacity = fixed["small"] * doc.params("app_small")["capacity_rps"]
    assert small["failed"] / small["arrived"] == pytest.approx(np.maximum(lam - capacity, 0).sum() / lam.sum(),
                                                               abs=0.05)
    # the autoscaler follows the day: about ceil(peak load / (capacity × target)) servers at noon
    a = doc.params("app_auto")
    noon = math.ceil(rate * (1 + p["amplitude"]) / (a["capacity_rps"] * a["target_utilization"]))
    assert runs["auto"].metrics.replicas_up["app_auto"].max() == pytest.approx(noon, abs=1)
    assert runs["auto"].metrics.replicas_up["app_auto"][:5].max() == a["min_replicas"]


# ----- 9. heartbeats ----------------------------------------------------------------------------
def test_failures_stop_within_the_detection_delay_and_fast_checks_cost_server_time():
    doc = lesson("heartbeats")
    fail_at = next(e.at_s for e in doc.events if e.action == "fail")
    for stack in ("slow", "fast"):
        other = "fast" if stack == "slow" else "slow"
        lb = doc.params(f"lb_{stack}")
        interval, fall = lb["health_interval_s"], lb["unhealthy_after"]
        sim = run(lesson("heartbeats", **{f"users_{other}": {"rate_rps": 0.0}}), fail_at + 30)
        failing = np.nonzero(sim.metrics.failed_rps)[0] + 1               # seconds with failures
        assert failing.min() == fail_at + 1
        assert failing.max() <= math.ceil(fail_at + fall * interval + interval + doc.settings["tick_ms"] / 1000)
        share = doc.params(f"users_{stack}")["rate_rps"] / 3
        lost = sim.totals()["failed"]
        assert share * (fall - 1) * interval * 0.8 - 5 <= lost <= share * fall * interval * 1.2 + 5
    # every check takes a worker for health_check_cost_ms: utilization + cost / (interval × workers)
    sim = run(doc, fail_at)
    for stack in ("slow", "fast"):
        lb = doc.params(f"lb_{stack}")
        server = doc.params(f"{stack}1")
        users = doc.params(f"users_{stack}")["rate_rps"] / 3 / server["capacity_rps"]
        checks = lb["health_check_cost_ms"] / 1000 / lb["health_interval_s"] / server["workers"]
        util = np.mean([sim.metrics.util[f"{stack}{i}"][2:].mean() for i in (1, 2, 3)])
        assert util == pytest.approx(users + checks, abs=0.03), stack
    assert checks > 0.04                                                  # the fast checks' price: 5 %


# ----- 10. single points of failure -------------------------------------------------------------
def test_the_standby_balancer_takes_over_and_the_database_is_the_spof_left():
    doc = lesson("redundancy")
    spof = structural_spof(doc)
    assert set(spof) == {"db"} and spof["db"].kind == "full"
    sim = run(doc)
    m, rate = sim.metrics, doc.params("users")["rate_rps"]
    b = doc.params("lb_b")
    mdi = b["heartbeat_misses"] * b["heartbeat_interval_s"] + (256 - b["priority"]) / 256
    takeover = m.failed_rps[30:35].sum()          # A dies at 30 s: VRRP's Master_Down_Interval
    assert rate * (mdi - b["heartbeat_interval_s"]) * 0.85 <= takeover <= rate * mdi * 1.15
    assert m.failed_rps[35:90].sum() == 0          # A's return at 60 s (preemption) loses nothing
    assert m.flow[("users", "lb_a")][35:60].sum() == 0 and m.flow[("users", "lb_a")][66:89].min() > 0
    outage = slice(91, 100)                        # the database is down from 90 s to 100 s
    assert m.failed_rps[outage].sum() >= 0.99 * m.offered_rps[outage].sum()
    assert m.failed_rps[102:].sum() == 0


# ----- 12. sharding -----------------------------------------------------------------------------
def test_a_hot_shard_slower_joins_and_a_dead_shard_losing_its_share():
    doc = lesson("sharding")
    sim = run(doc)
    m = sim.metrics
    shards = doc.params("db")["shards"]
    util = np.array([m.util[f"db#{s}"][5:60].mean() for s in range(shards)])
    assert util.max() > 2 * util.min()                                   # Zipf keys: a hot shard
    dead = next(e.replica for e in doc.events if e.action == "fail")
    down = slice(102, 110)                                               # shard down from 100 s to 110 s
    lost = m.failed_rps[down].sum() / m.offered_rps[down].sum()
    assert lost == pytest.approx(util[dead] / util.sum(), abs=0.06)     # its share of the work, not all
    # reports alone, joined across shards or not: a join waits for the slowest of the shards; at light
    # load each shard answers in an exponential time, so the join adds (H_N − 1) × the mean service time
    reports = {cs: run(lesson("sharding", users={"rate_rps": 0.0}, reports={"cross_shard_share": cs}), 90).totals()
               for cs in (0.0, 1.0)}
    db, read = doc.params("db"), doc.params("reports")["read_ratio"]
    service = read * db["connections"] / db["read_capacity_rps"] + (1 - read) * db["connections"] / db["write_capacity_rps"]
    harmonic = sum(1 / k for k in range(1, shards + 1))
    extra = reports[1.0]["mean_ms"] - reports[0.0]["mean_ms"]
    assert extra == pytest.approx(1000 * service * (harmonic - 1), rel=0.25)


# ----- 13. single-primary replication -----------------------------------------------------------
def test_every_copy_applies_every_write_so_replicas_scale_reads_only():
    doc = lesson("database_scaling")
    db, read = doc.params("db"), doc.params("users")["read_ratio"]
    window = slice(10, 20)                                               # the cache warm, before the crash
    for replicas in (db["read_replicas"], 5):
        sim = run(lesson("database_scaling", db={"read_replicas": replicas}), 20)
        m = sim.metrics
        writes = m.flow[("app", "cache")][window].mean() * (1 - read)    # every write passes the cache
        reads = m.flow[("cache", "db")][window].mean() - writes
        copies = replicas + 1
        expected = reads / copies / db["read_capacity_rps"] + writes / db["write_capacity_rps"]
        assert m.util["db"][window].mean() == pytest.approx(expected, rel=0.1), replicas
        assert m.util["db"][window].mean() > writes / db["write_capacity_rps"]


# ----- 14. multi-primary ------------------------------------------------------------------------
def zipf_pmf(items: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, items + 1) ** s
    return w / w.sum()


def test_two_primaries_collide_on_ids_and_lose_updates_and_offsets_fix_the_ids():
    doc = lesson("multi_primary")
    sim = run(doc)
    t, m = sim.totals(), sim.metrics
    assert t["id_collisions"] > 0 and t["write_conflicts"] > 0
    # one primary down (25 s to 40 s): once the proxy knows, every write goes to one primary
    db = doc.params("db")
    known = 25 + db["monitor_misses"] * db["monitor_interval_s"] + 1
    quiet = slice(math.ceil(known), 40)
    assert m.write_conflicts[quiet].sum() == 0 and m.id_collisions[quiet].sum() == 0
    assert run(lesson("multi_primary", db={"auto_increment_offsets": True}), 25).totals()["id_collisions"] == 0
    # updates only, both primaries up: conflicts = Σ wᵢ² (1 − 1/P) × lag per second
    seconds = 25.0
    u = run(lesson("multi_primary", users={"insert_share": 0.0}), seconds).totals()
    users = doc.params("users")
    writes = u["served"] * (1 - users["read_ratio"]) / seconds
    w = writes * zipf_pmf(users["items"], users["zipf_s"])
    expected = np.sum(w ** 2) * (1 - 1 / db["primaries"]) * db["replication_lag_ms"] / 1000 * seconds
    assert u["write_conflicts"] == pytest.approx(expected, rel=0.2)


# ----- 16. server-side cache --------------------------------------------------------------------
def che_hit_ratio(read_rate: float, pmf: np.ndarray, size: int, ttl_s: float) -> float:
    """Che's approximation for LRU (Σ (1 − e^{−λᵢ T}) = size), capped by the TTL's renewal bound
    λᵢ m / (1 + λᵢ m) per item."""
    lam = read_rate * pmf
    lo, hi = 0.0, 1e9
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(1 - np.exp(-lam * mid)) < size else (lo, mid)
    che = 1 - np.exp(-lam * lo)
    return float(np.sum(pmf * np.minimum(che, lam * ttl_s / (1 + lam * ttl_s))))


def test_the_cache_hit_ratio_follows_che_and_only_expiry_serves_stale_reads():
    doc = lesson("server_cache")
    sim = run(doc, 60)
    m = sim.metrics
    assert sim.totals()["stale_reads"] > 0                               # the ttl_only cache
    users, cache = doc.params("users_ttl"), doc.params("cache_ttl")
    window = slice(20, None)                                             # warm
    into = m.flow[("app_ttl", "cache_ttl")][window].sum()
    reads, writes = into * users["read_ratio"], into * (1 - users["read_ratio"])
    hit = 1 - (m.flow[("cache_ttl", "db_ttl")][window].sum() - writes) / reads
    expected = che_hit_ratio(users["rate_rps"] * users["read_ratio"], zipf_pmf(users["items"], users["zipf_s"]),
                             cache["capacity_items"], cache["ttl_s"])
    assert hit == pytest.approx(expected, abs=0.04)
    on_write = run(lesson("server_cache", cache_ttl={"invalidation": "on_write"}), 30).totals()
    assert on_write["stale_reads"] == 0
