"""Fingerprints of engine results, to show an optimisation changed nothing.

    .venv/bin/python benchmarks/fingerprint.py [--out FILE] [--only NAME ...]

Runs every built-in lesson (60 s each, or its own duration if shorter), the benchmark
scenarios S1–S4 (shortened) and a saturated blocking tier, and prints per case the
totals and a SHA-256 of every per-second series (CSV export) — bit for bit. Diff two
outputs (before / after a change): any difference is a changed result.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def blocking_doc(rate: float = 200.0, duration: float = 60.0):
    from simulation.document import Document, NodeData
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 10_000, "read_ratio": 1.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin", "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 400, "workers": 8, "replicas": 2,
                                                 "blocking_calls": True, "queue_limit": 100, "timeout_s": 2}))
    d.add_node(NodeData("db", "database", params={"connections": 2, "read_capacity_rps": 100,
                                                  "queue_limit": 50, "timeout_s": 30}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    d.add_edge("web", "db")
    d.set_settings(seed=3, duration_s=duration)
    return d


def cases():
    from simulation.fileformat import load
    import engine_bench as eb
    for path in sorted((ROOT / "resources" / "lessons").glob("*.scalelab")):
        doc = load(str(path))
        yield path.stem, doc, min(60.0, float(doc.settings["duration_s"]))
    yield "S1", eb.build_s1(), 300.0
    yield "S2", eb.build_s2("replicas"), 3.0
    yield "S3", eb.build_s3(), 30.0
    yield "S4lc", eb.build_s4("least_connections"), 60.0
    yield "S4lrt", eb.build_s4("least_response_time"), 30.0
    yield "blocking", blocking_doc(), 60.0


def fingerprint(doc, seconds: float) -> dict:
    from simulation.cli import csv_text
    from simulation.engine import Simulation
    sim = Simulation(doc, duration_s=seconds)
    sim.advance(seconds)
    return {"totals": json.loads(json.dumps(sim.totals(), default=str)),
            "csv": hashlib.sha256(csv_text(sim).encode()).hexdigest()[:16]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    out = {}
    for name, doc, seconds in cases():
        if a.only and name not in a.only:
            continue
        out[name] = fingerprint(doc, seconds)
        print(name, json.dumps(out[name], sort_keys=True), flush=True)
    if a.out:
        a.out.write_text(json.dumps(out, sort_keys=True, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
