"""A wall-clock limit for tests that must not hang (Linux/macOS: SIGALRM)."""
from __future__ import annotations

import signal
from contextlib import contextmanager


@contextmanager
def within(seconds: int, what: str = "the test"):
    """Fail with TimeoutError instead of hanging."""
    def stop(*_):
        raise TimeoutError(f"{what}: still running after {seconds} s of wall-clock time")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
