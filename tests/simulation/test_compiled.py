"""Compiled kernels (simulation/compiled.py): the same numbers compiled or as Python,
a cache that can be missing or unwritable, and a warm-up that leaves a marker."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from simulation import compiled


def _lindley(arr_ns, svc_ns, out):
    """FIFO single worker in integer ns: D_k = max(D_{k-1}, a_k) + S_k."""
    free = 0
    for i in range(len(arr_ns)):
        start = max(free, arr_ns[i])
        free = start + svc_ns[i]
        out[i] = free
    return free


def _sample():
    rng = np.random.default_rng(1)
    a = np.cumsum(rng.integers(1, 10_000_000, 200)).astype(np.int64)
    s = rng.integers(1, 12_000_000, 200).astype(np.int64)
    return a, s, np.zeros(200, dtype=np.int64)


def test_compiled_and_python_agree_exactly():
    k = compiled.Kernel(_lindley, _sample)
    a, s, out = _sample()
    last = k(a, s, out)
    ref = np.zeros_like(out)
    assert _lindley(a, s, ref) == last
    assert np.array_equal(out, ref)
    # an independent check: the departure of the last request of a busy period
    assert (out[1:] >= out[:-1] + s[1:]).all()
    if compiled.numba_module() is not None:
        assert k.compiled


def test_without_numba_the_python_runs(monkeypatch):
    monkeypatch.setenv("SCALELAB_JIT", "0")
    assert not compiled.jit_enabled()
    assert not compiled.numba_installed()


def test_a_kernel_numba_cannot_compile_runs_as_python():
    if compiled.numba_module() is None:
        pytest.skip("numba is not installed")

    def uses_a_dict(x):
        d = {"a": object()}      # Python objects: not in numba's nopython subset
        return x + len(d)

    k = compiled.Kernel(uses_a_dict, None)
    with pytest.warns(RuntimeWarning, match="runs as Python"):
        assert k(2) == 3
    assert not k.compiled
    assert k(5) == 6


def test_warm_writes_a_marker_in_a_fresh_cache(tmp_path):
    env = dict(os.environ, SCALELAB_CACHE=str(tmp_path / "cache"))
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-m", "simulation.compiled"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "kernels" in out.stdout
    if compiled.numba_installed():
        assert list((tmp_path / "cache" / "numba").glob("warm-*"))


def test_an_unwritable_cache_is_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = dict(os.environ, SCALELAB_CACHE=str(blocker))
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-m", "simulation.compiled"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_a_kernel_without_a_cache_location_still_compiles():
    if compiled.numba_module() is None:
        pytest.skip("numba is not installed")
    ns: dict = {}
    exec("def add_one(x):\n    return x + 1\n", ns)   # no source file: numba cannot cache it
    k = compiled.Kernel(ns["add_one"], None)
    assert k(41) == 42
    assert k.compiled


@compiled.helper
def _start_of(free, a):
    """A helper: one request's start at a single worker (a kernel calls it)."""
    return max(free, a)


def _lindley_with_helper(arr_ns, svc_ns, out):
    free = 0
    for i in range(len(arr_ns)):
        free = _start_of(free, arr_ns[i]) + svc_ns[i]
        out[i] = free
    return free


def test_a_kernel_calling_a_helper_gives_the_same_numbers_compiled_or_not():
    k = compiled.Kernel(_lindley_with_helper, _sample)
    a, s, out = _sample()
    last = k(a, s, out)
    ref = np.zeros_like(out)
    assert _lindley(a, s, ref) == last and np.array_equal(out, ref)   # the plain Lindley recursion
    py_out = np.zeros_like(out)
    assert k.py(a, s, py_out) == last and np.array_equal(py_out, ref)
    # the module keeps the plain helper: the Python path stays Python
    assert _lindley_with_helper.__globals__["_start_of"] is _start_of
    if compiled.numba_module() is not None:
        assert k.compiled


def test_a_changed_helper_renames_the_compiled_kernel():
    # numba's cache watches only the kernel's own file: the compiled copy's name carries a
    # hash of the helpers' source, so an edited helper (in any file) compiles afresh
    def kernel_using(helper_src: str) -> str:
        ns: dict = {"helper": compiled.helper}
        exec(helper_src + "\ndef kern(x):\n    return step(x) + 1\n", ns)
        return compiled._helper_digest(ns["kern"])
    one = kernel_using("@helper\ndef step(x):\n    return x * 2\n")
    assert one == kernel_using("@helper\ndef step(x):\n    return x * 2\n")
    assert one != kernel_using("@helper\ndef step(x):\n    return x * 3\n")
    if compiled.numba_module() is not None:
        copy = compiled._with_compiled_helpers(_lindley_with_helper, compiled.numba_module())
        assert copy.__qualname__ == f"_lindley_with_helper_h{compiled._helper_digest(_lindley_with_helper)}"
        assert copy.__code__ is _lindley_with_helper.__code__
