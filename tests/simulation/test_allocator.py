"""The engine's allocator setting: once per process, only on glibc, off with the variable,
and never a change in results."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ("from simulation import allocator; print(allocator.keep_freed_memory(), allocator.keep_freed_memory())")


def _run(**env: str) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, **env), timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_set_once_per_process_on_linux():
    assert _run() == "True False"


def test_the_variable_turns_it_off():
    assert _run(SCALELAB_KEEP_FREED_MEMORY="0") == "False False"


def test_results_do_not_depend_on_it():
    code = ("import sys; sys.path.insert(0, 'tests/simulation'); from topologies import balanced; "
            "from simulation.engine import Simulation; s = Simulation(balanced(900, 10, 100, 'random'), seed=3); "
            "s.advance(30); print(s.totals())")
    outs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SCALELAB_KEEP_FREED_MEMORY=v)).stdout for v in ("1", "0")]
    assert outs[0] and outs[0] == outs[1]
