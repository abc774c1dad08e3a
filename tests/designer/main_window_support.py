"""Shared helpers for the main-window tests: an isolated profile, a window, and
recorders that stand in for modal dialogs."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QPointF, QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog, QMessageBox

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


def isolate_profile(tmp_path: Path, monkeypatch) -> None:
    """Settings, recent files and recovery files go to ``tmp_path``, not the user's profile."""
    from designer import recovery
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("ScaleLabTests")
    QCoreApplication.setApplicationName("ScaleLabTests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QSettings().clear()
    monkeypatch.setattr(recovery, "recovery_dir", lambda: tmp_path / "recovery")


class Dialogs:
    """Records every message box and answers file dialogs; nothing modal ever opens."""

    def __init__(self, monkeypatch) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.Discard
        self.save_path = ""
        self.open_path = ""

        def box(kind):
            def show(parent, title, text, *args, **kwargs):
                self.shown.append((kind, title, text))
                return self.answer
            return staticmethod(show)

        for kind in ("critical", "warning", "question", "information"):
            monkeypatch.setattr(QMessageBox, kind, box(kind))
        monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a: self.shown.append(("about", a[1], a[2]))))
        monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (self.save_path, "")))
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (self.open_path, "")))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.shown]


def node_pixel(window, node_id: str):
    """The colour a user sees inside a node's card (top-left of its fill)."""
    view = window.canvas
    item = view.canvas_scene.nodes[node_id]
    scene_point = item.mapToScene(QPointF(-30 + 9, -30 + 9))
    point = view.mapFromScene(scene_point)
    image = view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    return image.pixelColor(int(point.x() * ratio), int(point.y() * ratio))


def open_main_window(qtbot, tmp_path: Path, monkeypatch, lesson: str = "starter.scalelab", size=None):
    """A main window with its own settings profile, showing a built-in lesson."""
    from designer.main_window import MainWindow
    isolate_profile(tmp_path, monkeypatch)
    win = MainWindow()
    qtbot.addWidget(win)
    if size is not None:
        win.resize(*size)
    win.show()
    assert win.open_file(LESSONS / lesson)
    return win


def wait_settled(qtbot, win) -> None:
    """Wait until the docks stop moving (the window fits the plots dock to the panel's grid)."""
    sizes = []
    qtbot.waitUntil(lambda: sizes.append((win.docks["plots"].size(), win.docks["notes"].size())) or
                    (len(sizes) >= 3 and sizes[-1] == sizes[-2] == sizes[-3]), timeout=3000)


def assert_undo_redo_replays(ctl, snapshots: list[str]) -> None:
    """Undo walks back through ``snapshots`` (saved texts) exactly, redo forward again."""
    from simulation.fileformat import dumps
    for expected in reversed(snapshots[:-1]):
        ctl.undo_stack.undo()
        assert dumps(ctl.document) == expected
    for expected in snapshots[1:]:
        ctl.undo_stack.redo()
        assert dumps(ctl.document) == expected
