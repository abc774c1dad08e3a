"""The simulation core never imports Qt or the designer (dependencies point one way)."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import simulation

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "designer", "PyQt5", "PyQt6")


def simulation_modules() -> list[str]:
    return sorted(f"simulation.{m.name}" for m in pkgutil.iter_modules(simulation.__path__))


def test_there_are_modules_to_check() -> None:
    mods = simulation_modules()
    assert {"simulation.document", "simulation.fileformat", "simulation.analysis", "simulation.cli"} <= set(mods)


def test_importing_every_simulation_module_loads_no_qt() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {simulation_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_check_shows_a_qt_import_when_there_is_one() -> None:
    """The probe itself works: importing PySide6 is seen."""
    code = f"import sys, PySide6.QtCore; print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "PySide6" in result.stdout
