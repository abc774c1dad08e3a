"""Test configuration: the GUI tests run offscreen, on any machine."""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_sessionstart(session) -> None:
    """Compile (or load) the engine's kernels once, before any test: otherwise the first
    simulation loads them in a background thread (simulation/admission_kernel.py) that on a
    fresh machine compiles for seconds while the next tests run and capture their output."""
    from simulation import compiled
    compiled.warm()
