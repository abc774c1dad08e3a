"""Keep freed memory for reuse instead of giving it back to the OS after every window.

The engine allocates and frees arrays of tens of thousands of requests in every window.
glibc's malloc serves large blocks with ``mmap`` and returns them with ``munmap`` (and
trims the heap's top) as soon as they are freed, so the next window's arrays start on
fresh pages: on the development VM a fresh page costs about 2.5 µs, and S1/S2 took
190,000–250,000 minor page faults per run. Raising the two thresholds (``mallopt``) keeps
the freed blocks in the heap for the next window: 30,000–36,000 faults, 25–40 % less
CPU, the same peak memory (benchmarks/README.md).

This changes the whole process's allocator, so it is done once, by the engine's first
:class:`~simulation.engine.Simulation`. Only on glibc (Linux); elsewhere, or with
``SCALELAB_KEEP_FREED_MEMORY=0``, nothing is changed. Results never depend on it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1     # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 2**20   # blocks below this come from the heap, and are reused there
TRIM_THRESHOLD = 512 * 2**20   # free memory at the heap's top kept up to this much

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they were set."""
    global _done
    if _done:
        return False
    _done = True
    if not sys.platform.startswith("linux") or os.environ.get("SCALELAB_KEEP_FREED_MEMORY", "1").strip() in ("0", "no", "off"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
