"""Writing outputs without destroying anything (Qt's QSaveFile, plus what a command line needs).

- A regular file (or a new one) is replaced atomically: the data goes to a temporary file
  beside the real target, is flushed to disk and given the old file's mode (a new file:
  0666 minus the umask), then renamed over the target. A symlink is written through: its
  target is replaced and the link stays a link.
- A FIFO or a character device (``/dev/null``, a terminal) is written to directly; ``-``
  and ``/dev/stdout`` mean standard output, ``/dev/fd/N`` the open descriptor N.
- Several outputs are committed together: every temporary file is written first, then all
  are renamed; if a rename fails, the ones already renamed are put back.
- Temporary files (``.<name>.scalelab-tmp-<pid>-<hex>``) are removed on exit, on errors and
  on SIGTERM; after a SIGKILL, by the next write into the folder (``temp_files``).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass
from typing import Sequence

from .temp_files import (STALE_AFTER_S, TEMP_MARK, Stopped, clean_stale, critical_section, drop, forget,  # noqa: F401
                         new_temp, registered, remove_registered, stop_on_signals)

STDOUT = "-"


class OutputError(OSError):
    """An output that cannot or must not be written; ``strerror`` is the user's words."""

    def __init__(self, path: str, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, message, path)

    def __str__(self) -> str:  # what a dialog shows: the words, not "[Errno 22] ...: 'path'"
        return str(self.strerror)


@dataclass(frozen=True)
class Target:
    """Where one output goes. ``kind`` is ``"file"`` (atomic replace of ``path``, the real
    path behind any symlinks), ``"stream"`` (a FIFO or device, written directly), ``"stdout"``
    (``-`` or ``/dev/stdout``) or ``"fd"`` (another open descriptor, ``path`` is its number)."""

    shown: str
    kind: str
    path: str
    identity: tuple | None  # (st_dev, st_ino) of what is there now, or None


# ----- planning: what is there, and may it be written? --------------------------------------------
def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _descriptor(path: str) -> int | None:
    """The descriptor N when ``path`` is (a link to) ``/dev/stdout``, ``/dev/fd/N`` or
    ``/proc/self/fd/N``: written through that descriptor, sharing its offset with the shell's
    redirection (reopening it would write over what stdout wrote before)."""
    own = re.compile(rf"/dev/fd/(\d+)|/proc/(?:self|thread-self|{os.getpid()})/fd/(\d+)")
    cur = os.path.abspath(path)
    for _ in range(40):
        m = own.fullmatch(cur)
        if m:
            return int(m.group(1) or m.group(2))
        if cur in ("/dev/stdin", "/dev/stdout", "/dev/stderr"):
            return ("/dev/stdin", "/dev/stdout", "/dev/stderr").index(cur)
        if not os.path.islink(cur):
            return None
        cur = os.path.normpath(os.path.join(os.path.dirname(cur), os.readlink(cur)))
    return None


def plan(path: str | os.PathLike) -> Target:
    """Check that ``path`` can be written, before any work is done; describe how it will be.

    Raises :class:`OutputError` (an ``OSError``) saying why not. Also removes stale temporary
    files from the folder a file will be written in.
    """
    shown = os.fspath(path)
    if shown == STDOUT:
        return Target(shown, "stdout", shown, None)
    if not shown:
        raise OutputError(shown, "an empty file name")
    fd = _descriptor(shown)
    if fd is not None:
        try:
            st = os.fstat(fd)
        except OSError:
            raise OutputError(shown, "is not open in this process", errno.EBADF) from None
        return Target(shown, "stdout" if fd == 1 else "fd", str(fd), (st.st_dev, st.st_ino))
    try:
        st = os.stat(shown)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(shown, f"no such folder {os.path.dirname(shown)}", errno.ENOTDIR) from None
    except OSError as e:
        raise OutputError(shown, e.strerror or str(e), e.errno or errno.EIO) from None
    if st is not None:
        mode = st.st_mode
        identity = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(mode):
            raise OutputError(shown, "is a folder, not a file", errno.EISDIR)
        if stat.S_ISBLK(mode):
            raise OutputError(shown, "is a disk device, not a file")
        if stat.S_ISSOCK(mode):
            raise OutputError(shown, "is a socket, not a file")
        if not stat.S_ISREG(mode):
            if not os.access(shown, os.W_OK):
                raise OutputError(shown, "permission denied", errno.EACCES)
            return Target(shown, "stream", shown, identity)
    real = os.path.realpath(shown)
    folder = os.path.dirname(real) or "."
    if st is None and not os.path.isdir(folder):
        raise OutputError(shown, f"no such folder {os.path.dirname(shown) or folder}", errno.ENOENT)
    if st is not None and not os.access(real, os.W_OK):
        raise OutputError(shown, "the file is read-only", errno.EACCES)
    clean_stale(folder)
    try:  # the folder must take a new file (permissions, a read-only disk, quotas on inodes)
        fd, probe = new_temp(folder, os.path.basename(real))
    except OSError as e:
        named = os.path.dirname(shown) or "."
        named = named if os.path.realpath(named) == folder else folder
        raise OutputError(shown, f"cannot create a file in {named}: {e.strerror or e}",
                          e.errno or errno.EACCES) from None
    os.close(fd)
    drop(probe)
    return Target(shown, "file", real, None if st is None else (st.st_dev, st.st_ino))


def plan_all(inputs: Sequence[str], wanted: dict[str, str | None]) -> dict[str, Target]:
    """:func:`plan` every output given (``{"--csv": path or None}``), then :func:`refuse_clashes`."""
    planned = {option: plan(path) for option, path in wanted.items() if path is not None}
    refuse_clashes(inputs, list(planned.items()))
    return planned


def refuse_clashes(inputs: Sequence[str], outputs: Sequence[tuple[str, Target]]) -> None:
    """Refuse an output that is one of the inputs, and two outputs on one place.

    ``outputs`` pairs an option name (``--csv``) with its planned :class:`Target`. Writing
    twice to one character device (``/dev/null``) is allowed: nothing is lost there.
    """
    for label, target in outputs:
        if target.identity is None:
            continue
        for source in inputs:
            try:
                st = os.stat(source)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == target.identity:
                raise OutputError(target.shown, f"it is the lesson being read (give {label} another file)")
    for i, (label_a, a) in enumerate(outputs):
        for label_b, b in outputs[i + 1:]:
            same = (a.kind == b.kind == "stdout") or (a.kind == b.kind == "file" and a.path == b.path) \
                or (a.identity is not None and a.identity == b.identity)
            if not same:
                continue
            if a.kind == "stream" and stat.S_ISCHR(os.stat(a.path).st_mode):
                continue
            raise OutputError(b.shown, f"{label_a} and {label_b} would both write it (give each its own file)")


# ----- writing ------------------------------------------------------------------------------------
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _write_stream(target: Target, data: bytes) -> None:
    if target.kind == "stdout":
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stdout (a test's capture): it takes text
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()
        else:
            out.write(data)
            out.flush()
        return
    if target.kind == "fd":
        if target.path == "2":
            sys.stderr.flush()
        _write_all(int(target.path), data)
        return
    fd = os.open(target.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _prepare(target: Target, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside the target, on disk, with the final mode."""
    folder = os.path.dirname(target.path) or "."
    fd, tmp = new_temp(folder, os.path.basename(target.path))
    try:
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            st = os.stat(target.path)
        except FileNotFoundError:
            os.chmod(tmp, 0o666 & ~_umask())
        else:
            os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o777)
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):  # only root may give a file away
                    os.chown(tmp, st.st_uid, st.st_gid)
    except BaseException:
        drop(tmp)
        raise
    return tmp


def _backup(path: str) -> str | None:
    """A second name for the current file (a hard link, else a copy), to put it back on failure."""
    if not os.path.exists(path):
        return None
    fd, name = new_temp(os.path.dirname(path) or ".", os.path.basename(path))
    os.close(fd)
    os.unlink(name)
    try:
        os.link(path, name)
    except OSError:
        shutil.copy2(path, name)
    return name


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _named(target: Target, e: OSError) -> OutputError:
    """The error with the output's name (not a temporary file's), in the user's words."""
    if isinstance(e, OutputError):
        return e
    return OutputError(target.shown, e.strerror or str(e), e.errno or errno.EIO)


def write_outputs(items: Sequence[tuple[Target, bytes]]) -> None:
    """Write every output, files all together or not at all, then the streams.

    Files: every temporary file is written and flushed first; then all are renamed into
    place; if one rename fails, the files already renamed get their old content back.
    Streams (FIFOs, devices, standard output) cannot be taken back, so they come last.
    Raises :class:`OutputError` naming the output that failed.
    """
    files = [(t, d) for t, d in items if t.kind == "file"]
    before = registered()
    try:
        temps = []
        for target, data in files:
            try:
                temps.append(_prepare(target, data))
            except OSError as e:
                raise _named(target, e) from None
        with critical_section():
            try:
                backups: list[str | None] = []
                if len(files) > 1:
                    for target, _ in files:
                        try:
                            backups.append(_backup(target.path))
                        except OSError as e:
                            raise _named(target, e) from None
                _rename_all(files, temps, backups)
            finally:
                _drop_new(before)
        for folder in {os.path.dirname(t.path) for t, _ in files}:
            _sync_folder(folder)
    finally:
        _drop_new(before)
    for target, data in items:
        if target.kind != "file":
            try:
                _write_stream(target, data)
            except BrokenPipeError:
                raise
            except OSError as e:
                raise _named(target, e) from None


def _drop_new(before: set[str]) -> None:
    """Remove the temporary files made since ``before`` that were not renamed into place."""
    for path in registered() - before:
        drop(path)


def _rename_all(files: Sequence[tuple[Target, bytes]], temps: list[str], backups: list[str | None]) -> None:
    """Rename each temporary file over its target; on any failure put the renamed ones back."""
    done = 0
    try:
        for (target, _), tmp in zip(files, temps):
            try:
                os.replace(tmp, target.path)
            except OSError as e:
                raise _named(target, e) from None
            forget(tmp)
            done += 1
    except BaseException:
        for i in reversed(range(done)):
            path = files[i][0].path
            backup = backups[i] if i < len(backups) else None
            with contextlib.suppress(OSError):
                if backup is None:
                    os.unlink(path)
                else:
                    os.replace(backup, path)
                    forget(backup)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write one output (see :func:`plan` and :func:`write_outputs`); ``OSError`` if it cannot be."""
    write_outputs([(plan(path), data)])
