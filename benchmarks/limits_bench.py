"""The engine at the limits of the file format: the abuse files of the reliability issue.

    .venv/bin/python benchmarks/limits_bench.py [NAME ...] [--seconds S]

Each case runs in a fresh interpreter (``--child``) and prints its wall time, its peak RSS
(``ru_maxrss``) and what happened: refused with the engine's one-line message, or ran (how far,
how many metric rows it keeps). Without names, every case runs.

    wrr5000       a load balancer (weighted round robin) over 5,000 replicas: used to hang
    huge_stations 40 servers × 10,000 replicas × 1,024 workers (a 4.7 KB file): refused
    spike         a client at 1e7 req/s with a spike × 1,000 (1e10 req/s): refused
    idle_long     2,001 idle nodes, 1e7 s: runs for ``--seconds`` of wall time, RSS stays flat
    compile10k    5,000, 10,000 and 19,997 servers behind one balancer → a database: load + compile time
    nodes20k      20,000 nodes (the format's maximum): compile + setup, no N × N matrix
    lb_chain      a balancer → 10,000 servers → one database, 60 s at 1,000 req/s (runs)
    inflight      1,000,000 req/s into 5 servers of 1,000 req/s, no timeout: stopped past 4,000,000 in flight
    near_budget   just inside every budget at once: 5 s at 76,000 req/s (peak RSS vs. the estimate)

The builders return plain file dicts (the ``.scalelab`` format), so the tests can use them too.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _file(nodes: list[dict], edges: list[tuple[str, str]], **settings) -> dict:
    return {"format": "scalelab", "version": 1, "meta": {"title": "limits"},
            "simulation": {"seed": 1, **settings},
            "nodes": nodes, "edges": [{"source": s, "target": t} for s, t in edges]}


def client(node_id: str = "users", **params) -> dict:
    return {"id": node_id, "kind": "client", "params": {"rate_rps": 100.0, "users": 1000, **params}}


def server(node_id: str, **params) -> dict:
    return {"id": node_id, "kind": "server", "params": params}


def balanced_replicas(n: int, algorithm: str, rate: float = 1000.0, duration_s: float = 5.0) -> dict:
    """Client → load balancer → one server node with ``n`` replicas."""
    return _file([client(rate_rps=rate, users=100_000),
                  {"id": "lb", "kind": "load_balancer", "params": {"algorithm": algorithm,
                                                                   "capacity_rps": 10_000_000}},
                  server("web", replicas=n, workers=1, capacity_rps=100.0)],
                 [("users", "lb"), ("lb", "web")], duration_s=duration_s)


def huge_stations(servers: int = 40, replicas: int = 10_000, workers: int = 1024) -> dict:
    nodes = [client()] + [server(f"s{i}", replicas=replicas, workers=workers) for i in range(servers)]
    return _file(nodes, [("users", f"s{i}") for i in range(servers)])


def spike(rate: float = 10_000_000.0, factor: float = 1000.0) -> dict:
    return _file([client(rate_rps=rate, pattern={"type": "spike", "at_s": 1.0, "duration_s": 5.0, "factor": factor}),
                  server("web")], [("users", "web")])


def idle_long(n: int = 2000, duration_s: float = 1e7) -> dict:
    """A client sending nothing and ``n`` servers: ``n + 1`` nodes, a long run."""
    nodes = [client(rate_rps=0.0)] + [server(f"s{i}") for i in range(n)]
    return _file(nodes, [("users", f"s{i}") for i in range(n)], duration_s=duration_s)


def many_servers(n: int) -> dict:
    """Client → load balancer → ``n`` server nodes → one database."""
    nodes = [client(), {"id": "lb", "kind": "load_balancer", "params": {}},
             {"id": "db", "kind": "database", "params": {}}] + [server(f"s{i}") for i in range(n)]
    edges = [("users", "lb")] + [("lb", f"s{i}") for i in range(n)] + [(f"s{i}", "db") for i in range(n)]
    return _file(nodes, edges)


def overloaded(rate: float = 1_000_000.0, servers: int = 5) -> dict:
    """A client at the peak budget into ``servers`` single-worker servers of 1,000 req/s with deep waiting
    rooms (10⁶ each) and no timeout: requests pile up by ~1,000,000 a second."""
    return _file([client(rate_rps=rate, users=100_000)] +
                 [server(f"web{i}", capacity_rps=1000.0, workers=1, queue_limit=1_000_000, timeout_s=3600)
                  for i in range(servers)], [("users", f"web{i}") for i in range(servers)], duration_s=60.0)


def near_budget() -> dict:
    """Just inside every budget at once (~0.95 GB estimated): sticky balancers, caches, a replicated
    database, 17,100,000 users, 19,000,000 items, 27,000 backend replicas of 250 workers."""
    nodes = [{"id": "db", "kind": "database", "params": {"read_replicas": 1}}]
    edges = []
    for i in range(3):
        nodes += [{"id": f"lb{i}", "kind": "load_balancer", "params": {"affinity": "sticky"}},
                  server(f"web{i}", replicas=9000, workers=250, queue_limit=800),
                  {"id": f"cache{i}", "kind": "cache", "params": {}}]
        edges += [(f"lb{i}", f"web{i}"), (f"web{i}", f"cache{i}"), (f"cache{i}", "db")]
    for i in range(38):
        nodes.append(client(f"c{i}", users=450_000, items=500_000, rate_rps=2000.0))
        edges.append((f"c{i}", f"lb{i % 3}"))
    return _file(nodes, edges, duration_s=5.0)


# ----- cases ----------------------------------------------------------------------------------------
def _simulate(data: dict, seconds: float | None = None, wall_limit: float | None = None) -> str:
    from simulation.engine import Simulation, SimulationError
    from simulation.fileformat import document_from_dict

    doc = document_from_dict(data)
    try:
        sim = Simulation(doc)
    except SimulationError as e:
        return f"refused: {e}"
    end = float(doc.settings["duration_s"] if seconds is None else seconds)
    started = time.monotonic()
    try:
        while sim.now < end - 1e-9:
            sim.advance(min(100.0, end - sim.now))
            if wall_limit is not None and time.monotonic() - started > wall_limit:
                break
    except SimulationError as e:
        return f"stopped at {sim.now:g} s: {e}"
    return (f"ran {sim.now:,.0f} simulated s: arrived {sim.arrived:,}, served {sim.served:,}; "
            f"{sim.metrics.n:,} metric rows of {sim.metrics.width} s" if sim.metrics.n else "ran")


def _compile_time(n: int) -> float:
    from simulation.compiler import compile_document
    from simulation.fileformat import loads

    text = json.dumps(many_servers(n))
    t = time.perf_counter()
    compile_document(loads(text))
    return time.perf_counter() - t


def case(name: str, seconds: float) -> str:
    if name == "wrr5000":
        return _simulate(balanced_replicas(5000, "weighted_round_robin"))
    if name == "huge_stations":
        return _simulate(huge_stations())
    if name == "spike":
        return _simulate(spike())
    if name == "idle_long":
        return _simulate(idle_long(), wall_limit=seconds)
    if name == "compile10k":
        a, b, c = _compile_time(5_000), _compile_time(10_000), _compile_time(19_997)
        return (f"load + compile: 5,000 servers {a:.2f} s, 10,000 {b:.2f} s, 19,997 {c:.2f} s "
                f"(4× the servers: {c / a:.1f}× the time)")
    if name == "nodes20k":
        return _simulate(many_servers(19_997), seconds=2.0)
    if name == "inflight":
        return _simulate(overloaded())
    if name == "near_budget":
        from simulation.fileformat import document_from_dict
        from simulation.compiler import compile_document
        est = compile_document(document_from_dict(near_budget())).estimate
        return f"estimated {est.memory_bytes / 2**30:.2f} GB; " + _simulate(near_budget())
    if name == "lb_chain":
        data = many_servers(10_000)
        data["nodes"][0]["params"]["rate_rps"] = 1000.0
        return _simulate(data, seconds=60.0)
    raise SystemExit(f"unknown case {name!r}")


CASES = ("wrr5000", "huge_stations", "spike", "idle_long", "compile10k", "nodes20k", "lb_chain", "inflight",
         "near_budget")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(CASES))
    ap.add_argument("--seconds", type=float, default=60.0, help="wall-time limit of idle_long (default 60)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        t = time.monotonic()
        what = case(args.names[0], args.seconds)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"wall_s": time.monotonic() - t, "rss_mb": rss, "what": what}))
        return 0
    for name in args.names:
        out = subprocess.run([sys.executable, __file__, name, "--child", "--seconds", str(args.seconds)],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{name:14} FAILED: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:14} {r['wall_s']:7.1f} s  peak RSS {r['rss_mb']:7.0f} MB  {r['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
