"""Files: new, open, save, save as, recent files, unsaved-changes prompts,
autosave to a recovery file and crash recovery.

Saving is atomic (``simulation.fileformat.save``). A file that cannot be read
shows the loader's message in a dialog; the current document stays open.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from simulation.document import Document
from simulation.fileformat import FILE_SUFFIX, atomic_write_text, dumps, load, loads, save
from simulation.params import FormatError

from .lessons import is_built_in

FILE_FILTER = "ScaleLab lessons (*.scalelab);;All files (*)"
MAX_RECENT = 10
AUTOSAVE_MS = 30_000


def recovery_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".scalelab") / "recovery"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def orphaned_recovery_files() -> list[Path]:
    """Recovery files left by a ScaleLab that did not close cleanly, newest first."""
    folder = recovery_dir()
    if not folder.is_dir():
        return []
    found = []
    for f in folder.glob("autosave-*.scalelab"):
        try:
            pid = int(f.stem.split("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            found.append(f)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


class FileManager(QObject):
    """The file side of one main window."""

    pathChanged = Signal()     # the document's file (or name) changed
    recentChanged = Signal()
    dirtyChanged = Signal()

    def __init__(self, window: QWidget, controller) -> None:
        super().__init__(window)
        self._window = window
        self._controller = controller
        self.path: Path | None = None
        self.name = "untitled.scalelab"
        self._forced_dirty = False   # e.g. a restored recovery file: modified though the stack is clean
        self.recovery_path = recovery_dir() / f"autosave-{os.getpid()}.scalelab"
        self._autosave = QTimer(self)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self.autosave)
        self._autosave.start()

    # ----- state -----------------------------------------------------------------------
    def is_modified(self) -> bool:
        return bool(self._forced_dirty or self._controller.is_modified())

    def _set_document(self, doc: Document, path: Path | None, name: str, dirty: bool = False) -> None:
        self._controller.set_document(doc)
        self._controller.undo_stack.clear()
        self._controller.undo_stack.setClean()
        self.path = path
        self.name = name
        self._forced_dirty = dirty
        self.pathChanged.emit()
        self.dirtyChanged.emit()

    def _mark_saved(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self._forced_dirty = False
        self._controller.undo_stack.setClean()
        self.remove_recovery()
        self.add_recent(path)
        self.pathChanged.emit()
        self.dirtyChanged.emit()

    # ----- commands --------------------------------------------------------------------
    def new(self) -> bool:
        if not self.maybe_save():
            return False
        self._set_document(Document(), None, "untitled.scalelab")
        return True

    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        start = str(self.path.parent) if self.path else str(Path.home())
        filename, _ = QFileDialog.getOpenFileName(self._window, "Open lesson", start, FILE_FILTER)
        return bool(filename) and self.open_path(filename, ask=False)

    def open_path(self, filename: str | os.PathLike, ask: bool = True) -> bool:
        """Open a file; on a broken file show the loader's message and keep the current document."""
        if ask and not self.maybe_save():
            return False
        path = Path(filename)
        try:
            doc = load(path)
        except FormatError as err:
            QMessageBox.critical(self._window, "Cannot open file",
                                 f"ScaleLab cannot open {path.name}:\n\n{err}")
            return False
        except Exception as err:  # noqa: BLE001 - a bug must not kill the window
            QMessageBox.critical(self._window, "Cannot open file",
                                 f"ScaleLab cannot open {path.name}:\n\n{type(err).__name__}: {err}")
            return False
        if is_built_in(path):
            # A built-in lesson: opened as a copy, Save asks where to put it.
            self._set_document(doc, None, path.name)
        else:
            self._set_document(doc, path.resolve(), path.name)
            self.add_recent(path.resolve())
        return True

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._write(self.path)

    def save_as(self) -> bool:
        folder = self.path.parent if self.path else Path(QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.DocumentsLocation) or Path.home())
        filename, _ = QFileDialog.getSaveFileName(self._window, "Save lesson as",
                                                  str(folder / self.name), FILE_FILTER)
        if not filename:
            return False
        path = Path(filename)
        if path.suffix != FILE_SUFFIX:
            path = path.with_name(path.name + FILE_SUFFIX)
        return self._write(path)

    def _write(self, path: Path) -> bool:
        try:
            save(self._controller.document, path)
        except OSError as err:
            QMessageBox.critical(self._window, "Cannot save",
                                 f"ScaleLab could not save {path}:\n\n{err.strerror or err}")
            return False
        self._mark_saved(path.resolve())
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved changes. True when it is fine to go on (saved or discarded)."""
        if not self.is_modified():
            return True
        answer = QMessageBox.warning(
            self._window, "Unsaved changes",
            f"{self.name} has changes that are not saved.\n\nSave them before going on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # ----- recent files ----------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = QSettings().value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        QSettings().setValue("recentFiles", items[:MAX_RECENT])
        self.recentChanged.emit()

    def clear_recent(self) -> None:
        QSettings().setValue("recentFiles", [])
        self.recentChanged.emit()

    # ----- autosave and recovery -------------------------------------------------------
    def autosave(self) -> bool:
        """Write the document to this window's recovery file when it has unsaved changes."""
        if not self.is_modified():
            return False
        try:
            self.recovery_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.recovery_path, dumps(self._controller.document))
            info = {"path": str(self.path) if self.path else None, "name": self.name, "time": time.time()}
            atomic_write_text(self.recovery_path.with_suffix(".json"), json.dumps(info))
        except OSError:
            return False
        return True

    def remove_recovery(self) -> None:
        for f in (self.recovery_path, self.recovery_path.with_suffix(".json")):
            try:
                f.unlink()
            except OSError:
                pass

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest orphaned recovery file. True if it was restored."""
        files = orphaned_recovery_files()
        if not files:
            return False
        newest = files[0]
        info_file = newest.with_suffix(".json")
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.get("time", newest.stat().st_mtime)))
        name = info.get("name") or "an unsaved lesson"
        answer = QMessageBox.question(
            self._window, "Recover unsaved changes?",
            f"ScaleLab did not close properly last time.\n\nRestore the unsaved changes to {name} "
            f"(autosaved {when})?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        restored = False
        if answer == QMessageBox.StandardButton.Yes:
            try:
                doc = loads(newest.read_text(encoding="utf-8"))
            except (OSError, FormatError) as err:
                QMessageBox.critical(self._window, "Cannot recover", f"The recovery file is damaged:\n\n{err}")
            else:
                path = Path(info["path"]) if info.get("path") else None
                self._set_document(doc, path, name, dirty=True)
                self.autosave()   # now it is this window's recovery file
                restored = True
        for f in files:
            for g in (f, f.with_suffix(".json")):
                try:
                    g.unlink()
                except OSError:
                    pass
        return restored
