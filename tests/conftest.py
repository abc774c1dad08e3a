"""Test configuration: the GUI tests run offscreen, on any machine."""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

# Hypothesis: the same examples on every run (derandomized), so the suite's verdict on a commit
# does not depend on the run; SCALELAB_HYPOTHESIS=explore draws new ones (fuzzing by hand, like
# benchmarks/fuzz.py)
from hypothesis import settings  # noqa: E402

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("SCALELAB_HYPOTHESIS", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_sessionstart(session) -> None:
    """Compile (or load) the engine's kernels once, before any test: otherwise the first
    simulation loads them in a background thread (simulation/admission_kernel.py) that on a
    fresh machine compiles for seconds while the next tests run and capture their output."""
    from simulation import compiled
    compiled.warm()
