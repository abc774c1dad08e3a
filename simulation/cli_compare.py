"""``scalelab compare A B`` and ``scalelab sweep FILE --vary NODE.PARAM=START:STOP:STEP``.

Both run like ``simulate`` (``cli.py``): outputs are checked before the runs and written
atomically (``outputs``), a progress bar goes to stderr, every error is one line. The
work is done by ``compare.py`` and ``sweep.py``; this module only reads the options.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from . import cli
from . import compare as comparing
from . import sweep as sweeping
from .fileformat import load
from .params import FormatError


def _load(label: str, path: str) -> Any:
    """Load one of the files, naming which in any error (``B (b.scalelab): ...``)."""
    try:
        return load(path)
    except FormatError as e:
        detail = e.message if e.where == path else str(e)
        raise cli.UserError(f"{label} ({path}): {detail}") from None


def _compiled(label: str, path: str, doc: Any) -> None:
    from .compiler import compile_document
    try:
        compile_document(doc)
    except ValueError as e:
        raise cli.UserError(f"{label} ({path}): {e}") from None


def _show(args: argparse.Namespace) -> bool:
    return args.progress or (args.progress is None and sys.stderr.isatty())


def cmd_compare(args: argparse.Namespace) -> int:
    doc_a, doc_b = _load("A", args.file_a), _load("B", args.file_b)
    _compiled("A", args.file_a, doc_a)
    _compiled("B", args.file_b, doc_b)
    duration = float(cli._setting("duration_s", comparing.default_duration(doc_a, doc_b)
                                  if args.duration is None else args.duration, "--duration"))
    seed = int(cli._setting("seed", doc_a.settings["seed"] if args.seed is None else args.seed, "--seed"))
    targets = _plan([args.file_a, args.file_b], {"--csv": args.csv, "--json": args.json})  # before the runs
    bar = cli.Progress(sys.stderr, 2 * duration, _show(args), label="comparing")
    started = time.monotonic()
    try:
        a, b = comparing.compare(doc_a, doc_b, seed, duration, (f"A ({args.file_a})", f"B ({args.file_b})"),
                                 progress=lambda done, total: bar.update(done), processes=args.jobs)
    except BaseException:
        _end_line(bar)
        raise
    bar.finish(2 * duration)
    wall = time.monotonic() - started
    files = (str(args.file_a), str(args.file_b))
    titles = (str(doc_a.meta.get("title", "")), str(doc_b.meta.get("title", "")))
    data = {"--csv": lambda: comparing.csv_text(a, b),
            "--json": lambda: json.dumps(comparing.json_dict(a, b, files), indent=2, allow_nan=False) + "\n"}
    cli._commit([(target, data[option]().encode("utf-8")) for option, target in targets.items()])
    cli._report(targets, comparing.text(a, b, files, titles, wall))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        rng = sweeping.parse_range(args.vary)   # before the file: a malformed --vary is a usage error
        doc = load(args.file)
        vary = sweeping.resolve(doc, rng)
    except sweeping.VaryError as e:
        if e.usage:   # wrong whatever the file: a usage error (exit code 2), like argparse's
            try:
                args.sweep_parser.error(str(e))
            except SystemExit as stop:
                return stop.code if isinstance(stop.code, int) else 2
        raise cli.UserError(str(e)) from None
    duration = float(cli._setting("duration_s", doc.settings["duration_s"] if args.duration is None
                                  else args.duration, "--duration"))
    seed = int(cli._setting("seed", doc.settings["seed"] if args.seed is None else args.seed, "--seed"))
    targets = _plan([args.file], {"--csv": args.csv})
    total = len(vary.values) * duration
    bar = cli.Progress(sys.stderr, total, _show(args), label="sweeping")
    started = time.monotonic()
    try:
        points = sweeping.sweep(doc, vary, seed, duration, progress=lambda done, _total: bar.update(done),
                                processes=args.jobs)
    except BaseException:
        _end_line(bar)
        raise
    bar.finish(total)
    wall = time.monotonic() - started
    if targets:
        cli._commit([(targets["--csv"], sweeping.csv_text(vary, points).encode("utf-8"))])
    knee = sweeping.find_knee(points)
    lines = [f"{args.file}: {vary.param} of {vary.node_id} at {len(points)} value{'s' * (len(points) != 1)}, "
             f"{duration:g} s each (seed {seed}) in {wall:.1f} s", ""]
    lines += sweeping.table(vary, points)
    lines += ["", sweeping.knee_text(knee, vary, points), f"(knee: {sweeping.KNEE_RULE})"]
    cli._report(targets, "\n".join(lines))
    return 0


def _plan(sources: list[str], wanted: dict[str, str | None]) -> dict:
    try:
        return cli.outputs.plan_all(sources, wanted)
    except OSError as e:
        raise cli._cannot_write(e) from None


def _end_line(bar: cli.Progress) -> None:
    if bar.drawn:   # end the bar's line so that the error line stands alone
        bar.stream.write("\n")
        bar.stream.flush()


def add_parsers(sub: Any) -> None:
    """Register ``compare`` and ``sweep`` on the ``scalelab`` command's subparsers."""
    p = sub.add_parser("compare", help="run two topologies on the same seed and compare their totals",
                       description="Run A and B on the same seed for the same duration (the longer of the two "
                       "files' durations unless --duration) and print their totals side by side with B − A.")
    p.add_argument("file_a", metavar="A", help="the first .scalelab file")
    p.add_argument("file_b", metavar="B", help="the second .scalelab file")
    p.add_argument("--duration", type=float, metavar="S", help="simulated seconds for both (default: the longer "
                   "of the two files' duration_s)")
    p.add_argument("--seed", type=cli._whole_number, metavar="N", help="random seed for both (default: A's seed)")
    p.add_argument("--csv", metavar="PATH", help="write both runs' per-second rows, A's then B's, told apart by "
                   "the first column 'variant' (A or B), then the columns of simulate's CSV ('-': standard output)")
    p.add_argument("--json", metavar="PATH", help="write both totals as {\"A\": ..., \"B\": ..., \"difference\": "
                   "...} ('-': standard output)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and the runs take over 1 s)")
    cli.add_jobs_option(p, "A and B")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sweep", help="run a topology at each value of one parameter (a load test)",
                       description="Run FILE at each value of one numeric parameter and print a line per value; "
                       f"mark the knee: {sweeping.KNEE_RULE}.")
    p.add_argument("file", metavar="FILE", help="a .scalelab file")
    p.add_argument("--vary", metavar="NODE.PARAM=START:STOP:STEP", required=True,
                   help="the node (id or label), its numeric parameter and the values, START to STOP inclusive "
                   f"(at most {sweeping.MAX_VALUES}; STEP may be negative), e.g. users.rate_rps=100:1000:100")
    p.add_argument("--duration", type=float, metavar="S", help="simulated seconds per value (default: the file's "
                   "duration_s)")
    p.add_argument("--seed", type=cli._whole_number, metavar="N", help="random seed of every run (default: the "
                   "file's seed)")
    p.add_argument("--csv", metavar="PATH", help="write one row per value: " + ", ".join(sweeping.CSV_COLUMNS)
                   + " ('-': standard output)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and the runs take over 1 s)")
    cli.add_jobs_option(p, "the values")
    p.set_defaults(func=cmd_sweep, sweep_parser=p)
