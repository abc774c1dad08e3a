"""Every built-in lesson at its own duration (engine only), and --jobs 1 vs --jobs N.

    .venv/bin/python benchmarks/batch_bench.py [lessons|jobs|all] [--jobs N] [--quick]

lessons  Each lesson in resources/lessons/ runs for its own ``duration_s`` in a fresh
         interpreter: wall and CPU seconds of ``Simulation.advance`` (setup apart). Target
         (issue 11): ≤ 1 s wall each.
jobs     ``scalelab sweep`` and ``scalelab check --empirical`` as a user runs them (a fresh
         ``python main.py`` process, wall clock from start to exit, worker start-up
         included), with ``--jobs 1`` and ``--jobs N`` (default: every core); prints the
         speed-up and checks that both printed the same table.

The machine is shared: compare figures within one run; the load average is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "resources" / "lessons"


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def child_lesson(path: str, duration: float | None) -> dict:
    sys.path.insert(0, str(ROOT))
    from simulation.engine import Simulation
    from simulation.fileformat import load

    t0 = time.perf_counter()
    doc = load(path)
    seconds = float(doc.settings["duration_s"]) if duration is None else duration
    sim = Simulation(doc, seed=int(doc.settings["seed"]), duration_s=seconds)
    setup = time.perf_counter() - t0
    c0, t1 = time.process_time(), time.perf_counter()
    sim.advance(seconds)
    return {"duration_s": seconds, "setup_s": setup, "wall_s": time.perf_counter() - t1,
            "cpu_s": time.process_time() - c0, "served": sim.totals()["served"]}


def bench_lessons(quick: bool) -> list[dict]:
    print(f"\n== every lesson at its own duration (engine only; target ≤ 1 s wall)   [load {loadavg()}]")
    print(f"   {'lesson':<34}{'sim s':>7}{'setup s':>9}{'wall s':>9}{'CPU s':>8}{'served':>11}")
    rows = []
    for path in sorted(LESSONS.glob("*.scalelab")):
        args = [sys.executable, __file__, "--child", str(path)] + (["--duration", "5"] if quick else [])
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode:
            print(f"   {path.stem:<34} failed: {p.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["lesson"] = path.stem
        rows.append(r)
        print(f"   {path.stem:<34}{r['duration_s']:>7g}{r['setup_s']:>9.2f}{r['wall_s']:>9.2f}{r['cpu_s']:>8.2f}"
              f"{r['served']:>11,}" + ("   > 1 s" if r["wall_s"] > 1 else ""))
    over = [r["lesson"] for r in rows if r["wall_s"] > 1]
    print(f"   {len(rows) - len(over)}/{len(rows)} lessons within 1 s wall" + (f"; over: {', '.join(over)}" if over else ""))
    return rows


def _cli(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{args}: exit {p.returncode}: {p.stderr}")
    # the report carries its wall time ("in 3.1 s"): leave it out of the comparison
    return wall, re.sub(r" in [0-9.,]+ s$", "", p.stdout, flags=re.M)


def bench_jobs(jobs: int, quick: bool) -> list[dict]:
    d = "5" if quick else "60"
    cases = [(f"sweep starter users.rate_rps=100:400:50, {d} s each (7 runs)",
              ["sweep", str(LESSONS / "starter.scalelab"), "--vary", "users.rate_rps=100:400:50", "--duration", d]),
             (f"check --empirical {d} redundancy (14 runs)",
              ["check", "--empirical", d, str(LESSONS / "redundancy.scalelab")]),
             (f"compare lb_demo starter, {'10' if quick else '150'} s",
              ["compare", str(LESSONS / "lb_demo.scalelab"), str(LESSONS / "starter.scalelab"),
               "--duration", "10" if quick else "150"])]
    print(f"\n== --jobs 1 vs --jobs {jobs} (a fresh CLI process each, wall clock)   [load {loadavg()}]")
    rows = []
    for label, args in cases:
        w1, out1 = _cli(args + ["--jobs", "1"])
        wn, outn = _cli(args + ["--jobs", str(jobs)])
        same = out1 == outn
        rows.append({"case": label, "serial_s": w1, "parallel_s": wn, "jobs": jobs, "same": same})
        print(f"   {label:<62} {w1:6.1f} s → {wn:6.1f} s   speed-up {w1 / wn:4.2f}×   "
              f"{'same output' if same else 'OUTPUT DIFFERS'}")
    return rows


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        duration = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--duration" else None
        print(json.dumps(child_lesson(sys.argv[2], duration)))
        return 0
    sys.path.insert(0, str(ROOT))
    from simulation.parallel import cpu_count

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("which", nargs="?", default="all", choices=["lessons", "jobs", "all"])
    ap.add_argument("--jobs", type=int, default=max(2, cpu_count()))
    ap.add_argument("--quick", action="store_true", help="5-s runs: a smoke check")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    print(f"batch_bench {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, load {loadavg()}")
    out = {}
    if a.which in ("lessons", "all"):
        out["lessons"] = bench_lessons(a.quick)
    if a.which in ("jobs", "all"):
        out["jobs"] = bench_jobs(a.jobs, a.quick)
    print(f"\nload average at end: {loadavg()}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
