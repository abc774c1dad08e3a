"""``scalelab grade FILE``: run a graded challenge headless and say which goals are met.

Exit codes (the issue asks for these, unlike ``simulate``'s 1 for a bad file):
0 every goal is met, 1 at least one is missed, 2 the file cannot be graded (a bad
file, a file without goals, an engine refusal, an output that cannot be written)
or a usage error. Ctrl-C and signals end as everywhere (130, 128 + N).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from . import cli
from .fileformat import load
from .grading import GoalResult, evaluate, survival_runs

EXIT_MET, EXIT_MISSED, EXIT_CANNOT = 0, 1, 2


def add_parser(sub: Any) -> None:
    """The ``grade`` subcommand, on ``cli.build_parser``'s subparsers."""
    p = sub.add_parser("grade", help="run a challenge's goals and say which are met (exit 0: all met)",
                       description="Run FILE without a display and check its goals: each is printed as met (✓) "
                       "or missed (✗) with the target and the measured value. Exit code 0 when every goal is "
                       "met, 1 when one is missed, 2 for a bad file, a file without goals or a usage error.")
    p.add_argument("file", metavar="FILE", help="a .scalelab file with goals")
    p.add_argument("--duration", type=float, metavar="S", help="simulated seconds (default: the file's duration_s)")
    p.add_argument("--seed", type=cli._whole_number, metavar="N", help="random seed (default: the file's seed)")
    p.add_argument("--json", metavar="PATH", help="write the results: file, seed, duration_s, all_met and per goal "
                   "its fields, measured, met and text ('-': standard output)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and the run takes over 1 s)")
    cli.add_jobs_option(p, "the failure runs of a survives_any_single_failure goal")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    try:
        return _grade(args)
    except BrokenPipeError:
        raise
    except (ValueError, cli.UserError, OSError) as e:   # FormatError and SimulationError are ValueErrors
        cli._error(str(e))
        return EXIT_CANNOT


def _grade(args: argparse.Namespace) -> int:
    doc = load(args.file)
    if not doc.goals:
        raise cli.UserError(f"{args.file}: this file has no goals to grade (a graded challenge lists them in "
                            '"goals", e.g. [{"metric": "p95_ms", "at_most": 200}]: see docs/file-format.md)')
    duration = float(cli._setting("duration_s", doc.settings["duration_s"] if args.duration is None
                                  else args.duration, "--duration"))
    seed = int(cli._setting("seed", doc.settings["seed"] if args.seed is None else args.seed, "--seed"))
    targets = cli._plan_outputs(args.file, {"--json": args.json})   # before the long run
    show = args.progress or (args.progress is None and sys.stderr.isatty())
    started = time.monotonic()
    sim = cli.run_simulation(doc, duration, seed, cli.Progress(sys.stderr, duration, show))
    runs = survival_runs(doc) * len({g.run_seconds for g in doc.goals if g.metric == "survives_any_single_failure"})
    bar = cli.Progress(sys.stderr, float(max(runs, 1)), show, unit="runs", label="failing machines")
    done = [0]

    def progress(_done: int, _total: int) -> None:
        done[0] += 1
        bar.update(done[0])

    results = evaluate(doc.goals, doc, sim, seed=seed, progress=progress, processes=args.jobs)
    bar.finish(float(done[0]))
    wall = time.monotonic() - started
    data = {"file": str(args.file), "seed": seed, "duration_s": duration,
            "all_met": all(r.met for r in results), "goals": [r.to_dict() for r in results]}
    if "--json" in targets:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        cli._commit([(targets["--json"], text.encode("utf-8"))])
    cli._report(targets, report_text(results, str(args.file), duration, seed, wall))
    return EXIT_MET if data["all_met"] else EXIT_MISSED


def report_text(results: list[GoalResult], file: str, duration: float, seed: int, wall_s: float) -> str:
    met = sum(bool(r.met) for r in results)
    lines = [f"{file}: {duration:g} s simulated (seed {seed}) in {wall_s:.1f} s"]
    lines += [f"  {r.mark} {r.text[:-2] if r.text.endswith(r.mark) else r.text}" for r in results]
    if met == len(results):
        lines.append(f"All {len(results)} goals met." if len(results) > 1 else "The goal is met.")
    else:
        lines.append(f"{met} of {len(results)} goals met; {len(results) - met} missed.")
    return "\n".join(lines)

