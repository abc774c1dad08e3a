"""Engine vs. SimPy on the benchmark scenarios of issue 2 (section 6), side by side in one run.

    .venv/bin/python benchmarks/engine_bench.py [S1|S2|all] [--quick] [--seed N] [--repeat K] [--accuracy K]
    .venv/bin/python benchmarks/engine_bench.py S1 --profile        # cProfile of the engine, top 15 by tottime

S1  Poisson 900 req/s → load balancer (random) → 10 servers, exponential service 100 req/s each
    (1 worker, queue limit 10⁶, timeout 3,600 s), 3,600 s simulated. Each server is an M/M/1 queue with
    λ = 90, μ = 100: mean response time W = 1/(μ−λ) = 0.1 s, p95 = ln(20)/(μ−λ) ≈ 0.2996 s.
    Targets: engine ≥ 50× SimPy's rate; mean response time within 2 % of 0.1 s.
S2  Poisson 90,000 req/s → load balancer (random) → 1,000 servers of 100 req/s, 60 s simulated,
    as one server node with replicas=1000 and as 1,000 separate server nodes. SimPy is timed on a
    shorter run (5 s) and its rate compared. Targets: engine ≥ 100× SimPy; peak memory < 500 MB.

The load balancer has capacity 1e7 req/s (it adds 1e-7 s per request) and nothing is ever dropped.
The engine runs with the document's default tick unless --tick-ms is given.

Every measurement runs in a fresh interpreter (``--child``), one after the other, so imports,
caches and earlier runs don't pollute timing or memory. Rates are simulated seconds per wall
second of ``Simulation.advance`` (the document build and compile are timed apart, as "setup");
simulated seconds per CPU second (``time.process_time``) are shown too, as they suffer less from
other users of the machine. With ``--repeat K`` the measurements of a scenario run round-robin
K times and the median is shown. ``--accuracy K`` adds the engine's mean over K seeds (one run's
mean has a statistical error of about ±1 % on S1).
Memory: ``ru_maxrss`` of the timing child (whole process, imports included; also shown: the RSS
right after the imports) and the ``tracemalloc`` peak of the engine in a second child (tracemalloc
slows Python code, so it never runs during timing; numpy reports its buffers to tracemalloc).

The machine is shared: the load average is printed at the start and the end; compare ratios
within one run, not across runs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ----- scenarios -------------------------------------------------------------------------------------
SCENARIOS = {
    #      rate      servers  μ      full   quick  simpy full  simpy quick  warm-up
    "S1": dict(rate=900.0, n=10, mu=100.0, duration=3600.0, quick=200.0,
               simpy=3600.0, simpy_quick=60.0, warmup=20.0, speed_target=50.0,
               simpy_ref=(55.0, "issue 2")),
    "S2": dict(rate=90_000.0, n=1000, mu=100.0, duration=60.0, quick=5.0,
               simpy=5.0, simpy_quick=0.5, warmup=10.0, speed_target=100.0,
               simpy_ref=(0.26, "shared/reference/performance-notes.md")),
    # S3: client → server (2 replicas × 64 workers, 5,000 req/s each) → database (20 connections)
    "S3": dict(rate=2000.0, n=2, mu=5000.0 / 64, duration=60.0, quick=5.0, simpy=60.0, simpy_quick=5.0,
               warmup=10.0, speed_target=10.0, simpy_ref=None),
    # S4: S1's servers at 90 % load behind least_connections / least_response_time
    "S4lc": dict(rate=900.0, n=10, mu=100.0, duration=600.0, quick=20.0, simpy=600.0, simpy_quick=20.0,
                 warmup=20.0, speed_target=10.0, simpy_ref=None, algorithm="least_connections"),
    "S4lrt": dict(rate=900.0, n=10, mu=100.0, duration=600.0, quick=20.0, simpy=600.0, simpy_quick=20.0,
                  warmup=20.0, speed_target=10.0, simpy_ref=None, algorithm="least_response_time"),
    # S5: a blocking tier (thread-per-request servers holding a worker during their database call):
    # client → server (4 replicas × 1 sync worker, 300 req/s) → database (100 connections, 0.5 ms
    # queries). "No topology slower than SimPy" (issue 11): target ≥ 1×.
    "S5": dict(rate=900.0, n=4, mu=300.0, duration=120.0, quick=10.0, simpy=20.0, simpy_quick=3.0,
               warmup=5.0, speed_target=1.0, simpy_ref=None),
    # S6: two tiers of sync workers behind least connections: client → LB → web (4 × 2 sync workers,
    # 1,000 req/s each) → api (4 × 2 sync workers, 800 req/s each) → database (S5's). Also "no
    # topology slower than SimPy": target ≥ 1×.
    "S6": dict(rate=1200.0, n=4, mu=1000.0, duration=120.0, quick=10.0, simpy=20.0, simpy_quick=3.0,
               warmup=5.0, speed_target=1.0, simpy_ref=None, api_mu=800.0, workers=2),
}
S3_DB = dict(connections=20, read_capacity_rps=3000.0, write_capacity_rps=1000.0, read_ratio=0.9)
S5_DB = dict(connections=100, read_capacity_rps=200_000.0, write_capacity_rps=200_000.0, read_ratio=1.0)
MEAN_TOLERANCE = 0.02          # S1: |mean − W| / W
MEMORY_LIMIT_MB = 500.0        # S2
BIG_QUEUE = 1_000_000
NO_TIMEOUT_S = 3600.0          # the largest timeout a server may have
LB_CAPACITY = 10_000_000.0     # the largest load-balancer capacity: adds 1e-7 s


def _window_kw(a: argparse.Namespace) -> dict:
    """``max_window_s`` for Simulation: only when asked for (0: the engine's own default)."""
    return {"max_window_s": a.max_window_s} if a.max_window_s > 0 else {}


def theory(rate: float, n: int, mu: float) -> tuple[float, float]:
    """(mean, p95) response time in seconds of each M/M/1 server fed λ = rate/n."""
    lam = rate / n
    return 1.0 / (mu - lam), math.log(20.0) / (mu - lam)


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Mean waiting time in queue of an M/M/c queue (Erlang C), seconds."""
    a = lam / mu
    rho = a / c
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1 - rho)
    return last / (total + last) / (c * mu - lam)


def theory_mean(name: str) -> tuple[float, str]:
    """(mean response time in s, how it is obtained) of a scenario."""
    s = SCENARIOS[name]
    if name in ("S1", "S2"):
        return theory(s["rate"], s["n"], s["mu"])[0], "M/M/1 per server"
    if name == "S3":
        db = S3_DB
        w_server = 1 / s["mu"] + erlang_c(64, s["rate"] / s["n"], s["mu"])
        r = db["read_ratio"]
        es = r * db["connections"] / db["read_capacity_rps"] + (1 - r) * db["connections"] / db["write_capacity_rps"]
        es2 = 2 * (r * (db["connections"] / db["read_capacity_rps"]) ** 2
                   + (1 - r) * (db["connections"] / db["write_capacity_rps"]) ** 2)
        scv = es2 / es ** 2 - 1
        wq = erlang_c(db["connections"], s["rate"], 1 / es)
        return (w_server + es + wq * (1 + scv) / 2,
                f"server M/M/64 {w_server * 1000:.2f} ms + database M/G/20 (Erlang C {wq * 1000:.2f} ms × "
                f"(1 + SCV {scv:.2f})/2, Allen–Cunneen) + {es * 1000:.2f} ms service")
    if name == "S5":   # each server: M/G/1 whose service is its own work + the query (exp + exp), the
        a_s = 1 / s["mu"]   # database's queue negligible (load 0.45 %); Pollaczek–Khinchine
        b_s = S5_DB["connections"] / S5_DB["read_capacity_rps"]
        lam = s["rate"] / s["n"]
        es, es2 = a_s + b_s, 2 * (a_s * a_s + a_s * b_s + b_s * b_s)
        rho = lam * es
        return es + lam * es2 / (2 * (1 - rho)), f"M/G/1 per server, service exp({a_s * 1000:.2f} ms) + " \
            f"exp({b_s * 1000:.2f} ms) held, ρ = {rho:.3f} (Pollaczek–Khinchine)"
    if name == "S6":   # no closed form: the sum of the three services is a lower bound; SimPy's mean is the check
        es = s["workers"] / s["mu"] + s["workers"] / s["api_mu"] + S5_DB["connections"] / S5_DB["read_capacity_rps"]
        return es, "no closed form: the three services without waiting (a lower bound); compare with SimPy's mean"
    w = 1 / s["mu"] + erlang_c(s["n"], s["rate"], s["mu"])
    return w, "M/M/10 with one shared queue (Erlang C): the lower bound of any balancer"


def build_s3(seed: int = 1, tick_ms: float | None = None):
    """S3: Poisson 2,000 req/s → server (2 replicas, 64 workers, 5,000 req/s) → database (20
    connections, 3,000 reads/s, 1,000 writes/s; 90 % reads)."""
    from simulation.document import Document, NodeData

    s = SCENARIOS["S3"]
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": s["rate"], "users": 10_000,
                                                   "read_ratio": S3_DB["read_ratio"]}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 5000.0, "workers": 64, "replicas": 2,
                                                 "service": "exponential", "queue_limit": BIG_QUEUE,
                                                 "timeout_s": NO_TIMEOUT_S}))
    d.add_node(NodeData("db", "database", params={k: v for k, v in S3_DB.items() if k != "read_ratio"}
                        | {"queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=seed, **({"tick_ms": tick_ms} if tick_ms is not None else {}))
    return d


def build_s5(seed: int = 1, tick_ms: float | None = None):
    """S5: Poisson 900 req/s → server (4 replicas × 1 worker, 300 req/s, ``blocking_calls``) →
    database (100 connections, 200,000 reads/s: 0.5-ms queries)."""
    from simulation.document import Document, NodeData

    s = SCENARIOS["S5"]
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": s["rate"], "users": 10_000, "read_ratio": 1.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": s["mu"], "workers": 1, "replicas": s["n"],
                                                 "blocking_calls": True, "service": "exponential",
                                                 "queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S}))
    d.add_node(NodeData("db", "database", params={k: v for k, v in S5_DB.items() if k != "read_ratio"}
                        | {"queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S}))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=seed, **({"tick_ms": tick_ms} if tick_ms is not None else {}))
    return d


def build_s4(algorithm: str, seed: int = 1, tick_ms: float | None = None):
    """S4: S1's 10 servers at 90 % load behind ``algorithm`` (least_connections, least_response_time)."""
    s = SCENARIOS["S1"]
    return build_balanced(s["rate"], s["n"], s["mu"], "nodes", seed, tick_ms, algorithm)


def build_balanced(rate: float, n_servers: int, service_rps: float, layout: str = "nodes",
                   seed: int = 1, tick_ms: float | None = None, algorithm: str = "random"):
    """Client (Poisson ``rate``) → load balancer (random) → ``n_servers`` single-worker servers.

    ``layout``: "nodes" — one server node per server; "replicas" — one server node with
    ``replicas = n_servers``.
    """
    from simulation.document import Document, NodeData

    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000}))
    d.add_node(NodeData("lb", "load_balancer", params={
        "algorithm": algorithm, "capacity_rps": LB_CAPACITY, "queue_limit": BIG_QUEUE}))
    d.add_edge("users", "lb")
    server = {"capacity_rps": service_rps, "workers": 1, "service": "exponential",
              "queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S}
    if layout == "replicas":
        d.add_node(NodeData("web", "server", params={**server, "replicas": n_servers}))
        d.add_edge("lb", "web")
    elif layout == "nodes":
        for i in range(1, n_servers + 1):
            d.add_node(NodeData(f"web{i}", "server", params=dict(server)))
            d.add_edge("lb", f"web{i}")
    else:
        raise ValueError(f"unknown layout {layout!r}")
    settings = {"seed": seed}
    if tick_ms is not None:
        settings["tick_ms"] = tick_ms
    d.set_settings(**settings)
    return d


def build_s1(seed: int = 1, tick_ms: float | None = None):
    """S1: 900 req/s → LB (random) → 10 server nodes of 100 req/s, 1 worker each."""
    s = SCENARIOS["S1"]
    return build_balanced(s["rate"], s["n"], s["mu"], "nodes", seed, tick_ms)


def build_s2(layout: str = "replicas", seed: int = 1, tick_ms: float | None = None):
    """S2: 90,000 req/s → LB (random) → 1,000 servers of 100 req/s (``layout`` "replicas" or "nodes")."""
    s = SCENARIOS["S2"]
    return build_balanced(s["rate"], s["n"], s["mu"], layout, seed, tick_ms)


def build_s6(seed: int = 1, tick_ms: float | None = None):
    """S6: Poisson 1,200 req/s → least connections → web (4 × 2 sync workers, 1,000 req/s) → api
    (4 × 2 sync workers, 800 req/s) → database (100 connections, 0.5-ms queries)."""
    from simulation.document import Document, NodeData

    s = SCENARIOS["S6"]
    big = {"queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S, "blocking_calls": True, "service": "exponential"}
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": s["rate"], "users": 10_000, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "least_connections",
                                                       "capacity_rps": LB_CAPACITY}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": s["mu"], "workers": s["workers"],
                                                 "replicas": s["n"], **big}))
    d.add_node(NodeData("api", "server", params={"capacity_rps": s["api_mu"], "workers": s["workers"],
                                                 "replicas": s["n"], **big}))
    d.add_node(NodeData("db", "database", params={k: v for k, v in S5_DB.items() if k != "read_ratio"}
                        | {"queue_limit": BIG_QUEUE, "timeout_s": NO_TIMEOUT_S}))
    for a, b in (("users", "lb"), ("lb", "web"), ("web", "api"), ("api", "db")):
        d.add_edge(a, b)
    d.set_settings(seed=seed, **({"tick_ms": tick_ms} if tick_ms is not None else {}))
    return d


def build(scenario: str, layout: str, seed: int, tick_ms: float | None):
    if scenario == "S1":
        return build_s1(seed, tick_ms)
    if scenario == "S3":
        return build_s3(seed, tick_ms)
    if scenario == "S5":
        return build_s5(seed, tick_ms)
    if scenario == "S6":
        return build_s6(seed, tick_ms)
    if scenario.startswith("S4"):
        return build_s4(SCENARIOS[scenario]["algorithm"], seed, tick_ms)
    return build_s2(layout, seed, tick_ms)


# ----- statistics shared by both sides -------------------------------------------------------------
def steady_stats(counts, sums, warmup: int, n_batches: int = 30) -> dict:
    """Mean response time (s) of requests completed after ``warmup`` seconds and its standard
    error by batch means, from per-second completion counts and response-time sums.
    (Short runs: the warm-up is cut to a quarter of the run.)"""
    warmup = min(warmup, len(counts) // 4)
    counts = [float(c) for c in counts][warmup:]
    sums = [float(s) for s in sums][warmup:]
    n = sum(counts)
    if n == 0:
        return {"steady_mean_s": math.nan, "steady_se_s": math.nan, "batches": 0, "warmup_s": warmup}
    mean = sum(sums) / n
    k = min(n_batches, len(counts) // 2)  # batches of ≥ 2 s
    se = math.nan
    if k >= 2:
        size = len(counts) // k
        means = []
        for b in range(k):
            c = sum(counts[b * size:(b + 1) * size])
            if c:
                means.append(sum(sums[b * size:(b + 1) * size]) / c)
        if len(means) >= 2:
            mb = sum(means) / len(means)
            var = sum((x - mb) ** 2 for x in means) / (len(means) - 1)
            se = math.sqrt(var / len(means))
    return {"steady_mean_s": mean, "steady_se_s": se, "batches": k, "warmup_s": warmup}


def _rss_now_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return math.nan


def _maxrss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024.0


# ----- children -------------------------------------------------------------------------------------
def child_engine(a: argparse.Namespace) -> dict:
    import numpy as np  # noqa: F401  (imports before the baseline RSS)
    from simulation import compiled
    from simulation.engine import Simulation

    compiled.warm()   # numba's import and the compiled kernels' load, once per process, as the imports

    rss_base = _rss_now_mb()
    if a.tracemalloc:
        import tracemalloc
        tracemalloc.start()
    t0 = time.perf_counter()
    doc = build(a.scenario, a.layout, a.seed, a.tick_ms)
    sim = Simulation(doc, seed=a.seed, **_window_kw(a))
    setup = time.perf_counter() - t0
    out: dict = {"side": "engine", "scenario": a.scenario, "layout": a.layout, "duration_s": a.duration,
                 "setup_s": setup, "tick_s": sim.tick_s, "max_window_s": sim.max_window_s, "rss_base_mb": rss_base}
    horizon = a.horizon if 0 < a.horizon < a.duration else 0.0
    c1 = time.process_time()
    t1 = time.perf_counter()
    if horizon:
        sim.advance(horizon)
        th = time.perf_counter() - t1
        tot = sim.totals()
        out["head"] = {"duration_s": horizon, "wall_s": th, "rate": horizon / th,
                       "mean_s": tot["mean_ms"] / 1000.0, "served": tot["served"]}
        sim.advance(a.duration - horizon)
    else:
        sim.advance(a.duration)
    wall = time.perf_counter() - t1
    cpu = time.process_time() - c1
    if a.tracemalloc:
        import tracemalloc
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    tot = sim.totals()
    m = sim.metrics
    served = np.nan_to_num(np.asarray(m.served_rps, dtype=float))
    sums = np.nan_to_num(np.asarray(m.mean_ms, dtype=float)) / 1000.0 * served
    out.update(wall_s=wall, rate=a.duration / wall, cpu_s=cpu, rate_cpu=a.duration / cpu, arrived=tot["arrived"], served=tot["served"],
               failed=tot["failed"], in_flight=tot["in_flight"], mean_s=tot["mean_ms"] / 1000.0,
               p95_s=tot["p95_ms"] / 1000.0, maxrss_mb=_maxrss_mb(),
               **steady_stats(served.tolist(), sums.tolist(), int(SCENARIOS[a.scenario]["warmup"])))
    return out


def child_simpy(a: argparse.Namespace) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import simpy_models

    s = SCENARIOS[a.scenario]
    rss_base = _rss_now_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    if a.scenario == "S3":
        r = simpy_models.server_database(s["rate"], 2, 64, 5000.0, S3_DB["connections"], S3_DB["read_capacity_rps"],
                                         S3_DB["write_capacity_rps"], S3_DB["read_ratio"], a.duration, a.seed)
    elif a.scenario == "S5":
        r = simpy_models.server_database(s["rate"], s["n"], 1, s["mu"], S5_DB["connections"],
                                         S5_DB["read_capacity_rps"], S5_DB["write_capacity_rps"],
                                         S5_DB["read_ratio"], a.duration, a.seed, blocking=True)
    elif a.scenario == "S6":
        r = simpy_models.sync_chain(s["rate"], s["n"], s["workers"], s["mu"], s["n"], s["workers"], s["api_mu"],
                                    S5_DB["connections"], S5_DB["read_capacity_rps"], a.duration, a.seed)
    elif a.scenario.startswith("S4"):
        r = simpy_models.least_balanced(s["rate"], s["n"], s["mu"], a.duration, a.seed, s["algorithm"])
    else:
        r = simpy_models.random_split_mm1(s["rate"], s["n"], s["mu"], a.duration, a.seed)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    maxrss = _maxrss_mb()
    lats = sorted(r.latencies)
    p95 = lats[min(len(lats) - 1, int(math.ceil(0.95 * len(lats))) - 1)] if lats else math.nan
    return {"side": "simpy", "scenario": a.scenario, "duration_s": a.duration, "wall_s": wall,
            "rate": a.duration / wall, "cpu_s": cpu, "rate_cpu": a.duration / cpu, "arrived": r.arrived, "served": r.served, "failed": 0,
            "in_flight": r.arrived - r.served, "mean_s": r.mean_s, "p95_s": p95, "rss_base_mb": rss_base,
            "maxrss_mb": maxrss,
            **steady_stats(r.per_second_n, r.per_second_sum, int(s["warmup"]))}


def child_accuracy(a: argparse.Namespace) -> dict:
    """The engine's mean response time over several seeds (no timing)."""
    import numpy as np
    from simulation.engine import Simulation

    warm = int(SCENARIOS[a.scenario]["warmup"])
    means, steadies = [], []
    for seed in range(a.seed, a.seed + a.seeds):
        sim = Simulation(build(a.scenario, a.layout, seed, a.tick_ms), seed=seed, **_window_kw(a))
        sim.advance(a.duration)
        m = sim.metrics
        served = np.nan_to_num(np.asarray(m.served_rps, dtype=float))
        sums = np.nan_to_num(np.asarray(m.mean_ms, dtype=float)) / 1000.0 * served
        means.append(sim.totals()["mean_ms"] / 1000.0)
        steadies.append(steady_stats(served.tolist(), sums.tolist(), warm)["steady_mean_s"])
    return {"side": "accuracy", "seeds": list(range(a.seed, a.seed + a.seeds)), "means_s": means,
            "steady_means_s": steadies}


def _mean_se(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, math.nan
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def child_profile(a: argparse.Namespace) -> None:
    import cProfile
    import io
    import pstats

    from simulation.engine import Simulation

    sim = Simulation(build(a.scenario, a.layout, a.seed, a.tick_ms), seed=a.seed, **_window_kw(a))
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    sim.advance(a.duration)
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    print(f"# engine {a.scenario} ({a.layout}) {a.duration:g} s simulated, tick {sim.tick_s * 1000:g} ms, "
          f"{wall:.2f} s under cProfile ({a.duration / wall:.1f} sim s/wall s with profiling overhead), "
          f"mean {sim.totals()['mean_ms']:.2f} ms")
    text = buf.getvalue()
    print(text[text.find("   ncalls"):] if "   ncalls" in text else text)


# ----- parent ---------------------------------------------------------------------------------------
def run_child(*args: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"child failed: {' '.join(cmd)}\n{p.stderr}")
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result from {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")


def interleaved(k: int, jobs: list[list[str]]) -> list[dict]:
    """Run every job k times, round-robin (A B C A B C ...) so that they share the machine's
    load alike; for each job keep the run with the median wall-clock rate (all rates in 'rates')."""
    runs: list[list[dict]] = [[] for _ in jobs]
    for _ in range(k):
        for j, args in enumerate(jobs):
            runs[j].append(run_child(*args))
    out = []
    for rs in runs:
        rs.sort(key=lambda r: r["rate"])
        best = dict(rs[len(rs) // 2])
        best["rates"] = [r["rate"] for r in rs]
        out.append(best)
    return out


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def git_state() -> str:
    """The commit the engine was measured at, and whether simulation/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cd", "--date=iso"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "simulation"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git state unknown"
    return f"commit {head}" + (" + uncommitted changes in simulation/" if dirty else ", simulation/ clean")


def fmt_rate(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def pct(x: float, ref: float) -> str:
    return f"{(x / ref - 1) * 100:+.2f}%"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def times(ratio: float) -> str:
    """A speed ratio: one decimal, or two significant digits below 1 (0.012×, not 0.0×)."""
    return f"{ratio:,.1f}×" if ratio >= 1 or not ratio > 0 else f"{ratio:.2g}×"


def bench_scenario(name: str, a: argparse.Namespace) -> dict:
    s = SCENARIOS[name]
    dur = s["quick"] if a.quick else s["duration"]
    sdur = a.simpy_seconds if a.simpy_seconds else (s["simpy_quick"] if a.quick else s["simpy"])
    sdur = min(sdur, dur)
    w_th, p95_th = theory(s["rate"], s["n"], s["mu"])
    if name not in ("S1", "S2"):
        w_th, how = theory_mean(name)
    common = ["--seed", str(a.seed), "--max-window-s", str(a.max_window_s)] + \
        (["--tick-ms", str(a.tick_ms)] if a.tick_ms else [])
    layouts = ["replicas", "nodes"] if name == "S2" else ["nodes"]
    if name not in ("S1", "S2"):
        what = ("Poisson 2,000 req/s → server (2 × 64 workers, 5,000 req/s each) → database (20 connections, "
                "3,000 reads/s, 1,000 writes/s, 90 % reads)" if name == "S3" else
                "Poisson 900 req/s → server (4 × 1 blocking worker, 300 req/s) → database (100 connections, "
                "0.5-ms queries): the worker is held during the query" if name == "S5" else
                "Poisson 1,200 req/s → LB (least_connections) → web (4 × 2 sync workers, 1,000 req/s) → api "
                "(4 × 2 sync workers, 800 req/s) → database (0.5-ms queries): both tiers hold their workers"
                if name == "S6" else
                f"Poisson 900 req/s → LB ({s['algorithm']}) → 10 × M/M/1 (μ = 100/s), 90 % load")
        print(f"\n== {name}: {what}; engine {dur:g} s simulated, SimPy {sdur:g} s; seed {a.seed}")
        print(f"   theory: mean {w_th * 1000:.2f} ms ({how})   [load average now {loadavg()}]")
    else:
        print(f"\n== {name}: Poisson {s['rate']:,.0f} req/s → LB (random) → {s['n']:,} × M/M/1 "
          f"(μ = {s['mu']:g}/s, λ = {s['rate'] / s['n']:g}/s each); engine {dur:g} s simulated, "
          f"SimPy {sdur:g} s; seed {a.seed}")
        print(f"   theory per server: mean W = {w_th * 1000:.2f} ms, p95 = {p95_th * 1000:.2f} ms   "
              f"[load average now {loadavg()}]")
    jobs = [["engine", name, "--layout", layout, "--duration", str(dur), "--horizon",
             str(sdur if sdur < dur else 0)] + common for layout in layouts]
    if not a.no_simpy:
        jobs.append(["simpy", name, "--duration", str(sdur), "--seed", str(a.seed)])
    rows = interleaved(a.repeat, jobs)
    for r, layout in zip(rows, layouts):
        r["label"] = f"engine ({layout})" if name == "S2" else "engine"
    simpy_row = None
    if not a.no_simpy:
        simpy_row = rows[-1]
        simpy_row["label"] = "SimPy 4.1"
    if not a.no_tracemalloc:  # memory, in separate children: tracemalloc slows Python code
        for r, args in zip(rows[:len(layouts)], jobs):
            r["tracemalloc_peak_mb"] = run_child(*args, "--tracemalloc")["tracemalloc_peak_mb"]

    hdr = (f"   {'':<18}{'sim s':>7}{'wall s':>9}{'sim s/wall s':>14}{'sim s/CPU s':>13}{'setup s':>9}{'mean ms':>10}"
           f"{'vs W':>9}{'steady ms':>11}{'±SE':>7}{'p95 ms':>9}{'served':>11}{'lost':>6}{'maxrss MB':>11}"
           f"{'tracemalloc MB':>16}")
    print(hdr)
    for r in rows:
        tm = r.get("tracemalloc_peak_mb")
        setup = r.get("setup_s")
        print(f"   {r['label']:<18}{r['duration_s']:>7g}{r['wall_s']:>9.2f}{fmt_rate(r['rate']):>14}"
              f"{fmt_rate(r['rate_cpu']):>13}"
              f"{(f'{setup:.2f}' if setup is not None else '-'):>9}{r['mean_s'] * 1000:>10.2f}"
              f"{pct(r['mean_s'], w_th):>9}{r['steady_mean_s'] * 1000:>11.2f}"
              f"{(r['steady_se_s'] / w_th * 100):>6.1f}%{r['p95_s'] * 1000:>9.1f}{r['served']:>11,}"
              f"{r['failed']:>6}{r['maxrss_mb']:>11.0f}{(f'{tm:.0f}' if tm is not None else '-'):>16}")
        if a.repeat > 1:
            print(f"   {'':<18}wall-clock rates of the {a.repeat} runs: " + ", ".join(fmt_rate(x) for x in r["rates"]))
    for r in rows:
        if "head" in r:
            h = r["head"]
            print(f"   {r['label']}, first {h['duration_s']:g} s only: {fmt_rate(h['rate'])} sim s/wall s, "
                  f"mean {h['mean_s'] * 1000:.2f} ms (same horizon as SimPy: warm-up from empty lowers both)")
    print(f"   engine tick: {rows[0]['tick_s'] * 1000:g} ms, max window {rows[0]['max_window_s']:g} s; RSS after imports: engine "
          f"{rows[0]['rss_base_mb']:.0f} MB" + (f", SimPy {simpy_row['rss_base_mb']:.0f} MB" if simpy_row else ""))

    result = {"scenario": name, "duration_s": dur, "simpy_duration_s": sdur, "seed": a.seed, "rows": rows,
              "checks": []}
    for r in rows[:len(layouts)]:
        lab = r["label"]
        if simpy_row:
            ratio = r["rate"] / simpy_row["rate"]
            ratio_cpu = r["rate_cpu"] / simpy_row["rate_cpu"]
            line = (f"   {lab}: {times(ratio)} SimPy's rate (target ≥ {s['speed_target']:g}×)  "
                    f"{verdict(ratio >= s['speed_target'])}   [by CPU time: {times(ratio_cpu)}")
            if "head" in r:
                line += f"; wall, same horizon as SimPy: {r['head']['rate'] / simpy_row['rate']:,.1f}×"
            print(line + "]")
            result["checks"].append({"what": f"{lab} speed ratio", "value": ratio, "value_cpu": ratio_cpu,
                                     "target": s["speed_target"], "ok": ratio >= s["speed_target"]})
        if s["simpy_ref"] is None:
            print(f"   {lab}: mean {r['mean_s'] * 1000:.2f} ms, {pct(r['mean_s'], w_th)} from theory"
                  + (f"; SimPy {simpy_row['mean_s'] * 1000:.2f} ms ({pct(simpy_row['mean_s'], w_th)})"
                     if simpy_row else "") + "  [information only]")
            continue
        ref, src = s["simpy_ref"]
        print(f"   {lab}: {r['rate'] / ref:,.1f}× the SimPy rate given in {src} ({ref:g} sim s/wall s; "
              f"the target would be {ref * s['speed_target']:,.0f} sim s/wall s)  [information only]")
        if name == "S1":
            err = abs(r["mean_s"] / w_th - 1)
            se = r["steady_se_s"] / w_th
            print(f"   {lab}: mean {r['mean_s'] * 1000:.2f} ms, {pct(r['mean_s'], w_th)} from theory "
                  f"(target within {MEAN_TOLERANCE:.0%}; the statistical error of one {dur:g}-s run is "
                  f"±{se:.1%} (batch means))  {verdict(err <= MEAN_TOLERANCE)}")
            result["checks"].append({"what": f"{lab} mean error", "value": err, "target": MEAN_TOLERANCE,
                                     "ok": err <= MEAN_TOLERANCE})
        if name == "S2":
            peak = max(r["maxrss_mb"], r.get("tracemalloc_peak_mb") or 0.0)
            print(f"   {lab}: peak memory {r['maxrss_mb']:.0f} MB maxrss (whole process; "
                  f"{r['maxrss_mb'] - r['rss_base_mb']:.0f} MB above the imports), tracemalloc peak "
                  f"{r.get('tracemalloc_peak_mb', math.nan):.0f} MB (target < {MEMORY_LIMIT_MB:g} MB)  "
                  f"{verdict(peak < MEMORY_LIMIT_MB)}")
            result["checks"].append({"what": f"{lab} peak memory MB", "value": peak, "target": MEMORY_LIMIT_MB,
                                     "ok": peak < MEMORY_LIMIT_MB})
            print(f"   {lab}: steady mean (t > {r['warmup_s']:g} s) {r['steady_mean_s'] * 1000:.2f} ms, "
                  f"{pct(r['steady_mean_s'], w_th)} from theory (±{r['steady_se_s'] / w_th:.1%})")
    if a.accuracy > 0:
        acc = run_child("accuracy", name, "--layout", layouts[0], "--duration", str(dur), "--seeds", str(a.accuracy),
                        *common)
        m, se = _mean_se(acc["means_s"])
        ms, ses = _mean_se(acc["steady_means_s"])
        print(f"   engine over {a.accuracy} seeds ({acc['seeds'][0]}..{acc['seeds'][-1]}): mean {m * 1000:.2f} ms "
              f"({pct(m, w_th)} ± {se / w_th:.2%}); steady (after warm-up) {ms * 1000:.2f} ms "
              f"({pct(ms, w_th)} ± {ses / w_th:.2%}); per seed: "
              + ", ".join(f"{x * 1000:.1f}" for x in acc["means_s"]))
        result["accuracy"] = acc
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("which", nargs="?", default="all", choices=["S1", "S2", "S3", "S4", "S5", "S6", "all"])
    ap.add_argument("--quick", action="store_true", help="short durations, for a smoke check")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="timing runs per measurement (the median is shown)")
    ap.add_argument("--simpy-seconds", type=float, default=0.0, help="simulated seconds for SimPy")
    ap.add_argument("--tick-ms", type=float, default=None, help="engine tick (default: the document default)")
    ap.add_argument("--max-window-s", type=float, default=0.0, help="Simulation(max_window_s=...); 0: the engine's default")
    ap.add_argument("--accuracy", type=int, default=0, metavar="K",
                    help="also run the engine (untimed) with K seeds from --seed on, and average its mean response time")
    ap.add_argument("--no-simpy", action="store_true")
    ap.add_argument("--no-tracemalloc", action="store_true")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the engine (top 15 by tottime)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    names = {"all": ["S1", "S2", "S3", "S4lc", "S4lrt", "S5", "S6"], "S4": ["S4lc", "S4lrt"]}.get(a.which, [a.which])

    if a.profile:
        for name in names:
            s = SCENARIOS[name]
            dur = s["quick"] if a.quick else s["duration"]
            for layout in (["replicas", "nodes"] if name == "S2" else ["nodes"]):
                cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "profile", name, "--layout", layout,
                       "--duration", str(dur), "--seed", str(a.seed), "--max-window-s", str(a.max_window_s)] + (["--tick-ms", str(a.tick_ms)] if a.tick_ms else [])
                subprocess.run(cmd, check=True)
        return 0

    import numpy
    try:
        import simpy
        simpy_version = simpy.__version__
    except ImportError:
        if not a.no_simpy:
            print("simpy is not installed: pip install -e .[bench]  (or pass --no-simpy)", file=sys.stderr)
            return 2
        simpy_version = "-"
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"ScaleLab engine vs SimPy — {started} on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, numpy {numpy.__version__}, "
          f"simpy {simpy_version})")
    print(f"engine: {git_state()}")
    print(f"load average at start: {loadavg()}" + ("   [--quick: short runs, a smoke check only]" if a.quick else ""))
    results = [bench_scenario(n, a) for n in names]
    print(f"\nload average at end: {loadavg()}")
    checks = [c for r in results for c in r["checks"]]
    print(f"{sum(c['ok'] for c in checks)}/{len(checks)} targets met"
          + ("" if not a.quick else " (quick run: durations too short for the targets to mean much)"))
    if a.json:
        a.json.write_text(json.dumps({"started": started, "load_start_end": loadavg(), "quick": a.quick,
                                      "results": results}, indent=1))
    return 0


def child_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=["engine", "simpy", "profile", "accuracy"])
    ap.add_argument("scenario", choices=list(SCENARIOS))
    ap.add_argument("--layout", default="nodes", choices=["nodes", "replicas"])
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--horizon", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tick-ms", type=float, default=None)
    ap.add_argument("--max-window-s", type=float, default=0.0)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--seeds", type=int, default=1)
    a = ap.parse_args(argv)
    if a.side == "profile":
        child_profile(a)
        return 0
    out = {"engine": child_engine, "simpy": child_simpy, "accuracy": child_accuracy}[a.side](a)
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
