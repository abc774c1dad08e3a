"""Long work off the GUI thread: the window keeps answering, a progress dialog appears
when the work is long, errors come back to the caller, Cancel drops the result."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QProgressDialog, QPushButton

from designer.busy import Cancelled, run_in_background
from tests.designer.responsiveness import Heartbeat


def python_work(seconds: float, result=None):
    """Pure Python (holds the GIL between switches), like reading or compiling a lesson."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(range(200))
    if isinstance(result, Exception):
        raise result
    return result if result is not None else n


def test_long_work_shows_a_progress_dialog_and_the_loop_keeps_answering(qtbot):
    seen = []

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        seen.append(dialog.labelText() if isinstance(dialog, QProgressDialog) else None)
    QTimer.singleShot(800, look)
    beat = Heartbeat().start()
    assert run_in_background(None, "Compiling", "Compiling the topology…", python_work, 1.5, 42) == 42
    gap = beat.stop()
    assert seen == ["Compiling the topology…"]
    assert gap < 0.5, f"the window did not answer for {gap:.2f} s"      # a 1.5 s job in one call: 1.5 s
    assert beat.beats >= 10
    assert QApplication.activeModalWidget() is None                      # the dialog is gone


def test_quick_work_shows_nothing_and_errors_reach_the_caller(qtbot):
    assert run_in_background(None, "Opening", "Reading…", python_work, 0.0, "done") == "done"
    with pytest.raises(ValueError, match="bad file"):
        run_in_background(None, "Opening", "Reading…", python_work, 0.0, ValueError("bad file"))


def test_cancel_drops_the_result(qtbot):
    def cancel() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QProgressDialog):
            qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)   # its Cancel button
        else:
            QTimer.singleShot(50, cancel)
    QTimer.singleShot(500, cancel)
    with pytest.raises(Cancelled):
        run_in_background(None, "Opening", "Reading…", python_work, 2.0)
