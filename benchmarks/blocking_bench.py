"""A saturated tier of blocking servers vs the same topology without ``blocking_calls``.

    .venv/bin/python benchmarks/blocking_bench.py [--rate 200] [--duration 60]

Users → round-robin balancer → web (2 replicas × 8 workers, 400 req/s, queue 100, timeout 2 s)
→ database (2 connections, 100 reads/s): the database is the bottleneck, so with
``blocking_calls`` every web worker is held waiting for it (``simulation/blocking.py``).
Each run is a fresh interpreter; prints wall and CPU seconds of ``Simulation.advance``,
the slowdown of blocking vs non-blocking and the totals (served, failed, mean).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's engine


def doc(rate: float, duration: float, blocking: bool):
    from simulation.document import Document, NodeData
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 400, "workers": 8, "replicas": 2,
                                                 "blocking_calls": blocking, "queue_limit": 100, "timeout_s": 2}))
    d.add_node(NodeData("db", "database", params={"connections": 2, "read_capacity_rps": 100,
                                                  "queue_limit": 50, "timeout_s": 30}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=3, duration_s=duration)
    return d


def child(rate: float, duration: float, blocking: bool) -> dict:
    from simulation.engine import Simulation
    sim = Simulation(doc(rate, duration, blocking))
    c0, t0 = time.process_time(), time.perf_counter()
    sim.advance(duration)
    t = sim.totals()
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "served": t["served"],
            "failed": t["failed"], "mean_ms": t["mean_ms"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--child", choices=["on", "off"])
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.rate, a.duration, a.child == "on")))
        return 0
    rows = {}
    for mode in ("off", "on"):
        p = subprocess.run([sys.executable, __file__, "--child", mode, "--rate", str(a.rate),
                            "--duration", str(a.duration)], capture_output=True, text=True, check=True)
        rows[mode] = json.loads(p.stdout.strip().splitlines()[-1])
        r = rows[mode]
        print(f"blocking_calls {mode:<3}  {a.duration:g} s at {a.rate:g} req/s: wall {r['wall_s']:.2f} s, "
              f"CPU {r['cpu_s']:.2f} s; served {r['served']:,}, failed {r['failed']:,}, mean {r['mean_ms']:.1f} ms")
    print(f"blocking / non-blocking CPU: {rows['on']['cpu_s'] / rows['off']['cpu_s']:.1f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
