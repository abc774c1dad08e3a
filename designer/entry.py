"""The ``scalelab`` command and ``python main.py``: the command line of
``simulation.cli`` with the desktop parts plugged in (the GUI and ``export``).

Nothing here imports Qt at import time: ``simulate`` and ``check`` stay headless.
"""
from __future__ import annotations

import os
import sys
from typing import Any


def _gui(argv: list[str]) -> int:
    from .app import main as gui_main
    return int(gui_main(argv) or 0)


def _export(document: Any, run_seconds: float | None = None, svg: bool = False) -> tuple[bytes, bytes | None]:
    """The PNG (and SVG) of ``document`` as bytes; ``simulation.cli`` writes them where asked."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .export import render_headless
    return render_headless(document, run_seconds, svg)


def main(argv: list[str] | None = None) -> int:
    from simulation.cli import main as cli_main
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].split("=")[0] == "--smoke-test":   # the app's own option (designer/smoke.py)
        return _gui(argv)
    return cli_main(argv, gui=_gui, exporter=_export)
