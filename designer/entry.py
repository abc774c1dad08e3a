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


def _export(document: Any, png_path: Any, svg_path: Any = None, run_seconds: float | None = None) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .export import export_headless
    export_headless(document, png_path, svg_path, run_seconds)


def main(argv: list[str] | None = None) -> int:
    from simulation.cli import main as cli_main
    return cli_main(sys.argv[1:] if argv is None else argv, gui=_gui, exporter=_export)
