"""Crash recovery files: one per editing session, all of them offered after a crash.

Like LibreOffice's document recovery: every window (a session) autosaves its unsaved
changes to its own file, ``session-<pid>-<start ms>-<n>.scalelab``, beside a small
``.json`` (title, file name, time) and a ``.lock`` held while the session runs (a
:class:`QLockFile`, which tells a crashed session from a live one even when its pid has
been reused). A clean close removes all three. At the next launch every file whose lock
is free belongs to a session that crashed: each is offered, newest first, and is removed
only once it has been restored (and autosaved again by its new session) or discarded.
A file that cannot be read is never offered and never deleted: it is renamed
``*.damaged`` and reported.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QStandardPaths

from simulation.document import Document
from simulation.fileformat import load
from simulation.params import FormatError

_counter = itertools.count(1)
_START_MS = int(time.time() * 1000)


def recovery_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".scalelab") / "recovery"


def new_session_name() -> str:
    """A name no other session (of this or another process) uses."""
    return f"session-{os.getpid()}-{_START_MS}-{next(_counter)}"


def lock_for(path: Path) -> QLockFile:
    lock = QLockFile(str(path.with_suffix(".lock")))
    lock.setStaleLockTime(0)      # a live session holds its lock for hours: only a dead pid makes it stale
    return lock


@dataclass
class Recoverable:
    """One crashed session's unsaved work."""

    path: Path
    document: Document
    saved_at: float                   # time.time() of the autosave
    name: str                         # the file name the session showed (e.g. plan.scalelab)
    original: str | None              # the session's file on disk, if it had one
    lock: QLockFile | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        return str(self.document.meta.get("title") or "") or Path(self.name).stem

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at))

    def describe(self) -> str:
        return f"{self.title} — {self.name} · autosaved {self.when()}"

    def remove(self) -> None:
        """Delete the recovery file, its info and its lock (after a restore or a discard)."""
        for f in (self.path, self.path.with_suffix(".json")):
            try:
                f.unlink()
            except OSError:
                pass
        self.release()

    def release(self) -> None:
        """Keep the files for a later launch; let another ScaleLab offer them."""
        if self.lock is not None:
            self.lock.unlock()
            self.lock = None


@dataclass
class Damaged:
    path: Path                        # where the damaged file now is (``*.damaged``)
    reason: str


def _info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _legacy_orphan(path: Path) -> bool:
    """``autosave-<pid>.scalelab`` from an older ScaleLab: orphaned when its pid is gone."""
    try:
        pid = int(path.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def set_aside(path: Path, reason: str) -> Damaged:
    """Rename a recovery file that cannot be read to ``*.damaged`` (never deleted)."""
    target = path.with_name(path.name + ".damaged")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{n}.damaged")
    try:
        os.replace(path, target)
    except OSError as err:
        return Damaged(path, f"{reason} (and it could not be renamed: {err.strerror or err})")
    info = path.with_suffix(".json")
    if info.exists():
        try:
            os.replace(info, target.with_name(target.name + ".json"))
        except OSError:
            pass
    return Damaged(target, reason)


def crashed_sessions(exclude: set[Path] = frozenset()) -> tuple[list[Recoverable], list[Damaged]]:
    """Every recovery file left by a session that did not close cleanly, newest first,
    and the damaged ones (already set aside). The returned entries hold their sessions'
    locks until they are removed or released."""
    folder = recovery_dir()
    if not folder.is_dir():
        return [], []
    found: list[Recoverable] = []
    damaged: list[Damaged] = []
    candidates = sorted(folder.glob("session-*.scalelab")) + sorted(folder.glob("autosave-*.scalelab"))
    for path in candidates:
        if path in exclude:
            continue
        lock = None
        if path.name.startswith("session-"):
            lock = lock_for(path)
            if not lock.tryLock(0):
                continue                  # a live session (this or another ScaleLab)
        elif not _legacy_orphan(path):
            continue
        try:
            doc = load(path)
        except FormatError as err:
            damaged.append(set_aside(path, str(err)))
            if lock is not None:
                lock.unlock()
            continue
        except Exception as err:  # noqa: BLE001 - whatever is wrong with it, it must not stop the app
            damaged.append(set_aside(path, f"{type(err).__name__}: {err}"))
            if lock is not None:
                lock.unlock()
            continue
        info = _info(path)
        try:
            saved_at = float(info.get("time") or path.stat().st_mtime)
        except (TypeError, ValueError, OSError):
            saved_at = 0.0
        name = info.get("name") if isinstance(info.get("name"), str) else "untitled.scalelab"
        original = info.get("path") if isinstance(info.get("path"), str) else None
        found.append(Recoverable(path, doc, saved_at, name, original, lock))
    found.sort(key=lambda r: r.saved_at, reverse=True)
    return found, damaged
