"""Files as a user handles them: save, open, broken files, unsaved changes, recovery."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from designer.main_window import MainWindow
from simulation.fileformat import dumps, load
from tests.designer.main_window_support import LESSONS, Dialogs, isolate_profile, open_main_window


def test_save_then_open_round_trips(window, dialogs, tmp_path):
    window.controller.set_params(["web1"], {"capacity_rps": 175.0})
    assert window.isWindowModified()
    dialogs.save_path = str(tmp_path / "mine")          # no suffix typed: it is added
    assert window.file_save()                           # a built-in lesson: Save asks where
    saved = tmp_path / "mine.scalelab"
    assert saved.exists()
    assert window.windowTitle() == "mine.scalelab[*]" and not window.isWindowModified()
    text = saved.read_text(encoding="utf-8")
    assert dumps(load(saved)) == text                   # exact round trip
    window.controller.set_params(["web1"], {"capacity_rps": 50.0})
    window.file_save()                                  # now saves in place, no dialog
    assert load(saved).params("web1")["capacity_rps"] == 50.0
    window.file_new()
    assert window.controller.document.node_ids() == []
    assert window.open_file(saved)
    assert window.controller.document.params("web1")["capacity_rps"] == 50.0
    assert window.files.recent_files()[0] == str(saved.resolve())


def test_broken_file_shows_the_loaders_message_and_keeps_the_window(window, dialogs, tmp_path):
    broken = tmp_path / "broken.scalelab"
    data = json.loads((LESSONS / "starter.scalelab").read_text())
    data["nodes"][2]["params"]["capacity_rps"] = -5
    broken.write_text(json.dumps(data))
    assert not window.open_file(broken)
    kind, title, text = dialogs.shown[-1]
    assert kind == "critical"
    assert 'node "web1", capacity_rps: must be > 0, got -5' in text
    assert window.isVisible()
    assert "web1" in window.controller.document      # the starter is still open
    (tmp_path / "junk.scalelab").write_text("{ not json")
    assert not window.open_file(tmp_path / "junk.scalelab")
    assert "not valid JSON" in dialogs.shown[-1][2]


def test_unsaved_prompt_on_close(window, dialogs):
    window.controller.add_node("cache", 100, 400)
    dialogs.answer = QMessageBox.StandardButton.Cancel
    assert not window.close()
    assert dialogs.shown[-1][:2] == ("warning", "Unsaved changes")
    assert window.isVisible()
    dialogs.answer = QMessageBox.StandardButton.Discard
    assert window.close()


def test_unsaved_prompt_on_new_and_open(window, dialogs):
    window.controller.add_node("cache", 100, 400)
    dialogs.answer = QMessageBox.StandardButton.Cancel
    window.file_new()
    assert "cache1" in window.controller.document
    dialogs.open_path = str(LESSONS / "lb_demo.scalelab")
    window.file_open()
    assert "cache1" in window.controller.document
    dialogs.answer = QMessageBox.StandardButton.Discard
    window.file_open()
    assert "cache1" not in window.controller.document and "lb" in window.controller.document


def test_clean_save_removes_the_recovery_file(window, dialogs, tmp_path):
    window.controller.add_node("server", 0, 500)
    window.files.autosave()
    assert window.files.recovery_path.exists()
    dialogs.save_path = str(tmp_path / "x.scalelab")
    window.file_save()
    assert not window.files.recovery_path.exists()


def test_dropping_a_file_on_the_window_opens_it(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(LESSONS / "sticky_sessions.scalelab"))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.windowTitle() == "sticky_sessions.scalelab[*]", timeout=2000)
    assert window.controller.document.params("lb")["affinity"] == "sticky"


def test_examples_menu_lists_the_built_in_lessons(window):
    titles = [a.text() for a in window.examples_menu.actions()]
    assert titles[0].startswith("Starter")
    assert any("Lecture demo" in t for t in titles) and any("Sticky" in t for t in titles)
    for lesson in LESSONS.glob("*.scalelab"):
        load(lesson)                                    # every shipped lesson is valid


def test_start_opens_the_file_given_or_the_starter(qtbot, dialogs, tmp_path, monkeypatch):
    from designer.app import start
    isolate_profile(tmp_path, monkeypatch)
    win = start(str(LESSONS / "lb_demo.scalelab"))
    qtbot.addWidget(win)
    assert win.windowTitle() == "lb_demo.scalelab[*]"
    other = start(None)
    qtbot.addWidget(other)
    assert other.windowTitle() == "starter.scalelab[*]"
    broken = tmp_path / "b.scalelab"
    broken.write_text("[]")
    third = start(str(broken))                  # a broken file: message, then the starter
    qtbot.addWidget(third)
    assert dialogs.shown[-1][0] == "critical" and "must contain a JSON object" in dialogs.shown[-1][2]
    assert third.windowTitle() == "starter.scalelab[*]"


def test_dock_layout_is_remembered(qtbot, window):
    window.removeDockWidget(window.docks["notes"])
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.docks["notes"])
    window.docks["notes"].show()
    window.controller.undo_stack.setClean()
    assert window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.dockWidgetArea(again.docks["notes"]) == Qt.DockWidgetArea.RightDockWidgetArea
    again.reset_layout()
    assert again.dockWidgetArea(again.docks["notes"]) == Qt.DockWidgetArea.BottomDockWidgetArea


def test_a_file_without_positions_opens_laid_out_and_undo_puts_the_pile_back(window, dialogs, tmp_path):
    """A file written by a script, with no x and y: its nodes would all sit at one point.
    They open laid out left to right by level (apart on the canvas, each named by its id),
    as one step that marks the file modified and that Undo takes back; the status bar says
    what happened."""
    path = tmp_path / "scripted.scalelab"
    nodes = [("users", "client"), ("lb", "load_balancer"), ("web", "server"), ("api", "server"), ("db", "database")]
    path.write_text(json.dumps({
        "format": "scalelab", "version": 1,
        "nodes": [{"id": i, "kind": k} for i, k in nodes],
        "edges": [{"source": a, "target": b} for a, b in (("users", "lb"), ("lb", "web"), ("lb", "api"),
                                                          ("web", "db"), ("api", "db"))]}))
    assert window.open_file(path)
    doc = window.controller.document
    scene = window.canvas.canvas_scene
    boxes = [scene.nodes[i].sceneBoundingRect() for i, _ in nodes]
    assert not any(a.intersects(b) for k, a in enumerate(boxes) for b in boxes[k + 1:])
    assert scene.nodes["web"].label_layout(1.0)[1] == ["web"]   # no label in the file: its id is shown
    x = {i: doc.node(i).x for i, _ in nodes}
    assert x["users"] < x["lb"] < x["web"] == x["api"] < x["db"]
    assert window.isWindowModified() and "laid out by level" in window.statusBar().currentMessage()
    window.controller.undo_stack.undo()
    assert {(doc.node(i).x, doc.node(i).y) for i, _ in nodes} == {(0.0, 0.0)}
    assert not window.isWindowModified()


def test_a_lesson_opens_where_its_author_put_each_node(window, dialogs):
    """The built-in lessons have their positions: nothing moves, nothing is modified."""
    for lesson in sorted(LESSONS.glob("*.scalelab")):
        before = {n.id: (n.x, n.y) for n in load(lesson).nodes()}
        assert window.files.open_path(lesson, ask=False)
        doc = window.controller.document
        assert {n.id: (n.x, n.y) for n in doc.nodes()} == before and not window.isWindowModified(), lesson.name
