"""Long work (reading a big file, compiling a big topology) off the GUI thread.

:func:`run_in_background` runs a function on a worker thread and keeps the event loop
turning while it waits, so the window repaints and timers fire. Until the work has
taken ``show_after_s`` user input is held back (so nothing can change what the worker
reads); after that a modal progress dialog shows what is happening and offers Cancel
(the worker's result is then dropped). The work must be pure Python/numpy that does not
touch Qt objects; the worker holds the GIL only in short turns, so the GUI stays live.
Many independent runs go to worker processes instead (:func:`worker_processes`), which
leave this process's interpreter to the window.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from simulation.parallel import cpu_count, prepare

SHOW_AFTER_S = 0.4


class Cancelled(Exception):
    """The user pressed Cancel in the progress dialog."""


def run_in_background(parent: QWidget | None, title: str, label: str, fn: Callable[..., Any], *args: Any,
                      show_after_s: float = SHOW_AFTER_S, progress: Callable[[], float] | None = None,
                      on_cancel: Callable[[], None] | None = None) -> Any:
    """``fn(*args)`` on a worker thread; returns its result or raises its exception
    (or :class:`Cancelled`). With ``progress`` (a share done, 0..1, read on the GUI
    thread) the dialog's bar fills up; ``on_cancel`` is called on Cancel, to tell the
    work to stop early."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = err
        finally:
            done.set()

    worker = threading.Thread(target=work, name=f"scalelab: {title}", daemon=True)
    worker.start()
    app = QApplication.instance()
    start = time.monotonic()
    dialog: QProgressDialog | None = None
    try:
        while not done.wait(0.005):
            if app is None:
                continue
            if dialog is None and time.monotonic() - start >= show_after_s:
                dialog = QProgressDialog(label, "Cancel", 0, 0 if progress is None else 1000, parent)   # 0..0: busy
                dialog.setObjectName("busyDialog")
                dialog.setWindowTitle(title)
                dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
                dialog.setMinimumDuration(0)
                dialog.show()
            if dialog is None:
                app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 20)
            else:
                if progress is not None:
                    dialog.setValue(int(1000 * min(max(progress(), 0.0), 0.999)))
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
                if dialog.wasCanceled():
                    if on_cancel is not None:
                        on_cancel()
                    raise Cancelled(f"{title}: cancelled")
    finally:
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def worker_processes(runs: int) -> int:
    """Worker processes for ``runs`` independent simulations (the Load test's rates, the goals'
    failure runs): one per core, at most one per run. 1 (one after the other on the caller's
    worker thread) in the frozen desktop bundle, whose GUI has not been tried with them."""
    if getattr(sys, "frozen", False):
        return 1
    return max(1, min(cpu_count(), int(runs)))


def prepare_workers() -> None:
    """Start the worker processes' fork server now, with the compiled kernels (the designer starts
    a pool per Load test and per goals check: each then starts in ~0.1 s), unless the runs will
    go one after the other (one core, the desktop bundle)."""
    if worker_processes(2) > 1:
        prepare(kernels=True)
