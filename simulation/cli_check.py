"""``scalelab check``: validate a file and list its single points of failure, by structure
and (``--empirical``) measured with the engine. Part of the command (``cli.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from . import cli
from .cli_progress import Progress
from .fileformat import load

EMPIRICAL_S = 60.0  # simulated seconds per failure when --empirical has no value


def cmd_check(args: argparse.Namespace) -> int:
    from .analysis import structural_spof
    from .compiler import compile_document
    from .sharding import check_lines as shard_lines
    from .spof_text import check_lines

    try:
        args.file, args.empirical = _check_args(args)
    except SystemExit as e:  # a usage error, already printed
        return e.code if isinstance(e.code, int) else 2
    if args.empirical is not None:
        args.empirical = float(cli._setting("duration_s", args.empirical, "--empirical"))
    doc = load(args.file)
    compile_document(doc)  # what the engine refuses is invalid too (SimulationError)
    edges = len(doc.edges())
    print(f"OK: {len(doc.node_ids())} node{'s' * (len(doc.node_ids()) != 1)}, {edges} edge{'s' * (edges != 1)}")
    print("\n".join(check_lines(doc, structural_spof(doc)) + shard_lines(doc)))
    if args.empirical is not None:
        _print_empirical(doc, args.empirical, args.jobs)
    return 0


def _check_args(args: argparse.Namespace) -> tuple[str, float | None]:
    """FILE and the --empirical seconds, whatever their order: argparse gives a FILE
    written right after --empirical (``check --empirical FILE``) to --empirical."""
    file, value = args.file, args.empirical

    def number(text: str | None) -> bool:
        try:
            float(text)  # type: ignore[arg-type]
            return True
        except (TypeError, ValueError):
            return False

    if isinstance(value, str) and not number(value):   # (without a value it is the float EMPIRICAL_S)
        if file is not None and not number(file):
            args.check_parser.error(f"argument --empirical: invalid float value: {value!r}")
        file, value = value, (file if file is not None else EMPIRICAL_S)
    if file is None:
        args.check_parser.error("the following arguments are required: FILE")
    return file, None if value is None else float(value)


def _print_empirical(doc: Any, seconds: float, jobs: int = 1) -> None:
    """Fail each node's machine in turn and print what is lost (see simulation/spof_measure.py)."""
    from .spof_measure import measure, settle_delays
    from .spof_text import empirical_lines

    runs = 2 * (sum(doc.kind(n) != "client" for n in doc.node_ids()) + 1)
    bar = Progress(sys.stderr, float(runs), sys.stderr.isatty(), unit="runs", label="failing nodes")
    try:
        lost = measure(doc, seconds=seconds, progress=lambda done, total: bar.update(done), processes=jobs)
    except BaseException:
        if bar.drawn:   # end the bar's line so that the error line stands alone
            bar.stream.write("\n")
            bar.stream.flush()
        raise
    bar.finish(float(runs))
    print("\n".join(empirical_lines(doc, lost, seconds, settle_delays(doc))))


def add_parser(sub: Any) -> None:
    """``check`` on the command's subparsers."""
    p = sub.add_parser("check", help="validate a file and list its single points of failure",
                       description="Validate FILE; print 'OK: N nodes, M edges' and its single points of failure. "
                       "Exit code 1 if the file is invalid.")
    p.add_argument("file", metavar="FILE", nargs="?", help="a .scalelab file")
    p.add_argument("--empirical", metavar="S", nargs="?", const=EMPIRICAL_S,
                   help="also fail one machine of each node in turn (replica 0, a database's primary), "
                   "S simulated seconds each (default 60), and print the share of requests lost over the "
                   "second half of the run, without the file's scheduled events")
    cli.add_jobs_option(p, "the --empirical runs")
    p.set_defaults(func=cmd_check, check_parser=p)
