"""The ``scalelab`` command: the GUI, or ``simulate`` / ``check`` / ``export`` headless.

Every failure a user can cause (a bad file, a bad option, an unwritable output,
Ctrl-C, SIGTERM) ends with a non-zero exit code and one line on stderr, never a
traceback. Outputs are checked before any work and written by
``simulation.outputs``: atomically (no half-written CSV, JSON or image), never
over the lesson being read, through symlinks, ``-`` to standard output. The GUI
and ``export`` are provided by the designer, which calls :func:`main` with them
(``designer/entry.py``): this module never imports Qt or the designer, so
``simulate`` and ``check`` run on machines without a display.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from . import outputs
from .fileformat import load
from .kinds import SIMULATION_PARAMS
from .params import FormatError, check_value
from .cli_progress import Progress  # (cli.Progress: cli_compare, cli_grade)
from .cli_summary import CSV_COLUMNS, csv_text, summary_dict, summary_text  # noqa: F401

PROG = "scalelab"
SUBCOMMANDS = ("simulate", "check", "export", "compare", "sweep", "grade")
SLICE_S = 1.0  # simulated seconds between two progress updates


class UserError(Exception):
    """A problem to report in one line (the message is what the user reads)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: {message} (see '{self.prog} --help')\n")


# ----- simulate ---------------------------------------------------------------------------------
def _setting(name: str, value: Any, option: str) -> Any:
    param = next(p for p in SIMULATION_PARAMS if p.name == name)
    return check_value(param, value, option)


def run_simulation(doc: Any, duration_s: float, seed: int, progress: Progress | None = None) -> Any:
    """Run ``doc`` for ``duration_s`` in slices (so progress can be shown); return the Simulation."""
    from .engine import Simulation

    sim = Simulation(doc, seed=seed, duration_s=duration_s)
    try:
        while sim.now < duration_s - 1e-9:
            sim.advance(min(SLICE_S, duration_s - sim.now))
            if progress:
                progress.update(sim.now)
    except BaseException:
        if progress and progress.drawn:  # end the bar's line so the error line stands alone
            progress.stream.write("\n")
            progress.stream.flush()
        raise
    if progress:
        progress.finish(sim.now)
    return sim


def cmd_simulate(args: argparse.Namespace) -> int:
    doc = load(args.file)
    duration = _setting("duration_s", doc.settings["duration_s"] if args.duration is None else args.duration,
                        "--duration")
    seed = _setting("seed", doc.settings["seed"] if args.seed is None else args.seed, "--seed")
    targets = _plan_outputs(args.file, {"--csv": args.csv, "--json": args.json})  # before the long run
    show = args.progress or (args.progress is None and sys.stderr.isatty())
    started = time.monotonic()
    sim = run_simulation(doc, float(duration), int(seed), Progress(sys.stderr, float(duration), show))
    wall = time.monotonic() - started
    summary = summary_dict(sim, float(duration), int(seed), str(args.file))
    data = {"--csv": lambda: csv_text(sim), "--json": lambda: json.dumps(summary, indent=2, allow_nan=False) + "\n"}
    _commit([(target, data[option]().encode("utf-8")) for option, target in targets.items()])
    _report(targets, summary_text(summary, wall))
    return 0


def _name(path: str) -> str:
    return "standard output" if path == outputs.STDOUT else path


def _cannot_write(e: OSError) -> UserError:
    return UserError(f"cannot write {_name(e.filename)}: {e.strerror or e}")


def _plan_outputs(source: str, wanted: dict[str, str | None]) -> dict[str, outputs.Target]:
    """Check every output before any work: writable, not the lesson being read, not twice the same."""
    try:
        return outputs.plan_all([source], wanted)
    except OSError as e:
        raise _cannot_write(e) from None


def _commit(items: list[tuple[outputs.Target, bytes]]) -> None:
    try:
        outputs.write_outputs(items)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise _cannot_write(e) from None


def _report(targets: dict[str, outputs.Target], text: str | None = None) -> None:
    """``text`` and a ``wrote PATH`` line per file, on stdout, or stderr when an output went to stdout."""
    stream = sys.stderr if any(t.kind == "stdout" for t in targets.values()) else sys.stdout
    lines = ([text] if text else []) + [f"wrote {t.shown}" for t in targets.values() if t.kind != "stdout"]
    if lines:
        print("\n".join(lines), file=stream)


# ----- export -----------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    doc = load(args.file)
    run = None if args.run is None else _setting("duration_s", args.run, "--run")
    targets = _plan_outputs(args.file, {"--png": args.png, "--svg": args.svg})
    render = _FRONTENDS.get("export")
    if render is None:
        raise UserError("export needs the desktop part of ScaleLab: run it as `scalelab export ...` "
                        "or `python main.py export ...`")
    try:
        png, svg = render(doc, run, "--svg" in targets)
    except OSError as e:  # the designer's words, with the output they were for
        raise UserError(f"cannot export {_name(args.png)}: {e.strerror or e}") from None
    if not png or ("--svg" in targets and not svg):
        raise UserError(f"cannot export {_name(args.png)}: the picture came out empty")
    items = [(targets["--png"], png)] + ([(targets["--svg"], svg)] if "--svg" in targets else [])
    _commit(items)
    _report(targets)
    return 0


def _whole_number(text: str) -> int:
    """``int`` for an option, with a short message for a number of thousands of digits."""
    try:
        return int(text)
    except ValueError:
        if len(text) <= 30:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        raise argparse.ArgumentTypeError(f"not a whole number of reasonable size: {text[:20]!r}... "
                                         f"({len(text):,} characters)") from None


def _jobs(text: str) -> int:
    """``--jobs N``: a whole number ≥ 1."""
    n = _whole_number(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def add_jobs_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--jobs N`` on a subcommand whose runs are independent (``parallel.py``)."""
    from .parallel import cpu_count
    p.add_argument("--jobs", "-j", type=_jobs, metavar="N", default=cpu_count(),
                   help=f"run {what} in N processes at once (default: every core, here {cpu_count()}; "
                   "1: one after the other in this process); the numbers are the same")


# ----- entry point ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="ScaleLab: learn and teach how web applications scale. "
                     "Without arguments, starts the desktop app; with a FILE, opens it.")
    parser.add_argument("--version", action="version", version=f"ScaleLab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("simulate", help="run a topology without a display and print a summary",
                       description="Run FILE without a display and print a summary of the totals.")
    p.add_argument("file", metavar="FILE", help="a .scalelab file")
    p.add_argument("--duration", type=float, metavar="S", help="simulated seconds (default: the file's duration_s)")
    p.add_argument("--seed", type=_whole_number, metavar="N", help="random seed (default: the file's seed)")
    p.add_argument("--csv", metavar="PATH", help="write one row per simulated second: time_s, offered_rps, "
                   "served_rps, failed_rps, p50_ms, p95_ms, p99_ms, mean_ms, active_servers, ..., "
                   "util:<node id> per node, failed:<cause> per failure cause ('-': standard output)")
    p.add_argument("--json", metavar="PATH", help="write the totals: arrived, served, failed, failed_by_cause, "
                   "in_flight, mean_ms, p50_ms, p95_ms, p99_ms, sessions_lost, duration_s, seed, file "
                   "('-': standard output)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and the run takes over 1 s)")
    p.set_defaults(func=cmd_simulate)

    from .cli_check import add_parser as add_check   # check and check --empirical (cli_check.py)
    add_check(sub)

    p = sub.add_parser("export", help="render the canvas (and plots after a run) to PNG/SVG without a display",
                       description="Render FILE's canvas to an image without a display.")
    p.add_argument("file", metavar="FILE", help="a .scalelab file")
    p.add_argument("--png", metavar="OUT", required=True, help="PNG to write ('-': standard output)")
    p.add_argument("--svg", metavar="OUT", help="SVG to write as well ('-': standard output)")
    p.add_argument("--run", type=float, metavar="SECONDS",
                   help="simulate this long first and show the live state and plots")
    p.set_defaults(func=cmd_export)

    from .cli_compare import add_parsers   # compare and sweep (cli_compare.py)
    add_parsers(sub)
    from .cli_grade import add_parser as add_grade   # exit codes of its own: 0 met, 1 missed, 2 cannot grade
    add_grade(sub)
    return parser


# The desktop part plugs in here (designer/entry.py): simulation/ never imports designer/.
_FRONTENDS: dict[str, Callable[..., Any]] = {}


def _gui(argv: list[str]) -> int:
    gui_main = _FRONTENDS.get("gui")
    if gui_main is None:
        raise UserError("the desktop app is not available here: run `scalelab` or `python main.py`")
    return int(gui_main(argv) or 0)


def main(argv: Sequence[str] | None = None, *, gui: Callable[[list[str]], int] | None = None,
         exporter: Callable[..., tuple[bytes, bytes | None]] | None = None) -> int:
    """Run the command; return the exit code (0 ok, 1 error, 2 usage, 130 interrupted,
    128 + N stopped by signal N: 143 for SIGTERM).

    ``gui(argv)`` starts the desktop app and ``exporter(document, run_s, svg) -> (png, svg)``
    renders the images as bytes (``svg`` is None unless asked for); the designer passes both
    (``designer/entry.py``). The command writes them (``simulation.outputs``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if gui is not None:
        _FRONTENDS["gui"] = gui
    if exporter is not None:
        _FRONTENDS["export"] = exporter
    try:
        if not argv:
            return _gui([])
        if argv == ["--install-desktop"]:  # the designer installs its own launcher
            return _gui(argv)
        if len(argv) == 1 and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
            if Path(argv[0]).exists() or argv[0].endswith(".scalelab"):
                return _gui(argv)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, usage errors (already printed)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if args.command is None:
            parser.print_usage(sys.stderr)
            return 2
        with outputs.stop_on_signals():  # SIGTERM/SIGHUP unwind: temporary files are removed
            return args.func(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except outputs.Stopped as e:
        _error(f"stopped by {e.name}")
        return 128 + e.signum
    except BrokenPipeError:  # e.g. `scalelab check FILE | head`: the reader has gone, nothing to say
        _silence_stdout()
        return 0
    except (FormatError, UserError) as e:
        _error(str(e))
        return 1
    except ValueError as e:  # SimulationError is a ValueError with a clear message
        _error(str(e))
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _error(f"{where}{e.strerror or e}")
        return 1
    except Exception as e:  # a bug: still one line, unless debugging
        if os.environ.get("SCALELAB_DEBUG"):
            raise
        _error(f"internal error ({type(e).__name__}: {e}); set SCALELAB_DEBUG=1 for the traceback")
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        sys.stdout = open(os.devnull, "w")


def _error(message: str) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    first = " ".join(message.split("\n")[0].split())
    sys.stderr.write(f"{PROG}: {first}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
