"""The main window as a user meets it: title, docks, menus, run, fail, notes."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


from tests.designer.main_window_support import LESSONS, Dialogs, node_pixel, open_main_window


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    qtbot.waitExposed(win)
    yield win
    win.run.reset()
    win.files.remove_recovery()


def test_layout_title_and_notes(window):
    assert window.windowTitle() == "starter.scalelab[*]"
    assert not window.isWindowModified()
    areas = {name: window.dockWidgetArea(dock) for name, dock in window.docks.items()}
    assert areas["palette"] == Qt.DockWidgetArea.LeftDockWidgetArea
    assert areas["inspector"] == Qt.DockWidgetArea.RightDockWidgetArea
    assert areas["plots"] == areas["notes"] == Qt.DockWidgetArea.BottomDockWidgetArea
    assert "single points of failure" in window.notes.toPlainText()
    assert window.notes.document().toMarkdown().startswith("# Starter")


def test_edit_marks_the_title_and_undo_text_shows_in_the_menu(window):
    window.controller.add_node("server", 300, 500)
    assert window.isWindowModified()
    assert window.actions_["undo"].text() == "&Undo Add Server"
    window.actions_["undo"].trigger()
    assert not window.isWindowModified()


def test_selecting_a_node_fills_the_inspector_and_highlights_its_curve(window):
    window.canvas.select_ids(["web2"])
    assert window.inspector.selection() == ["web2"]
    window.run.step(2.0)
    assert window.plots.highlighted_width("web2") > window.plots.highlighted_width("web1")


def test_run_draws_curves_and_colours_nodes(qtbot, window):
    idle = node_pixel(window, "web1")
    window.speed_box.setCurrentIndex(window.speed_box.findText("Max"))
    window.actions_["run"].trigger()
    assert window.run.state == "running"
    qtbot.waitUntil(lambda: window.run.now >= 10 and window.plots.has_data(), timeout=15000)
    qtbot.wait(250)        # at least one more frame
    window.actions_["run"].trigger()       # pause
    assert window.run.state == "paused"
    xs, ys = window.plots.curves["served"].getData()
    assert len(xs) >= 10 and max(ys) > 100
    assert len(window.plots.util_curves["web1"].getData()[0]) >= 10
    assert "t = " in window.time_label.text() and "paused" in window.time_label.text()
    qtbot.waitUntil(lambda: node_pixel(window, "web1") != idle, timeout=3000)
    window.actions_["reset"].trigger()
    assert not window.plots.has_data()
    assert len(window.plots.curves["served"].getData()[0] or []) == 0


def test_window_answers_during_a_run(qtbot, window):
    """Each engine slice stays short, so that clicks are handled within 100 ms."""
    window.speed_box.setCurrentIndex(window.speed_box.findText("Max"))
    window.run.run()
    slices: list[float] = []

    def sample() -> bool:   # one value per frame: a single hiccup of a shared machine is not the engine
        slices.append(window.run.last_slice_s)
        return window.run.now >= 3 and len(slices) >= 9

    qtbot.waitUntil(sample, timeout=15000)
    window.run.pause()
    assert sorted(slices)[len(slices) // 2] < 0.1


def test_right_click_fail_during_a_run_raises_failures(qtbot, window):
    window.speed_box.setCurrentIndex(window.speed_box.findText("10×"))
    window.run.run()
    qtbot.waitUntil(lambda: window.run.now >= 2, timeout=10000)
    menu = window.canvas.node_menu("web1")
    fail = next(a for a in menu.actions() if a.text().startswith("Fail"))
    fail.trigger()
    assert "Web 1 failed" in window.statusBar().currentMessage()       # its label, not its id
    window.speed_box.setCurrentIndex(window.speed_box.findText("Max"))
    qtbot.waitUntil(lambda: window.run.now >= 12, timeout=15000)
    window.run.pause()
    failed = window.plots.curves["failed"].getData()[1]
    assert failed is not None and max(failed) > 0
    assert window.run.sim.node_states()["web1"].failed
    assert window.plots._cause_in_legend      # the cause shows up in the legend


def test_fail_before_running_says_what_happens(window):
    window.canvas.failRequested.emit("web3")
    assert "Press Run" in window.statusBar().currentMessage()
    assert window.run.sim.node_states()["web3"].failed


def test_compile_error_is_reported_not_raised(window, dialogs, monkeypatch):
    from designer import run_controller

    class Broken:
        class Simulation:
            def __init__(self, doc):
                raise ValueError("server web1 has no path to a client")
    monkeypatch.setattr(run_controller, "engine", lambda: Broken)
    window.run.run()
    assert window.run.state == "stopped"
    assert "no path to a client" in window.statusBar().currentMessage()
    assert dialogs.kinds() == ["warning"]


def test_inspector_edit_during_a_run_reaches_the_engine(qtbot, window, monkeypatch):
    window.run.step(1.0)
    seen = []
    monkeypatch.setattr(window.run.sim, "update_document", lambda doc: seen.append(doc.params("web1")["capacity_rps"]))
    window.canvas.select_ids(["web1"])
    window.inspector.rows["capacity_rps"].editor.widget.setValue(300)
    qtbot.waitUntil(lambda: seen == [300], timeout=2000)


def test_about_box_shows_the_version(window, dialogs):
    import simulation
    window.actions_["about"].trigger()
    assert dialogs.shown[-1][0] == "about" and simulation.__version__ in dialogs.shown[-1][2]


def test_shortcuts(window):
    keys = {name: window.actions_[name].shortcut().toString() for name in
            ("new", "open", "save", "save_as", "undo", "copy", "cut", "paste", "duplicate", "run", "fit")}
    assert keys == {"new": "Ctrl+N", "open": "Ctrl+O", "save": "Ctrl+S", "save_as": "Ctrl+Shift+S",
                    "undo": "Ctrl+Z", "copy": "Ctrl+C", "cut": "Ctrl+X", "paste": "Ctrl+V",
                    "duplicate": "Ctrl+D", "run": "Space", "fit": "F"}
    assert window.actions_["redo"].shortcut().toString() == "Ctrl+Shift+Z"
    assert "Delete" in window.actions_["delete"].shortcut().toString() or \
        any(s.toString() == "Del" for s in window.actions_["delete"].shortcuts())


def test_opening_lessons_keeps_their_notes_and_is_not_an_edit(window):
    for name in ("lb_demo", "sticky_sessions", "starter"):
        assert window.open_file(LESSONS / f"{name}.scalelab")
        assert window.controller.document.meta["notes"].startswith("#")
        assert window.notes.toPlainText().strip()
        assert not window.isWindowModified() and window.controller.undo_stack.count() == 0


def test_real_compile_error_on_run_and_during_a_run(qtbot, window, dialogs):
    assert window.open_file(LESSONS / "lb_demo.scalelab")
    window.run.step(2.0)
    window.controller.set_params(["web1"], {"sessions": "database"})    # lb_demo has no database
    qtbot.waitUntil(lambda: "cannot be simulated" in window.statusBar().currentMessage(), timeout=2000)
    assert "calls no database" in window.statusBar().currentMessage()
    assert window.run.sim is not None                                   # the run goes on
    window.actions_["reset"].trigger()
    window.actions_["run"].trigger()
    assert window.run.state == "stopped"
    assert dialogs.shown[-1][0] == "warning" and "calls no database" in dialogs.shown[-1][2]
    assert window.isVisible()


def test_space_runs_and_pauses_from_the_canvas(qtbot, window):
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: window.canvas.hasFocus(), timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    assert window.run.state == "running"
    assert window.actions_["run"].text() == "&Pause"
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    assert window.run.state == "paused"
