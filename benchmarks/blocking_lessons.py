"""Every built-in lesson with all its servers set to ``blocking_calls`` (sync workers).

    .venv/bin/python benchmarks/blocking_lessons.py [--duration 60] [--only NAME ...]

Each lesson runs in a fresh interpreter for ``--duration`` simulated seconds (its own
duration if shorter). Prints CPU seconds of ``Simulation.advance``, simulated seconds per
CPU second, how many windows the blocking tier's event kernel decided and how many it
left to the sweeps (``simulation/blocking_window.py``), and the totals. The shapes the
event kernel does not take yet show up here as the slow rows (benchmarks/README.md).
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
LESSONS = ROOT / "resources" / "lessons"


def child(path: str, duration: float) -> dict:
    from simulation.engine import Simulation
    from simulation.fileformat import load
    from simulation.compiled import load_all
    load_all()   # the compiled kernels, before the clock starts
    doc = load(path)
    for node in doc.nodes():
        if node.kind == "server":
            node.params["blocking_calls"] = True
    until = min(duration, float(doc.settings["duration_s"]))
    sim = Simulation(doc)
    c0, t0 = time.process_time(), time.perf_counter()
    sim.advance(until)
    cpu = time.process_time() - c0
    t = sim.totals()
    return {"sim_s": until, "cpu_s": cpu, "wall_s": time.perf_counter() - t0,
            "blocking": bool(sim.stations.hold.any()), "events": bool(sim._ev_depth is not None),
            "ev_windows": int(getattr(sim, "_ev_windows", 0)), "fallbacks": int(getattr(sim, "_ev_fallbacks", 0)),
            "served": int(t["served"]), "failed": int(t["failed"]), "mean_ms": float(t["mean_ms"])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.duration)))
        return 0
    paths = sorted(LESSONS.glob("*.scalelab"))
    if a.only:
        paths = [p for p in paths if p.stem in a.only]
    print(f"{'lesson':28} {'sim s':>6} {'CPU s':>7} {'sim s/CPU s':>11} {'tier':>9} {'ev/sweeps':>10} "
          f"{'served':>8} {'failed':>7} {'mean ms':>8}")
    total = 0.0
    for p in paths:
        out = subprocess.run([sys.executable, __file__, "--child", str(p), "--duration", str(a.duration)],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            print(f"{p.stem:28} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else '?'}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        total += r["cpu_s"]
        tier = "none" if not r["blocking"] else ("events" if r["events"] else "sweeps")
        print(f"{p.stem:28} {r['sim_s']:6.0f} {r['cpu_s']:7.2f} {r['sim_s'] / max(r['cpu_s'], 1e-9):11.1f} "
              f"{tier:>9} {r['ev_windows']:>4}/{r['fallbacks']:<5} {r['served']:8d} {r['failed']:7d} "
              f"{r['mean_ms']:8.1f}")
    print(f"total CPU s: {total:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
