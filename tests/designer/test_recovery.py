"""Crash recovery as a user meets it: sessions that really crashed (SIGKILL), all of their
work offered newest first, a damaged file set aside and reported, recovery offered
also when ScaleLab is launched with a file, nothing deleted unseen."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from designer import recovery
from designer.recovery_dialog import RecoveryDialog
from simulation.fileformat import load
from tests.designer.main_window_support import LESSONS, Dialogs, isolate_profile

ROOT = Path(__file__).resolve().parents[2]

CRASHING_SESSION = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths
from designer.app import make_app
app = make_app([])
QStandardPaths.setTestModeEnabled(True)
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2] + "/settings")
from designer import recovery
recovery.recovery_dir = lambda: Path(sys.argv[2]) / "recovery"
from designer.main_window import MainWindow
w = MainWindow()
assert w.files.open_path(sys.argv[3], ask=False)
w.controller.set_meta(title=sys.argv[4])
w.controller.set_params(["web1"], {"capacity_rps": float(sys.argv[5])})
assert w.files.autosave()
os.kill(os.getpid(), signal.SIGKILL)       # a crash: no cleanup at all
"""


def crash_a_session(tmp_path: Path, title: str, capacity: float) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", CRASHING_SESSION, str(ROOT), str(tmp_path),
                           str(LESSONS / "starter.scalelab"), title, str(capacity)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr


def answer_dialog(qtbot, button: str, uncheck: tuple[int, ...] = (), seen: list | None = None) -> None:
    """When the recovery dialog opens, uncheck rows, remember what it shows, click ``button``."""
    def act() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, RecoveryDialog):
            QTimer.singleShot(20, act)
            return
        if seen is not None:
            seen.append([dialog.list.item(i).text() for i in range(dialog.list.count())])
            note = dialog.findChild(QLabel, "recoveryDamaged")
            seen.append(note.text() if note is not None else "")
        for row in uncheck:
            dialog.list.item(row).setCheckState(Qt.CheckState.Unchecked)
        qtbot.mouseClick(getattr(dialog, f"{button}_button"), Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, act)


@pytest.fixture
def profile(tmp_path, monkeypatch):
    isolate_profile(tmp_path, monkeypatch)
    dialogs = Dialogs(monkeypatch)
    dialogs.answer = QMessageBox.StandardButton.Discard
    return tmp_path


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_two_crashed_sessions_are_both_offered_newest_first_even_when_launched_with_a_file(qtbot, profile):
    crash_a_session(profile, "Older session", 111)
    time.sleep(1.1)                                              # distinct autosave times
    crash_a_session(profile, "Newer session", 222)
    folder = profile / "recovery"
    assert len([f for f in files_in(folder) if f.endswith(".scalelab")]) == 2
    from designer.app import start
    seen: list = []
    answer_dialog(qtbot, "restore", seen=seen)
    win = start(str(LESSONS / "lb_demo.scalelab"))               # a double-click on a file
    qtbot.addWidget(win)
    rows = seen[0]
    assert [r.split(" — ")[0] for r in rows] == ["Newer session", "Older session"]
    assert all("starter.scalelab · autosaved 20" in r for r in rows)
    # The file given stays in this window; both sessions come back, each in a window of its own.
    assert win.windowTitle() == "lb_demo.scalelab[*]"
    restored = {w.controller.document.meta["title"]: w for w in win.other_windows}
    assert set(restored) == {"Newer session", "Older session"}
    assert restored["Older session"].controller.document.params("web1")["capacity_rps"] == 111
    assert restored["Newer session"].controller.document.params("web1")["capacity_rps"] == 222
    for w in restored.values():
        qtbot.addWidget(w)
        assert w.isWindowModified()
        # Protected again at once by the new session's own file; the crashed ones are gone.
        assert load(w.files.recovery_path).meta["title"] in restored
    left = [f for f in files_in(folder) if f.endswith(".scalelab")]
    assert sorted(left) == sorted(w.files.recovery_path.name for w in restored.values())
    assert not recovery.crashed_sessions()[0]                    # live sessions are never offered
    for w in restored.values():
        w.files.remove_recovery()


def test_a_damaged_recovery_file_is_reported_and_set_aside_never_crashing(qtbot, profile):
    folder = profile / "recovery"
    folder.mkdir()
    damaged = folder / "session-4242-1000-1.scalelab"
    damaged.write_bytes(b"\xff\xfe\x00 not a lesson \x80")
    crash_a_session(profile, "Good session", 150)
    from designer.app import start
    seen: list = []
    answer_dialog(qtbot, "restore", seen=seen)
    win = start(None)
    qtbot.addWidget(win)
    rows, note = seen
    assert len(rows) == 1 and rows[0].startswith("Good session — ")
    assert "1 recovery file could not be read" in note
    assert "session-4242-1000-1.scalelab.damaged: " in note and "not UTF-8 text (bad byte at offset 0)" in note
    assert not damaged.exists()
    assert (folder / "session-4242-1000-1.scalelab.damaged").read_bytes().startswith(b"\xff\xfe")
    assert win.controller.document.meta["title"] == "Good session"     # restored into this window
    win.files.remove_recovery()
    # The next launch does not offer (or report) the damaged file again: no dialog at all.
    again = start(None)
    qtbot.addWidget(again)
    assert again.windowTitle() == "starter.scalelab[*]"


def test_later_keeps_every_session_and_discard_deletes_only_the_checked_ones(qtbot, profile):
    crash_a_session(profile, "First", 101)
    time.sleep(1.1)
    crash_a_session(profile, "Second", 102)
    from designer.app import start
    answer_dialog(qtbot, "later")
    win = start(None)
    qtbot.addWidget(win)
    assert win.windowTitle() == "starter.scalelab[*]"
    assert [e.title for e in recovery.crashed_sessions()[0]] == ["Second", "First"]   # kept, and unlocked again
    for entry in recovery.crashed_sessions()[0]:
        entry.release()
    # Discard with the first row (Second) unchecked: only First goes (the confirmation is
    # answered "Discard" by the Dialogs recorder).
    answer_dialog(qtbot, "discard", uncheck=(0,))
    other = start(None)
    qtbot.addWidget(other)
    left, _ = recovery.crashed_sessions()
    assert [e.title for e in left] == ["Second"]
    for entry in left:
        entry.release()


def test_autosave_failure_is_reported_and_never_raises(qtbot, profile):
    from designer.main_window import MainWindow
    win = MainWindow()
    qtbot.addWidget(win)
    win.open_file(LESSONS / "starter.scalelab")
    (profile / "recovery").write_text("a file where the folder should be")
    win.controller.set_params(["web1"], {"capacity_rps": 90.0})
    assert not win.files.autosave()
    assert win.statusBar().currentMessage().startswith("Autosave failed, unsaved changes are not protected: ")
    (profile / "recovery").unlink()
    assert win.files.autosave()
    assert win.statusBar().currentMessage() == "Autosave works again."
    win.files.remove_recovery()
