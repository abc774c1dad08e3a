"""Compiled kernels: numba when it is installed, the same Python when it is not.

A kernel is a plain Python function over numpy arrays and numbers, written in the
subset numba compiles (loops, arrays, ints and floats; no Python objects). Decorate
it with :func:`kernel`:

- with numba, it is compiled on first use (``nopython``, ``cache=True``) and the
  machine code is kept in the user's cache (``$SCALELAB_CACHE/numba``, else
  ``~/.cache/scalelab/numba``): a later launch loads it in about 0.1 s. A missing,
  stale or unwritable cache is rebuilt or bypassed, never an error;
- without numba, or with ``SCALELAB_JIT=0``, the Python function runs as written:
  the same integer arithmetic and the same results, only slower. A kernel that
  numba fails to compile falls back the same way (once, with a warning).

A kernel may call plain functions marked :func:`helper` (same subset, e.g. one
request's admission shared by two kernels): they run as Python in the fallback;
when a kernel compiles, it is compiled against ``numba.njit`` versions of the
helpers it names (its module keeps the plain ones, so ``kernel.py`` stays pure
Python). Numba's cache knows only a kernel's own file, so the compiled kernel's
name carries a hash of its helpers' files and of the constants they read: editing
a helper in another file compiles the kernel again instead of loading a stale cache.

So that the first Run after an install does not wait for the compiler, the app
starts ``python -m simulation.compiled`` in the background while its window opens
(:func:`warm_in_background`): it compiles every registered kernel on its sample
arguments and leaves a marker, so later launches skip it.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import inspect
import marshal
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

KERNEL_MODULES: tuple[str, ...] = ("simulation.least_choice", "simulation.admission_kernel", "simulation.admission_order",
                                  "simulation.latency_hist", "simulation.settle_kernels",
                                  "simulation.arrival_kernel", "simulation.choice_kernel",
                                  "simulation.blocking_events", "simulation.room_kernel",
                                  "simulation.balanced_steps", "simulation.balanced_events")   # modules that define
# kernels or their helpers (imported by warm(); their sources are the warm-up marker's fingerprint)
_REGISTRY: list["Kernel"] = []
_numba: Any = None
_numba_tried = False
warmer: subprocess.Popen | None = None   # the warm-up process started by warm_in_background()


def cache_dir() -> Path:
    base = os.environ.get("SCALELAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "scalelab")
    return Path(base) / "numba"


def jit_enabled() -> bool:
    """False with SCALELAB_JIT=0, and in the PyInstaller bundle (it ships without numba)."""
    if getattr(sys, "frozen", False):
        return False
    return os.environ.get("SCALELAB_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


def numba_installed() -> bool:
    """Whether numba can be imported, without importing it (0.2 s): for the app's start."""
    return jit_enabled() and importlib.util.find_spec("numba") is not None


def numba_module() -> Any:
    """numba, imported once with ScaleLab's cache directory; None without it or with JIT off."""
    global _numba, _numba_tried
    if not jit_enabled():
        return None
    if not _numba_tried:
        _numba_tried = True
        os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir()))
        try:
            import numba
            _numba = numba
        except Exception:   # not installed, or broken (e.g. no wheel for this Python)
            _numba = None
    return _numba


class Kernel:
    """A function that runs compiled when it can and as Python otherwise."""

    def __init__(self, fn: Callable, sample: Callable[[], tuple] | None) -> None:
        self.py = fn
        self.sample = sample
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._fn: Callable | None = None

    def __call__(self, *args: Any) -> Any:
        fn = self._fn
        if fn is None:
            return self._first_call(args)
        return fn(*args)

    def _first_call(self, args: tuple) -> Any:
        nb = numba_module()
        if nb is None:
            self._fn = self.py
            return self.py(*args)
        try:
            fn = _with_compiled_helpers(self.py, nb)
            try:
                compiled = nb.njit(cache=True, nogil=True)(fn)
                result = compiled(*args)   # compiles (or loads the cache) before it runs: no half-done work
            except RuntimeError as e:
                if "cannot cache" not in str(e):
                    raise
                compiled = nb.njit(cache=False, nogil=True)(fn)   # nowhere to cache: compile each launch
                result = compiled(*args)
        except nb.core.errors.NumbaError as e:
            warnings.warn(f"ScaleLab: kernel {self.__name__} runs as Python ({type(e).__name__})", RuntimeWarning)
            self._fn = self.py
            return self.py(*args)
        self._fn = compiled
        return result

    @property
    def compiled(self) -> bool:
        return self._fn is not None and self._fn is not self.py


def kernel(sample: Callable[[], tuple] | None = None) -> Callable[[Callable], Kernel]:
    """Decorator: ``@kernel(sample=lambda: (args...))``. ``sample`` gives small arguments
    of the exact types the engine passes (int64/float64 arrays, ints, floats); warm()
    calls the kernel on them to compile it ahead of the first run."""
    def wrap(fn: Callable) -> Kernel:
        k = Kernel(fn, sample)
        _REGISTRY.append(k)
        return k
    return wrap


def helper(fn: Callable) -> Callable:
    """Decorator: a plain function that kernels call (see the module docstring). Returns
    ``fn`` itself: called from Python (the fallback) it is ordinary Python."""
    fn.__scalelab_helper__ = True
    return fn


_COMPILED_HELPERS: dict[Callable, Any] = {}


def _helpers_of(fn: Callable) -> dict[str, Callable]:
    """The helper functions ``fn`` names among its globals."""
    g = fn.__globals__
    return {name: g[name] for name in fn.__code__.co_names
            if callable(g.get(name)) and getattr(g[name], "__scalelab_helper__", False)}


def _helper_digest(fn: Callable, seen: set | None = None) -> str:
    """A hash of what ``fn``'s compiled code depends on beyond its own file: the files of
    the helpers it calls (directly or through other helpers) and the constants they all
    read (numba freezes global values into the machine code)."""
    seen = set() if seen is None else seen
    h = hashlib.sha256()
    g = fn.__globals__
    for name in sorted(set(fn.__code__.co_names)):
        value = g.get(name)
        if isinstance(value, (int, float, str, bytes, tuple)) or type(value).__module__ == "numpy":
            h.update(f"{name}={value!r};".encode())
    for name, hf in sorted(_helpers_of(fn).items()):
        if hf in seen:
            continue
        seen.add(hf)
        try:
            h.update(Path(inspect.getsourcefile(hf) or "").read_bytes())
        except (OSError, TypeError):
            h.update(marshal.dumps(hf.__code__))
        h.update(_helper_digest(hf, seen).encode())
    return h.hexdigest()[:12]


def _with_compiled_helpers(fn: Callable, nb: Any) -> Callable:
    """``fn`` itself when it calls no helper; else a copy of it whose helper globals are
    their ``njit`` versions, named with the helpers' hash (so numba's cache, which only
    watches ``fn``'s own file, never loads a kernel built on an older helper)."""
    helpers = _helpers_of(fn)
    if not helpers:
        return fn
    glb = dict(fn.__globals__)
    for name, hf in helpers.items():
        glb[name] = _compiled_helper(hf, nb)
    copy = types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}_h{_helper_digest(fn)}"
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


def _compiled_helper(fn: Callable, nb: Any) -> Any:
    """The ``njit`` version of a helper (compiled lazily, for the types a kernel calls it with)."""
    done = _COMPILED_HELPERS.get(fn)
    if done is None:
        py = _with_compiled_helpers(fn, nb)
        try:
            done = nb.njit(cache=True, nogil=True)(py)
        except RuntimeError as e:
            if "cannot cache" not in str(e):
                raise
            done = nb.njit(cache=False, nogil=True)(py)   # nowhere to cache (no source file)
        _COMPILED_HELPERS[fn] = done
    return done


def _fingerprint() -> str:
    """Changes when numba, Python or a kernel's source changes (then the cache is re-warmed)."""
    h = hashlib.sha256(sys.version.encode())
    try:
        h.update(importlib.metadata.version("numba").encode())
    except importlib.metadata.PackageNotFoundError:
        h.update(b"none")
    for name in ("simulation.compiled", *KERNEL_MODULES):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and os.path.exists(spec.origin):
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:16]


def _marker() -> Path:
    return cache_dir() / f"warm-{_fingerprint()}"


def cache_is_warm() -> bool:
    """Whether warm() has filled the cache for these kernels, numba and Python."""
    try:
        return numba_installed() and _marker().exists()
    except OSError:
        return False


def warm() -> int:
    """Compile (or load) every kernel on its sample arguments; returns how many compiled."""
    if numba_module() is None:
        return 0
    for name in KERNEL_MODULES:
        importlib.import_module(name)
    done = 0
    for k in _REGISTRY:
        if k.sample is not None:
            k(*k.sample())
            done += k.compiled
    try:
        marker = _marker()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{done} kernels\n")
    except OSError:
        pass   # a read-only cache: the kernels compile on first use instead
    return done


def load_all() -> None:
    """Load (or compile) every registered kernel in this process, each on its sample
    arguments, after the warm-up process (if any) has filled the cache. A kernel that
    cannot load leaves its Python path in place. Called from a background thread
    (admission_kernel.load_in_background): the engine checks ``kernel.compiled``."""
    if numba_module() is None:
        return
    wait_for_warmer()
    for name in KERNEL_MODULES:
        importlib.import_module(name)
    for k in list(_REGISTRY):
        if k.sample is not None:
            try:
                k(*k.sample())
            except Exception:   # the Python path stays in place
                pass


def warm_in_background() -> subprocess.Popen | None:
    """Start warm() in a separate process unless the cache is already warm (or there is
    nothing to compile). Never raises: a failure only means the first run compiles."""
    try:
        if not numba_installed() or not KERNEL_MODULES or _marker().exists():
            return None
        global warmer
        warmer = subprocess.Popen([sys.executable, "-m", "simulation.compiled"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return warmer
    except Exception:
        return None


def wait_for_warmer(timeout_s: float = 300.0) -> None:
    """Wait (without holding the GIL) for the warm-up process this app started, if any: the
    kernels then load from its cache instead of compiling a second time in this process,
    where the compiler would compete with the window for the interpreter."""
    proc = warmer
    if proc is not None:
        try:
            proc.wait(timeout=timeout_s)
        except Exception:
            pass   # still compiling (or gone): compile here after all


if __name__ == "__main__":
    from simulation import compiled as _module   # the registry the kernel modules fill, not __main__'s copy
    print(f"compiled {_module.warm()} kernels into {cache_dir()}")
