"""Files: new, open, save, save as, recent files, unsaved-changes prompts,
autosave to a recovery file and crash recovery.

Saving is atomic (``simulation.fileformat.atomic_write_text``, like Qt's QSaveFile: a
temporary file, flushed, renamed over the target) and checked first: the text about to
be written is read back by the loader, so the designer never writes a file it cannot
reopen. A Save that fails is a dialog; an autosave that fails is a status-bar message.
A file that cannot be read shows the loader's message in a dialog; the current
document stays open. Recovery files are described in :mod:`designer.recovery`.

A PNG exported by ScaleLab carries its lesson (``simulation.png_embed``): opening it
restores the topology as an untitled lesson named after the picture (Save asks for a
``.scalelab`` name beside it), so the picture itself is never overwritten with JSON.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from simulation.document import Document
from simulation.fileformat import FILE_SUFFIX, atomic_write_text, dumps, load
from simulation.layout import arranged
from simulation.params import FormatError
from simulation.png_embed import is_png

from . import recovery
from .busy import Cancelled, run_in_background
from .lessons import is_built_in
from .validation import writable_text

FILE_FILTER = "ScaleLab lessons (*.scalelab);;All files (*)"
OPEN_FILTER = ("ScaleLab lessons and pictures (*.scalelab *.png);;ScaleLab lessons (*.scalelab);;"
               "Pictures exported by ScaleLab (*.png);;All files (*)")
MAX_RECENT = 10
AUTOSAVE_MS = 30_000


def is_picture(path: Path) -> bool:
    """Whether ``path`` starts like a PNG (whatever its name ends with)."""
    try:
        with open(path, "rb") as f:
            return is_png(f.read(8))
    except OSError:
        return False


def recovery_dir() -> Path:
    return recovery.recovery_dir()


class FileManager(QObject):
    """The file side of one main window."""

    pathChanged = Signal()     # the document's file (or name) changed
    recentChanged = Signal()
    dirtyChanged = Signal()
    message = Signal(str)      # status-bar text (autosave problems)

    def __init__(self, window: QWidget, controller) -> None:
        super().__init__(window)
        self._window = window
        self._controller = controller
        self.path: Path | None = None
        self.name = "untitled.scalelab"
        self.picture: Path | None = None   # the PNG the untitled lesson was read from (Save As starts beside it)
        self._forced_dirty = False   # e.g. a restored recovery file: modified though the stack is clean
        self.session = recovery.new_session_name()
        self._lock = None           # QLockFile held while this session has a recovery file
        self.autosave_error = ""
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
        self.picture = None
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
        filename, _ = QFileDialog.getOpenFileName(self._window, "Open lesson", start, OPEN_FILTER)
        return bool(filename) and self.open_path(filename, ask=False)

    def open_path(self, filename: str | os.PathLike, ask: bool = True) -> bool:
        """Open a file; on a broken file show the loader's message and keep the current document."""
        if ask and not self.maybe_save():
            return False
        path = Path(filename)
        try:
            doc = run_in_background(self._window, "Opening", f"Reading {path.name}…", load, path)
        except Cancelled:
            self.message.emit(f"Opening {path.name} was cancelled.")
            return False
        except FormatError as err:
            QMessageBox.critical(self._window, "Cannot open file",
                                 f"ScaleLab cannot open {path.name}:\n\n{err}")
            return False
        except Exception as err:  # noqa: BLE001 - a bug must not kill the window
            QMessageBox.critical(self._window, "Cannot open file",
                                 f"ScaleLab cannot open {path.name}:\n\n{type(err).__name__}: {err}")
            return False
        if is_picture(path):
            # The topology a picture carries: an untitled lesson, never saved over the PNG.
            self._set_document(doc, None, path.stem + FILE_SUFFIX)
            self.picture = path.resolve()
            self.add_recent(path.resolve())
            self.message.emit(f"Opened the topology carried by {path.name}; Save asks for a {FILE_SUFFIX} name.")
        elif is_built_in(path):
            # A built-in lesson: opened as a copy, Save asks where to put it.
            self._set_document(doc, None, path.name)
        else:
            self._set_document(doc, path.resolve(), path.name)
            self.add_recent(path.resolve())
        self._arrange_stacked(path.name)
        return True

    def _arrange_stacked(self, name: str) -> None:
        """Nodes sharing one position (a file written without positions) are laid out by
        level, as one step the user can undo, and the status bar says so."""
        doc = self._controller.document
        moves = arranged(doc)
        if moves:
            self._controller.move_nodes({i: ((doc.node(i).x, doc.node(i).y), p) for i, p in moves.items()})
            self.message.emit(f"{len(moves)} nodes of {name} were on top of each other (no positions in the file): "
                              f"laid out by level. Edit ▸ Undo puts them back.")

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._write(self.path)

    def save_as(self) -> bool:
        folder = self.path.parent if self.path else self.picture.parent if self.picture else Path(
            QStandardPaths.writableLocation(
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
            text = writable_text(self._controller.document)
        except FormatError as err:
            QMessageBox.critical(self._window, "Cannot save",
                                 f"ScaleLab did not save {path.name}: the file could not be opened again.\n\n"
                                 f"{err}\n\nChange this and save again.")
            return False
        except Exception as err:  # noqa: BLE001 - a bug must not lose the work: say so, keep the window
            QMessageBox.critical(self._window, "Cannot save",
                                 f"ScaleLab could not save {path.name}:\n\n{type(err).__name__}: {err}")
            return False
        try:
            atomic_write_text(path, text)
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
    @property
    def recovery_path(self) -> Path:
        """This session's recovery file (see :mod:`designer.recovery`)."""
        return recovery.recovery_dir() / f"{self.session}.scalelab"

    def autosave(self) -> bool:
        """Write the document to this session's recovery file when it has unsaved changes.

        Never raises: a failure is reported in the status bar (``message``) and kept in
        ``autosave_error``; the next autosave tries again."""
        if not self.is_modified():
            return False
        try:
            text = dumps(self._controller.document)
            text.encode("utf-8")
            path = self.recovery_path
            path.parent.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                lock = recovery.lock_for(path)
                if not lock.tryLock(0):
                    raise OSError(f"its lock file {path.with_suffix('.lock').name} is held by another process")
                self._lock = lock
            atomic_write_text(path, text)
            info = {"path": str(self.path) if self.path else None, "name": self.name, "time": time.time(),
                    "title": str(self._controller.document.meta.get("title", ""))}
            atomic_write_text(path.with_suffix(".json"), json.dumps(info))
        except Exception as err:  # noqa: BLE001 - autosave runs on a timer: it must never raise
            reason = err.strerror if isinstance(err, OSError) and err.strerror else f"{err}"
            self.autosave_error = f"Autosave failed, unsaved changes are not protected: {reason}"
            self.message.emit(self.autosave_error)
            return False
        if self.autosave_error:
            self.message.emit("Autosave works again.")
        self.autosave_error = ""
        return True

    def remove_recovery(self) -> None:
        for f in (self.recovery_path, self.recovery_path.with_suffix(".json")):
            try:
                f.unlink()
            except OSError:
                pass
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def offer_recovery(self, into_this_window: bool = True,
                       open_elsewhere: Callable[[recovery.Recoverable], bool] | None = None,
                       choose: Callable | None = None) -> bool:
        """After a crash: offer every crashed session's work, newest first.

        The first restored lesson opens in this window when ``into_this_window`` (nothing
        else was opened), the others through ``open_elsewhere`` (a new window). ``choose``
        stands in for the dialog: ``choose(entries, damaged) -> (choice, chosen entries)``.
        Returns True if a lesson was restored into this window.
        """
        try:
            entries, damaged = run_in_background(self._window, "Recovery", "Reading the recovery files…",
                                                 recovery.crashed_sessions, {self.recovery_path})
        except Exception as err:  # noqa: BLE001 - recovery must never stop the app from starting
            self.message.emit(f"The recovery files could not be read: {type(err).__name__}: {err}")
            return False
        if not entries and not damaged:
            return False
        if choose is None:
            choose = self._ask_recovery
        choice, chosen = choose(entries, damaged)
        from .recovery_dialog import RecoveryDialog
        restored_here = False
        for entry in entries:
            if entry not in chosen:
                entry.release()                    # kept for the next launch
            elif choice == RecoveryDialog.DISCARD:
                entry.remove()
            elif choice == RecoveryDialog.RESTORE:
                if into_this_window and not restored_here:
                    ok = self.restore(entry)
                    restored_here = ok
                else:
                    ok = bool(open_elsewhere and open_elsewhere(entry))
                if ok:
                    entry.remove()
                else:
                    entry.release()
            else:
                entry.release()
        return restored_here

    def _ask_recovery(self, entries, damaged):
        from .recovery_dialog import RecoveryDialog
        dialog = RecoveryDialog(entries, damaged, self._window)
        dialog.exec()
        return dialog.choice, dialog.checked()

    def restore(self, entry: recovery.Recoverable) -> bool:
        """Show a crashed session's work in this window, marked modified, and protect it
        at once with this session's own recovery file. False (and the old file is kept)
        if it cannot be protected."""
        path = Path(entry.original) if entry.original else None
        self._set_document(entry.document, path, entry.name, dirty=True)
        return self.autosave()
