"""Plots, status messages and exports as a class sees them (issue 10, finding 7 and the
headless export): manual failures marked like scheduled ones, refusals that go once the
retry works, time axes that line up, exports that end where the run is, a vector SVG,
and no follow-request dots in pictures."""
from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolBar

from designer import export
from simulation.fileformat import load
from tests.designer.main_window_support import LESSONS, open_main_window

LEFT = Qt.MouseButton.LeftButton


def click(qtbot, window, name: str, times: int = 1) -> None:
    """Click a toolbar button (Run, Step, Reset) as a user would."""
    button = window.findChild(QToolBar, "mainToolbar").widgetForAction(window.actions_[name])
    for _ in range(times):
        qtbot.mouseClick(button, LEFT)


def menu_action(window, node_id: str, text: str):
    """The action a node's right-click menu shows with this text."""
    menu = window.canvas.node_menu(node_id)
    texts = [a.text() for a in menu.actions()]
    action = next((a for a in menu.actions() if a.text() == text), None)
    assert action is not None, (text, texts)
    return action


def lesson_window(qtbot, tmp_path, monkeypatch, lesson="lb_demo.scalelab", size=(1600, 1000)):
    win = open_main_window(qtbot, tmp_path, monkeypatch, lesson, size=size)
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    return win


@pytest.fixture
def lb(qtbot, tmp_path, monkeypatch, dialogs):
    win = lesson_window(qtbot, tmp_path, monkeypatch)
    yield win
    win.files.remove_recovery()


def drawn_labels(qtbot, window) -> list[str]:
    """The event labels a user sees over the Throughput plot (painted now)."""
    window.plots.grab()
    return list(window.plots.event_labels.drawn)


def mentioned(labels: list[str]) -> int:
    """How many events the labels name: "fail Web 1 (+2)" names three."""
    return sum(1 + int(m.group(1)) if (m := re.search(r" \(\+(\d+)\)$", text)) else 1 for text in labels)


# ----- 1. manual failures are marked ----------------------------------------------------------
def test_a_node_failed_from_the_menu_is_marked_like_a_scheduled_event(qtbot, lb, dialogs, tmp_path):
    plots = lb.plots
    scheduled = [(30.0, "fail Web 2"), (90.0, "recover Web 2")]
    assert plots.marker_texts() == scheduled
    click(qtbot, lb, "step", 3)
    assert lb.run.now == pytest.approx(3.0)
    menu_action(lb, "web1", "Fail Web 1").trigger()
    click(qtbot, lb, "step", 2)                  # the plots redraw: the marker stays
    menu_action(lb, "web1", "Recover Web 1").trigger()
    click(qtbot, lb, "step", 1)
    expected = [(3.0, "fail Web 1"), (5.0, "recover Web 1")] + scheduled
    for name in plots.plots:
        assert plots.marker_texts(name) == expected, name
    assert "Web 1 recovered at t = 5.0 s." == lb.statusBar().currentMessage()
    labels = drawn_labels(qtbot, lb)
    assert labels[0].startswith("fail Web 1") and mentioned(labels) == 4     # close ones share a label
    # Renamed afterwards: the marker says the name the class sees now.
    lb.controller.set_label("web1", "App A")
    assert plots.marker_texts()[:2] == [(3.0, "fail App A"), (5.0, "recover App A")]

    # A snapshot at t = 6 s shows both clicks, each labelled, and not the events still to come.
    dialogs.save_path = str(tmp_path / "slide.png")
    lb.actions_["export_snapshot"].trigger()
    assert (tmp_path / "slide.png").exists()
    assert plots.event_labels.drawn[0].startswith("fail App A") and mentioned(plots.event_labels.drawn) == 2
    assert plots.marker_texts() == [(3.0, "fail App A"), (5.0, "recover App A")] + scheduled   # back as before
    dialogs.save_path = str(tmp_path / "plots.png")
    lb.actions_["export_plots"].trigger()
    assert plots.event_labels.drawn[0].startswith("fail App A") and mentioned(plots.event_labels.drawn) == 2

    click(qtbot, lb, "reset")                    # a new run: its clicks are gone, the lesson's stay
    assert plots.marker_texts() == scheduled


# ----- 2. refusals do not outlive the retry ---------------------------------------------------
def test_a_refused_connection_message_goes_when_the_retry_succeeds(qtbot, tmp_path, monkeypatch, dialogs):
    from tests.designer.test_canvas import drag, handle, node_center
    win = lesson_window(qtbot, tmp_path, monkeypatch, "starter.scalelab")
    view = win.canvas
    cache = win.controller.add_node("cache", 700, 340)
    view.fit_to_view()
    qtbot.wait(20)
    drag(view, handle(view, "web3"), node_center(view, "users"))
    assert win.statusBar().currentMessage().startswith("Not connected: ")
    assert view.refusal_text() and view.statusTip()          # the banner, and the hover text
    drag(view, handle(view, "web3"), node_center(view, cache))
    assert win.controller.document.has_edge("web3", cache)
    assert win.statusBar().currentMessage() == ""
    assert view.refusal_text() == "" and view.statusTip() == ""
    QTest.mouseMove(view.viewport(), node_center(view, "lb"))
    assert "Not connected" not in win.statusBar().currentMessage()
    win.files.remove_recovery()


def test_a_refused_label_goes_when_the_next_edit_succeeds(qtbot, lb):
    view = lb.canvas

    def rename(text: str) -> None:                    # Rename, type, Return
        menu_action(lb, "web1", "Rename").trigger()
        view.setFocus()
        QTest.keyClicks(view.viewport(), text)
        QTest.keyClick(view.viewport(), Qt.Key.Key_Return)

    rename("x" * 201)                                 # too long: refused
    assert lb.statusBar().currentMessage().startswith("Label not changed")
    rename("App A")
    assert lb.controller.document.node("web1").label == "App A"
    assert lb.statusBar().currentMessage() == ""


def test_the_end_of_the_run_message_goes_with_reset(qtbot, lb):
    lb.controller.set_settings(duration_s=2)
    click(qtbot, lb, "step", 2)
    click(qtbot, lb, "run")                          # at the end: refused, with the reason
    assert "reached its duration" in lb.statusBar().currentMessage()
    click(qtbot, lb, "reset")
    assert lb.statusBar().currentMessage() == ""
    click(qtbot, lb, "step")
    menu_action(lb, "web2", "Fail Web 2").trigger()
    assert lb.statusBar().currentMessage() == "Web 2 failed at t = 1.0 s."    # a label, not an id
    click(qtbot, lb, "reset")                        # that run is gone, and what was said of it
    assert lb.statusBar().currentMessage() == ""


# ----- 3. one time axis ---------------------------------------------------------------------
def stacked_misalignment(plots) -> float:
    """The largest difference, in pixels, between the x of t = 0 (or of the axis's end) on
    plots stacked in one column."""
    xs = plots.time_to_scene_x()
    columns: dict[int, list[str]] = {}
    for name, plot in plots.plots.items():
        columns.setdefault(round(plot.sceneBoundingRect().left()), []).append(name)
    stacked = [names for names in columns.values() if len(names) > 1]
    assert stacked and "utilization" in sum(stacked, []), columns
    return max(max(xs[n][k] for n in names) - min(xs[n][k] for n in names) for names in stacked for k in (0, 1))


def data_widths(plots) -> list[float]:
    xs = plots.time_to_scene_x()
    return [xs[n][1] - xs[n][0] for n in plots.plots]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_stacked_plots_put_a_time_at_the_same_x(qtbot, tmp_path, monkeypatch, dialogs, size):
    win = lesson_window(qtbot, tmp_path, monkeypatch, size=size)
    plots = win.plots
    # Waiting for the relayout (the event loop), not timing anything.
    qtbot.waitUntil(lambda: stacked_misalignment(plots) < 0.5, timeout=3000)   # before a run: no legend names
    win.run.step(35.0)                    # Web 2 failed at 30 s: the Failures legend has names
    assert plots.plots["failures"].legend.texts() and plots.plots["utilization"].legend.texts()
    qtbot.waitUntil(lambda: stacked_misalignment(plots) < 0.5, timeout=3000)
    widths = data_widths(plots)           # about the same seconds per pixel in every column
    assert max(widths) < 1.1 * min(widths), widths
    win.presenter.set_scale(1.5)          # presenter mode: larger ticks and legends, still aligned
    qtbot.waitUntil(lambda: stacked_misalignment(plots) < 0.5, timeout=3000)
    win.presenter.set_scale(1.0)
    win.files.remove_recovery()


# ----- 4. exports end where the run is --------------------------------------------------------
def _ranges_at_render(monkeypatch) -> list[tuple[float, float]]:
    seen: list[tuple[float, float]] = []
    original = export.widget_image

    def recording(widget, scale=2.0):
        plots = getattr(widget, "plots", None)
        if isinstance(plots, dict):
            seen.append(tuple(plots["throughput"].vb.viewRange()[0]))
        return original(widget, scale)

    monkeypatch.setattr(export, "widget_image", recording)
    return seen


def test_a_snapshot_of_a_36_s_run_has_a_36_s_time_axis(qtbot, lb, dialogs, tmp_path, monkeypatch):
    seen = _ranges_at_render(monkeypatch)
    lb.run.step(36.0)
    plots = lb.plots
    before = plots.plots["throughput"].vb.viewRange()[0]
    assert before[1] > 140                   # the app shows the lesson's 150 s while it runs
    dialogs.save_path = str(tmp_path / "slide.png")
    lb.actions_["export_snapshot"].trigger()
    lo, hi = seen[-1]
    assert lo == pytest.approx(0.0, abs=0.5) and hi == pytest.approx(36.0, abs=0.5)
    assert plots.event_labels.drawn == ["fail Web 2"]           # 30 s happened; 90 s is to come
    assert plots.plots["latency"].vb.viewRange()[0] == pytest.approx(before)   # the app's view is back

    # A range the teacher zoomed to (the wheel over the plot) is what the picture shows.
    plot = plots.plots["throughput"]
    centre = plots.graphics.mapFromScene(plot.vb.sceneBoundingRect().center())
    viewport = plots.graphics.viewport()
    for _ in range(4):
        wheel = QWheelEvent(QPointF(centre), QPointF(viewport.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QTest.qWait(1)
        from PySide6.QtWidgets import QApplication
        QApplication.sendEvent(viewport, wheel)
    zoomed = tuple(plot.vb.viewRange()[0])
    assert zoomed[1] - zoomed[0] < 0.9 * (before[1] - before[0])
    lb.actions_["export_plots"].trigger()
    assert seen[-1] == pytest.approx(zoomed)


# ----- 5. the failed node's icon is a vector in SVG -----------------------------------------
def test_svg_of_a_failed_node_has_no_bitmap(qtbot, lb, dialogs, tmp_path):
    click(qtbot, lb, "step", 2)
    menu_action(lb, "web2", "Fail Web 2").trigger()
    click(qtbot, lb, "step")
    assert lb.canvas.canvas_scene.nodes["web2"].live.failed
    dialogs.save_path = str(tmp_path / "canvas.svg")
    lb.actions_["export_svg"].trigger()
    text = (tmp_path / "canvas.svg").read_text()
    assert "<image" not in text
    assert 'opacity="0.35"' in text and "<path" in text       # the faded icon, as shapes


# ----- 6. the headless export: the app's markers, one instant -------------------------------
@pytest.mark.parametrize("run_s, labels, web2_failed", [
    (30, [], False),                        # the event at 30 s happens when the run goes on
    (45, ["fail Web 2"], True),
    (95, ["fail Web 2", "recover Web 2"], False),
])
def test_headless_export_draws_the_markers_of_what_happened(qtbot, monkeypatch, run_s, labels, web2_failed):
    seen = _ranges_at_render(monkeypatch)
    state: dict = {}
    original = export.snapshot_image

    def recording(title, canvas, plots, width=export.SNAPSHOT_WIDTH):
        image = original(title, canvas, plots, width)
        state["labels"] = list(plots.event_labels.drawn)
        state["markers"] = [m.count() for m in plots.event_markers.values()]
        state["web2"] = canvas.canvas_scene.nodes["web2"].live.failed
        return image

    monkeypatch.setattr(export, "snapshot_image", recording)
    png, _ = export.render_headless(load(LESSONS / "lb_demo.scalelab"), run_s)
    assert png.startswith(b"\x89PNG")
    assert state["labels"] == labels
    assert state["web2"] is web2_failed
    lo, hi = seen[-1]
    assert lo == pytest.approx(0.0, abs=0.02 * run_s) and hi == pytest.approx(run_s, abs=0.02 * run_s)


# ----- 7. follow-a-request dots stay out of pictures --------------------------------------
def test_follow_request_dots_are_not_exported(qtbot, lb, dialogs, tmp_path):
    follow = lb.follow
    qtbot.mouseClick(follow.check, LEFT)
    click(qtbot, lb, "step", 2)
    assert follow.dots
    with_dots = export.canvas_image(lb.canvas)
    svg_with_dots = export.canvas_svg(lb.canvas)
    follow._forget_dots()
    assert export.canvas_image(lb.canvas) == with_dots
    assert export.canvas_svg(lb.canvas).count(b"<path") == svg_with_dots.count(b"<path")
    follow.refresh()
    assert follow.dots and all(d.isVisible() for d in follow.dots)     # still on the live canvas


def test_a_failure_asked_during_an_engine_call_happens_right_after_it(qtbot, lb):
    """A fail that arrives while the engine computes (a timer, a signal) is not refused:
    it happens when the call returns, and is marked then."""
    from PySide6.QtCore import QTimer
    import time
    run = lb.run
    click(qtbot, lb, "step")
    sim = run.sim
    slow_advance = sim.advance

    calls = []

    def slow(seconds):
        if not calls:   # the first call only: the step's later calls (smaller, as the first was slow) run fast
            time.sleep(0.15)                  # long enough for the timer to fire meanwhile
        calls.append(seconds)
        slow_advance(seconds)

    sim.advance = slow
    fired = []
    QTimer.singleShot(20, lambda: (fired.append(run._busy), menu_action(lb, "web1", "Fail Web 1").trigger()))
    click(qtbot, lb, "step")
    assert fired == [True]                    # it came during a call
    assert lb.canvas.canvas_scene.nodes["web1"].live.failed
    (t, text), = [m for m in lb.plots.marker_texts() if "Web 1" in m[1]]
    assert text == "fail Web 1" and 1.0 < t <= 2.0
    assert "Cannot" not in lb.statusBar().currentMessage()
