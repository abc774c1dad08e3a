"""The shapes with sync workers that ran slower than SimPy, before and after the event window
took them (issue 11; benchmarks/README.md).

    .venv/bin/python benchmarks/blocking_shapes.py [--duration 60] [--old 10] [--simpy 20] [--only NAME ...]

Each shape runs in a fresh interpreter: the engine as it is (``--duration`` simulated
seconds), the engine on its older path (``--old`` seconds: ``SCALELAB_BLOCKING_EVENTS=0``,
the sweeps and tick-by-tick balancing; for several primaries, one-tick windows), and,
where a SimPy model of the same queueing network exists (simpy_models.tiers), SimPy
(``--simpy`` seconds). Prints simulated seconds per CPU second of each and the ratios,
with the mean response of each (the engine's two paths agree where they should; SimPy's
is the same network's, within its run's error).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's engine
sys.path.insert(0, str(ROOT / "benchmarks"))

WEB = {"capacity_rps": 200.0, "workers": 8, "replicas": 2, "blocking_calls": True}


def shape(name: str):
    """(the engine's document, its SimPy layers or None, the rate) of shape ``name``."""
    from simulation.document import Document, NodeData
    d = Document()
    front = "least_connections" if name in ("sessions_local_lc", "async_beside_lc", "groups_lc") else "round_robin"
    rate = {"multi_primary_2000": 2000.0, "three_tiers": 150.0, "tiers_sessions": 150.0,
            "tiers_async_beside": 150.0}.get(name, 200.0)   # below saturation
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 1000, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": front, "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={**WEB, **({"sessions": "local"} if name == "sessions_local_lc"
                                                            else {})}))
    d.add_node(NodeData("db", "database", params={"connections": 20, "read_capacity_rps": 3000.0}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    layers = None
    if name in ("lb_downstream", "lb_downstream_lc"):   # web (sync) → balancer → API → database
        algo = "round_robin" if name == "lb_downstream" else "least_connections"
        d.add_node(NodeData("lb2", "load_balancer", params={"algorithm": algo, "capacity_rps": 1e6}))
        d.add_node(NodeData("api", "server", params={"capacity_rps": 150.0, "workers": 2, "replicas": 3}))
        for a, b in (("web", "lb2"), ("lb2", "api"), ("api", "db")):
            d.add_edge(a, b)
        if algo == "round_robin":
            layers = [{"n": 2, "workers": 8, "rps": 200.0, "blocking": True, "pick": "rr"},
                      {"n": 3, "workers": 2, "rps": 150.0, "blocking": False, "pick": "rr"}]
    elif name == "three_tiers":   # web → API → service → database, all sync
        d.add_node(NodeData("api", "server", params={"capacity_rps": 300.0, "workers": 8, "replicas": 3,
                                                     "blocking_calls": True}))
        d.add_node(NodeData("svc", "server", params={"capacity_rps": 600.0, "workers": 8, "replicas": 2,
                                                     "blocking_calls": True}))
        for a, b in (("web", "api"), ("api", "svc"), ("svc", "db")):
            d.add_edge(a, b)
        layers = [{"n": 2, "workers": 8, "rps": 200.0, "blocking": True, "pick": "rr"},
                  {"n": 3, "workers": 8, "rps": 300.0, "blocking": True, "pick": "random"},
                  {"n": 2, "workers": 8, "rps": 600.0, "blocking": True, "pick": "random"}]
    elif name == "async_beside_lc":   # a non-blocking server beside the sync ones, behind least connections
        d.add_edge("web", "db")
        d.add_node(NodeData("web2", "server", params={"capacity_rps": 200.0, "workers": 8}))
        d.add_edge("lb", "web2")
        d.add_edge("web2", "db")
    elif name == "sticky_downstream":   # web (sync) → sticky round-robin balancer → API → database
        d.add_node(NodeData("lb2", "load_balancer", params={"algorithm": "round_robin", "affinity": "sticky",
                                                            "capacity_rps": 1e6}))
        d.add_node(NodeData("api", "server", params={"capacity_rps": 150.0, "workers": 2, "replicas": 3}))
        for a, b in (("web", "lb2"), ("lb2", "api"), ("api", "db")):
            d.add_edge(a, b)
        layers = [{"n": 2, "workers": 8, "rps": 200.0, "blocking": True, "pick": "rr"},
                  {"n": 3, "workers": 2, "rps": 150.0, "blocking": False, "pick": "sticky"}]
    elif name == "sticky_front":   # a sticky round-robin balancer in front of sync web servers
        d.set_params("lb", {"affinity": "sticky"})
        d.add_edge("web", "db")
        layers = [{"n": 2, "workers": 8, "rps": 200.0, "blocking": True, "pick": "sticky"}]
    elif name in ("tiers_sessions", "tiers_async_beside"):   # two sync tiers, and sessions or an async server
        d.add_node(NodeData("api", "server", params={"capacity_rps": 300.0, "workers": 8, "replicas": 3,
                                                     "blocking_calls": True}))
        d.add_edge("web", "api")
        d.add_edge("api", "db")
        if name == "tiers_sessions":   # SimPy: the same network (a lost session costs no time: a flag)
            d.set_params("web", {"sessions": "local"})
            layers = [{"n": 2, "workers": 8, "rps": 200.0, "blocking": True, "pick": "rr"},
                      {"n": 3, "workers": 8, "rps": 300.0, "blocking": True, "pick": "random"}]
        else:
            d.add_node(NodeData("web2", "server", params={"capacity_rps": 200.0, "workers": 8}))
            d.add_edge("lb", "web2")
            d.add_edge("web2", "db")
    elif name == "groups_lc":   # least connections → sync web (→ async API → db) and async web2 (→ db)
        d.add_node(NodeData("api", "server", params={"capacity_rps": 300.0, "workers": 8, "replicas": 2}))
        d.add_node(NodeData("web2", "server", params={"capacity_rps": 200.0, "workers": 8}))
        for a, b in (("web", "api"), ("api", "db"), ("lb", "web2"), ("web2", "db")):
            d.add_edge(a, b)
    elif name.startswith("multi_primary"):
        d.add_edge("web", "db")
        d.set_params("db", {"primaries": 2, "connections": 40, "read_capacity_rps": 6000.0,
                            "write_capacity_rps": 3000.0})
        d.set_params("users", {"read_ratio": 0.9})
        if name == "multi_primary_2000":
            d.set_params("web", {"blocking_calls": False, "replicas": 4, "capacity_rps": 1000.0})
    else:
        d.add_edge("web", "db")
    return d, layers, rate


SHAPES = ["lb_downstream", "lb_downstream_lc", "three_tiers", "sessions_local_lc", "async_beside_lc",
          "multi_primary_sync", "multi_primary_2000", "sticky_downstream", "sticky_front", "tiers_sessions",
          "tiers_async_beside", "groups_lc"]


def child(name: str, duration: float, which: str) -> dict:
    if which == "simpy":
        import simpy_models
        _, layers, rate = shape(name)
        c0 = time.process_time()
        r = simpy_models.tiers(rate, layers, 20, 3000.0, duration, seed=1)
        return {"cpu_s": time.process_time() - c0, "mean_ms": r.mean_s * 1000, "served": r.served}
    from simulation.compiled import load_all
    from simulation.engine import Simulation
    load_all()   # the compiled kernels, before the clock starts
    doc, _, _ = shape(name)
    doc.set_settings(seed=1, duration_s=duration)
    sim = Simulation(doc)
    if which == "old" and any(d.primaries > 1 for d in sim.net.databases):
        sim._mp_cap = sim.tick_s   # several primaries: one-tick windows, as before
    c0 = time.process_time()
    sim.advance(duration)
    t = sim.totals()
    return {"cpu_s": time.process_time() - c0, "mean_ms": t["mean_ms"], "served": t["served"]}


def run(name: str, duration: float, which: str) -> dict:
    env = dict(os.environ, SCALELAB_BLOCKING_EVENTS="0" if which == "old" else "1")
    out = subprocess.run([sys.executable, __file__, "--child", name, str(duration), which], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--old", type=float, default=10.0)
    ap.add_argument("--simpy", type=float, default=20.0)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--child", nargs=3)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], float(a.child[1]), a.child[2])))
        return
    print(f"{'shape':22} {'now sim s/CPU s':>16} {'before':>10} {'SimPy':>10} {'now/before':>11} {'now/SimPy':>10}"
          f"  mean ms now / before / SimPy")
    for name in a.only or SHAPES:
        new, old = run(name, a.duration, "new"), run(name, a.old, "old")
        rate_new, rate_old = a.duration / new["cpu_s"], a.old / old["cpu_s"]
        sp = run(name, a.simpy, "simpy") if shape(name)[1] is not None else None
        rate_sp = a.simpy / sp["cpu_s"] if sp else float("nan")
        print(f"{name:22} {rate_new:16.1f} {rate_old:10.2f} {rate_sp:10.1f} {rate_new / rate_old:10.0f}× "
              f"{rate_new / rate_sp:9.1f}×  {new['mean_ms']:.2f} / {old['mean_ms']:.2f} / "
              f"{sp['mean_ms'] if sp else float('nan'):.2f}", flush=True)


if __name__ == "__main__":
    main()
