"""Temporary files of the outputs being written, and the signals that must not strand them.

Every temporary file is named ``.<name>.scalelab-tmp-<pid>-<hex>`` beside its target and
registered here: it is removed on exit, on errors, and when SIGTERM or SIGHUP stops the
command (:func:`stop_on_signals` turns them into :class:`Stopped`, which unwinds like
Ctrl-C). What a SIGKILL or a power cut leaves behind, :func:`clean_stale` removes on the
next write into that folder: a file whose process is gone, or that is over a day old.
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import secrets
import signal
import stat
import threading
import time
from typing import Iterator

TEMP_MARK = ".scalelab-tmp-"
_TEMP_RE = re.compile(r"\A\..*\.scalelab-tmp-(\d+)-[0-9a-f]+\Z", re.DOTALL)
STALE_AFTER_S = 24 * 3600  # a temporary file this old is stale even if its pid was reused


class Stopped(BaseException):
    """Raised in the main thread when SIGTERM or SIGHUP arrives (see :func:`stop_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


# ----- the registry ----------------------------------------------------------------------------
_LIVE: set[str] = set()
_critical = 0
_pending: int | None = None


def remove_registered() -> None:
    """Remove every temporary file of this process (at exit, and after a stop)."""
    for path in list(_LIVE):
        drop(path)


atexit.register(remove_registered)


def registered() -> set[str]:
    return set(_LIVE)


def new_temp(folder: str, name: str) -> tuple[int, str]:
    """Create ``.<name>.scalelab-tmp-<pid>-<hex>`` in ``folder`` (mode 0600), registered for removal."""
    base = name[:120]
    for _ in range(100):
        path = os.path.join(folder, f".{base}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            continue
        _LIVE.add(path)
        return fd, path
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", folder)


def drop(path: str) -> None:
    """Remove a temporary file; if that fails it stays registered, to be tried again at exit."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        return
    _LIVE.discard(path)


def is_live(path: str) -> bool:
    """Whether ``path`` is one of this process's temporary files, not yet renamed or removed."""
    return path in _LIVE


def forget(path: str) -> None:
    """``path`` was renamed into place: it is no temporary file any more."""
    _LIVE.discard(path)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def clean_stale(folder: str) -> list[str]:
    """Remove temporary files that a killed ScaleLab left in ``folder``; return their names."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m or entry.path in _LIVE:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        pid = int(m.group(1)) if len(m.group(1)) < 10 else -1
        if pid > 0 and _pid_alive(pid) and now - st.st_mtime < STALE_AFTER_S:
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(entry.name)
    return removed


# ----- signals ------------------------------------------------------------------------------------
def _on_signal(signum: int, frame: object) -> None:
    global _pending
    if _critical:
        _pending = signum  # raised when the renames (or their rollback) are done
        return
    raise Stopped(signum)


@contextlib.contextmanager
def critical_section() -> Iterator[None]:
    global _critical, _pending
    _critical += 1
    try:
        yield
    finally:
        _critical -= 1
        if not _critical and _pending is not None:  # the signal wins over an error on the way
            signum, _pending = _pending, None
            raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within this block SIGTERM and SIGHUP raise :class:`Stopped` (so ``finally`` blocks remove
    temporary files); the previous handlers come back afterwards. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
