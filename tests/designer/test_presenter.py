"""The designer in a classroom: legends and event labels off the data, legends that follow
the document, plots that keep their size at projector resolutions, zoom around the cursor,
a clean slate on New/Open, and presenter mode (full screen, larger text)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QFontMetricsF, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.designer.main_window_support import LESSONS, open_main_window, wait_settled


@pytest.fixture
def lb_window(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(1280, 720))
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    wait_settled(qtbot, win)
    yield win
    win.files.remove_recovery()


def _rects_apart(a, b) -> bool:
    return not a.intersects(b)


def test_legends_and_event_labels_stay_off_the_data(qtbot, lb_window):
    win = lb_window
    win.run.step(36.0)         # Web 2 fails at 30 s: backend-down failures, a utilization drop
    plots = win.plots
    qtbot.wait(50)
    plots.graphics.grab()      # paint once (the event labels record where they were drawn)
    for name in ("failures", "utilization"):
        plot = plots.plots[name]
        assert plot.legend.isVisible() and plot.legend.texts(), name
        assert _rects_apart(plot.legend.sceneBoundingRect(), plot.vb.sceneBoundingRect()), name
    assert "Backend down" in plots.plots["failures"].legend.texts()
    labels = plots.event_labels.label_rects
    assert labels, "the scheduled failure at 30 s is named above the throughput plot"
    data = plots.plots["throughput"].vb.sceneBoundingRect()
    assert all(_rects_apart(r, data) and r.bottom() <= data.top() + 0.5 for r in labels)


def test_utilization_legend_follows_renames_and_documents(qtbot, window):
    window.run.step(2.0)
    legend = window.plots.utilization_legend
    assert "Database" in legend() and "Web 2" in legend()
    window.controller.set_label("web2", "App B")
    assert "App B" in legend() and "Web 2" not in legend()
    assert window.open_file(LESSONS / "lb_demo.scalelab")
    assert legend() == []                  # before Run: nothing of the previous lesson
    window.run.step(2.0)
    assert set(legend()) == {"Load balancer", "Web 1", "Web 2", "Web 3"}


def _axis_ticks_apart(plot) -> bool:
    """The left axis' major tick labels are at least a text line apart on screen."""
    axis = plot.getAxis("left")
    low, high = plot.vb.viewRange()[1]
    height = plot.vb.sceneBoundingRect().height()
    levels = axis.tickValues(low, high, height)
    values = sorted(v for spacing, vs in levels[:1] for v in vs)
    line = QFontMetricsF(axis.style["tickFont"] or QApplication.font()).height()
    px = [(v - low) / (high - low) * height for v in values]
    return all(b - a >= line for a, b in zip(px, px[1:]))


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_plots_keep_a_readable_size_at_projector_resolutions(qtbot, tmp_path, monkeypatch, dialogs, size):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=size)
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    win.run.step(40.0)
    qtbot.wait(50)
    plots = win.plots
    for name, height in plots.data_heights().items():
        assert height >= 100, (size, name, height)
        assert _axis_ticks_apart(plots.plots[name]), (size, name)
    assert win.canvas.width() >= 320 and win.canvas.height() >= 200
    win.files.remove_recovery()


def test_plots_get_their_room_back_after_the_window_shrinks_and_grows(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(1600, 1000))
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    qtbot.wait(50)
    before = win.docks["plots"].height()
    win.resize(900, 560)
    qtbot.wait(50)
    assert win.docks["plots"].height() < before
    win.resize(1600, 1000)
    qtbot.waitUntil(lambda: win.docks["plots"].height() >= before - 10, timeout=2000)
    win.files.remove_recovery()


def test_small_window_keeps_a_usable_canvas(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(640, 480))
    qtbot.wait(50)
    assert win.canvas.width() >= 320 and win.canvas.height() >= 200
    win.files.remove_recovery()


def test_wheel_zooms_around_the_cursor_and_keys_around_the_centre(qtbot, window):
    view = window.canvas
    view.fit_to_view()
    node = view.canvas_scene.nodes["web3"]
    at = view.mapFromScene(node.scenePos())
    before = view.mapToScene(at)
    fitted = view.transform().m11()
    for _ in range(3):
        event = QWheelEvent(QPointF(at), QPointF(view.viewport().mapToGlobal(at)), QPoint(0, 0), QPoint(0, 120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(view.viewport(), event)
    assert view.transform().m11() == pytest.approx(min(fitted * 1.15 ** 3, 4.0))
    after = view.mapToScene(at)
    assert (after - before).manhattanLength() <= 3 / view.transform().m11() + 1e-6
    view.fit_to_view()
    centre = view.viewport().rect().center()
    before = view.mapToScene(centre)
    scale = view.transform().m11()
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    qtbot.keyClick(view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert view.transform().m11() == pytest.approx(scale * 1.25)
    assert (view.mapToScene(centre) - before).manhattanLength() <= 2 / view.transform().m11() + 1e-6


def test_new_and_open_forget_the_previous_plots(qtbot, window):
    window.run.step(30.0)
    plots = window.plots
    plots.show_readout(12.0, "latency")
    assert plots._vlines["latency"].isVisible()
    window.file_new()
    qtbot.wait(20)
    assert not any(line.isVisible() for line in plots._vlines.values())
    assert plots.plots["latency"].vb.viewRange()[1][1] <= 1.0       # not the old latency range
    assert plots.utilization_legend() == [] and not plots.has_data()
    assert window.open_file(LESSONS / "lb_demo.scalelab")
    window.run.step(5.0)
    low, high = plots.plots["active"].vb.viewRange()[1]
    assert low == 0 and 3 < high < 5                        # 3 servers up: from 0, a little headroom
    axis = plots.plots["active"].getAxis("left")
    for low, high in ((2.6, 3.4), (0, 3.5), (0, 40)):      # count axis: whole numbers only
        values = [v for _, vs in axis.tickValues(low, high, 150) for v in vs]
        assert values and all(float(v).is_integer() for v in values), (low, high, values)


def test_presenter_mode_full_screen_and_larger_text(qtbot, lb_window):
    win = lb_window
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    qtbot.keyClick(win, Qt.Key.Key_F11)
    qtbot.waitUntil(win.isFullScreen, timeout=3000)
    notes = win.notes.font().pointSizeF()
    axis = win.plots.plots["latency"].getAxis("left").style["tickFont"]
    axis_size = axis.pointSizeF() if axis is not None else QApplication.font().pointSizeF()
    label = win.canvas.label_point_size()
    width = win.plots.curves["served"].opts["pen"].widthF()
    qtbot.keyClick(win, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.presenter.scale == 1.25
    qtbot.waitUntil(lambda: win.notes.font().pointSizeF() == pytest.approx(notes * 1.25), timeout=2000)
    assert win.plots.plots["latency"].getAxis("left").style["tickFont"].pointSizeF() > axis_size
    assert win.canvas.label_point_size() == pytest.approx(label * 1.25)
    assert win.plots.curves["served"].opts["pen"].widthF() == pytest.approx(width * 1.25)
    qtbot.keyClick(win, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.presenter.scale == 1.0
    qtbot.waitUntil(lambda: win.notes.font().pointSizeF() == pytest.approx(notes), timeout=2000)
    win.presenter.set_scale(1.5)
    from PySide6.QtCore import QSettings
    assert float(QSettings().value("view/presenter_scale")) == 1.5     # remembered for the next start
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not win.isFullScreen(), timeout=3000)
    win.presenter.set_scale(1.0)


def test_context_menu_offers_what_the_node_state_allows(window):
    window.run.step(1.0)
    texts = lambda: [a.text() for a in window.canvas.node_menu("web2").actions() if a.text()]  # noqa: E731
    assert "Fail Web 2" in texts() and "Recover Web 2" not in texts()
    window.canvas.failRequested.emit("web2")
    assert "Web 2 failed" in window.statusBar().currentMessage()     # the label, not "web2"
    assert "Recover Web 2" in texts() and "Fail Web 2" not in texts()


def test_run_button_keeps_its_width_and_causes_have_distinct_colours(window):
    from PySide6.QtWidgets import QToolBar

    from designer.plots import CAUSE_COLOURS
    from simulation.state import FAILURE_CAUSES
    button = window.findChild(QToolBar, "mainToolbar").widgetForAction(window.actions_["run"])
    window.run.step(0.5)
    width = button.width()
    from designer import actions
    actions.set_running(window, True)
    QApplication.processEvents()       # the toolbar lays itself out again
    assert window.actions_["run"].text() == "&Pause" and button.width() == width
    actions.set_running(window, False)
    colour = dict(zip(FAILURE_CAUSES, CAUSE_COLOURS))
    from PySide6.QtGui import QColor
    a, b = QColor(colour["queue_full"]), QColor(colour["backend_down"])
    assert abs(a.hueF() - b.hueF()) > 0.25             # red and blue, not red and brown


def test_long_title_shows_its_start_and_paste_makes_a_told_apart_copy(qtbot, window):
    window.controller.set_meta(title="A very long lesson title " * 6)
    window.canvas.select_ids([])
    window.inspector.set_selection([])
    edit = window.inspector.title_edit
    assert edit is not None and edit.cursorPosition() == 0
    view = window.canvas
    view.select_ids(["web2"])
    view.copy_selection()
    (new,) = view.controller.paste(view.copy_selection())
    doc = window.controller.document
    assert doc.node(new).label == "Web 2 (copy)"
    assert (doc.node(new).x, doc.node(new).y) != (doc.node("web2").x, doc.node("web2").y)
    view.select_ids(["web2"])
    (again,) = view.controller.paste(view.copy_selection())
    assert doc.node(again).label == "Web 2 (copy 2)"


def test_exported_plots_show_every_plot_even_when_the_panel_scrolls(qtbot, lb_window):
    from designer import export
    plots = lb_window.plots
    lb_window.run.step(5.0)
    assert plots.scroll.viewport().height() < plots.graphics.minimumHeight()    # 1280×720: the plots scroll
    size = plots.size()
    image = export.plots_image(plots, scale=1.0)
    from designer.window_layout import MIN_PLOT_H
    assert image.height() >= len(plots._grid_rows) * MIN_PLOT_H     # every row of plots, not one page
    assert plots.size() == size


def _heading_points(win) -> list[float]:
    sizes = []
    block = win.notes.document().begin()
    while block.isValid():
        if block.blockFormat().headingLevel() == 1:
            it = block.begin()
            while not it.atEnd():
                sizes.append(it.fragment().charFormat().fontPointSize())
                it += 1
        block = block.next()
    return sizes


def test_lesson_title_heading_stays_whole_and_follows_the_text_size(qtbot, lb_window):
    win = lb_window
    base = win.notes.font().pointSizeF()
    sizes = _heading_points(win)
    assert sizes and max(sizes) == pytest.approx(base * 1.35)          # not Qt's xx-large (about 2.3x)
    win.presenter.set_scale(2.0)
    qtbot.waitUntil(lambda: win.notes.font().pointSizeF() == pytest.approx(base * 2.0), timeout=2000)
    qtbot.waitUntil(lambda: max(_heading_points(win)) == pytest.approx(base * 2.0 * 1.35), timeout=2000)
    # the title's longest word fits on one line of the panel at 200 %
    title = win.controller.document.meta["title"]
    block = win.notes.document().begin()
    while block.isValid() and block.blockFormat().headingLevel() != 1:
        block = block.next()
    font = block.begin().fragment().charFormat().font()
    longest = max(title.split(), key=len)
    assert QFontMetricsF(font).horizontalAdvance(longest) < win.notes.viewport().width()
    win.presenter.set_scale(1.0)
