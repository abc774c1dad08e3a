"""The designer on a projector: at 1280×720 and 1920×1080 the canvas keeps a usable share
of the window, every plot keeps a readable height (pages behind tabs when the rows do not
all fit), no text is drawn over other text, node labels stay readable after Fit on the
largest built-in lesson, and annotation text follows the presenter scale."""
from __future__ import annotations

import json
from itertools import combinations

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtTest import QTest

from designer.canvas import look
from tests.designer.main_window_support import LESSONS, open_main_window, wait_settled


def _largest_lesson() -> str:
    return max(sorted(LESSONS.glob("*.scalelab")),
               key=lambda p: len(json.loads(p.read_text(encoding="utf-8"))["nodes"])).name


LARGEST = _largest_lesson()
# (window size) -> least canvas size in px: at 1280×720 the canvas had 680×190 before.
CANVAS_LEAST = {(1280, 720): (640, 300), (1920, 1080): (1000, 450)}


@pytest.fixture(params=sorted(CANVAS_LEAST), ids=lambda s: f"{s[0]}x{s[1]}")
def projector(request, qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, LARGEST, size=request.param)
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    wait_settled(qtbot, win)             # the docks take their heights after the first frames
    win.run.step(40.0)                   # heartbeats: Slow 2 fails at 30 s (legends, an event label)
    win.canvas.fit_to_view()
    qtbot.wait(50)
    yield win, request.param
    win.files.remove_recovery()


def _text_rects(plots) -> list[tuple[str, QRectF]]:
    """Every text drawn in the plots in view (titles, axis labels, tick labels, legends,
    event labels), in the plots' scene coordinates."""
    plots.graphics.grab()        # paint once: ticks and event labels are laid out while painting
    image = QImage(4, 4, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    rects = []
    try:
        for name in plots.visible_plots():
            plot = plots.plots[name]
            if plot.titleLabel.isVisible() and plot.titleLabel.text:
                rects.append((f"{name} title", plot.titleLabel.item.sceneBoundingRect()))
            if plot.legend.isVisible():
                rects.append((f"{name} legend", plot.legend.sceneBoundingRect()))
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                if axis.label.isVisible() and axis.label.toPlainText().strip():
                    rects.append((f"{name} {side} label", axis.label.sceneBoundingRect()))
                specs = axis.generateDrawSpecs(painter)
                for rect, _flags, text in (specs[2] if specs else []):
                    rects.append((f"{name} {side} tick {text}", axis.mapRectToScene(rect)))
        if "throughput" in plots.visible_plots():
            rects += [("event label", r) for r in plots.event_labels.label_rects]
    finally:
        painter.end()
    return rects


def _overlaps(rects: list[tuple[str, QRectF]]) -> list[tuple[str, str]]:
    return [(a, b) for (a, ra), (b, rb) in combinations(rects, 2)
            if ra.adjusted(0.5, 0.5, -0.5, -0.5).intersects(rb.adjusted(0.5, 0.5, -0.5, -0.5))]


def test_canvas_and_plots_share_a_projector_screen(projector):
    win, size = projector
    least_w, least_h = CANVAS_LEAST[size]
    assert win.canvas.width() >= least_w and win.canvas.height() >= least_h, (size, win.canvas.size())
    plots = win.plots
    for name, height in plots.data_heights().items():     # every plot, on whatever page it is
        assert height >= 100, (size, name, height)
    if size == (1920, 1080):
        assert plots.page_names() == [] and sorted(plots.visible_plots()) == sorted(plots.plots)
    else:
        # one row of two plots at a time (three would cut the legends' names), the others a tab away
        assert plots.page_names() == ["Throughput · Latency", "Failures · Utilization", "Servers up · Cost"]
        assert plots.visible_plots() == ["throughput", "latency"]
    for name, plot in plots.plots.items():      # every plot as wide as its title, axis and legend need
        assert plot.width() >= plot.effectiveSizeHint(Qt.SizeHint.MinimumSize).width() - 0.5, name
        assert plot.sceneBoundingRect().right() <= plots.scroll.viewport().width() + 0.5, name


def test_no_text_is_drawn_over_other_text_in_the_plots(qtbot, projector):
    win, size = projector
    plots = win.plots
    pages = max(len(plots.page_names()), 1)
    seen = set()
    for page in range(pages):
        plots.show_page(page)
        qtbot.wait(20)
        rects = _text_rects(plots)
        names = {n.split()[0] for n, _ in rects}
        seen |= names
        assert len(rects) > 20, (size, page, rects)
        assert _overlaps(rects) == [], (size, page)
    assert {"throughput", "latency", "failures", "utilization", "active", "cost"} <= seen
    assert plots.plots["failures"].legend.isVisible() and plots.plots["utilization"].legend.isVisible()


def _label_rects_on_screen(view) -> dict[str, QRectF]:
    zoom = view.transform().m11()
    rects = {}
    for node_id, node in view.canvas_scene.nodes.items():
        _font, lines, rect = node.label_layout(zoom)
        assert lines, node_id
        rects[node_id] = view.mapFromScene(node.mapRectToScene(rect)).boundingRect().toRectF()
    return rects


def test_node_labels_are_whole_and_readable_after_fit(projector):
    win, size = projector
    view = win.canvas
    zoom = view.transform().m11()
    nodes = view.canvas_scene.nodes
    assert len(nodes) == 10
    for node in nodes.values():
        _font, lines, _rect = node.label_layout(zoom)
        assert " ".join(lines).replace("\u00a0", " ") == node.label, (size, node.label, lines)   # not elided
    assert view.label_point_size() >= look.MIN_LABEL_PT - 1e-6
    rects = _label_rects_on_screen(view)
    inside = QRectF(view.viewport().rect())
    cards = {i: view.mapFromScene(n.mapRectToScene(look.CARD)).boundingRect().toRectF() for i, n in nodes.items()}
    for node_id, rect in rects.items():
        assert inside.contains(rect), (node_id, rect)
        assert not any(rect.intersects(card) for other, card in cards.items() if other != node_id), node_id
    assert [pair for pair in combinations(rects, 2) if rects[pair[0]].intersects(rects[pair[1]])] == []
    # and the text is really painted there: dark pixels inside each label's rectangle
    image = view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    for node_id, rect in rects.items():
        dark = sum(1 for x in range(int(rect.left() * ratio), int(rect.right() * ratio))
                   for y in range(int(rect.top() * ratio), int(rect.bottom() * ratio))
                   if image.pixelColor(x, y).lightness() < 110)
        assert dark >= 10, (node_id, dark)


def test_zoomed_far_out_labels_keep_their_size_and_elide_then_go(window):
    view = window.canvas
    node = view.canvas_scene.nodes["web1"]
    node.set_display(label="A rather long label for a web server")
    for zoom in (1.0, 0.6, 0.35):
        _font, lines, rect = node.label_layout(zoom)
        assert lines and rect.height() <= look.LABEL_AREA.height()
        assert look.label_point_size(zoom) * zoom >= look.MIN_LABEL_PT - 1e-9       # on screen, never smaller
        assert rect.width() <= look.LABEL_AREA.width() + 1e-6
    assert lines[-1].endswith("…")             # far out: fewer words fit, the rest is elided
    _font, lines, _rect = node.label_layout(0.2)   # the card is 12 px: no room for a readable line
    assert lines == []
    metrics = _metrics(12.0)    # room for "Checks every 5" but not for its unit: the number goes down with it
    width = (metrics.horizontalAdvance("Checks every 5") + metrics.horizontalAdvance("Checks every 5 s")) / 2
    assert look.label_lines("Checks every 5 s", metrics, width, 2) == ["Checks every", "5\u00a0s"]
    assert look.label_lines("Checks every 5 s", metrics, width, 1) == [metrics.elidedText(
        "Checks every 5\u00a0s", Qt.TextElideMode.ElideRight, width)]


def _metrics(point_size: float):
    from PySide6.QtGui import QFont, QFontMetricsF
    font = QFont()
    font.setPointSizeF(point_size)
    return QFontMetricsF(font)


def test_plot_rows_follow_the_window_size(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(1920, 1080))
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    plots = win.plots
    qtbot.waitUntil(lambda: plots.page_names() == [], timeout=3000)
    tall = win.docks["plots"].height()
    win.resize(1280, 720)
    qtbot.waitUntil(lambda: len(plots.page_names()) == 3, timeout=3000)
    qtbot.waitUntil(lambda: win.docks["plots"].height() < tall - 150, timeout=3000)   # one row, not two
    assert win.canvas.height() >= 300
    tabs = plots._page_tabs()
    QTest.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(1).center())
    qtbot.waitUntil(lambda: plots.visible_plots() == ["failures", "utilization"], timeout=2000)
    win.resize(1920, 1080)
    qtbot.waitUntil(lambda: plots.page_names() == [] and len(plots.visible_plots()) == 6, timeout=3000)
    win.files.remove_recovery()


def test_a_separator_the_user_dragged_stays_until_reset_layout(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(1920, 1080))
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    wait_settled(qtbot, win)
    dock = win.docks["plots"]
    auto = dock.height()
    y = (win.canvas.geometry().bottom() + dock.geometry().top()) // 2 + 1     # the separator above the plots
    x = dock.geometry().center().x()
    QTest.mousePress(win, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    for step in range(1, 7):
        QTest.mouseMove(win, QPoint(x, y - 20 * step))
        qtbot.wait(10)
    QTest.mouseRelease(win, Qt.MouseButton.LeftButton, pos=QPoint(x, y - 120))
    qtbot.waitUntil(lambda: dock.height() > auto + 60, timeout=2000)
    chosen = dock.height()
    win.resize(1900, 1060)
    qtbot.wait(50)
    assert abs(dock.height() - chosen) <= 25            # not put back to the automatic height
    win.reset_layout()
    qtbot.waitUntil(lambda: abs(dock.height() - auto) <= 25, timeout=2000)
    win.files.remove_recovery()


def test_annotation_text_follows_the_presenter_scale(qtbot, window):
    from designer.canvas.annotation_items import FONT_PT, TextNoteItem, note_font
    view = window.canvas
    index = view.add_text_at(0, 300, edit=False)
    item = view.canvas_scene.annotations[index]
    window.controller.set_annotation_text(index, "Web 2 fails at 30 s: watch the red line")
    item = view.canvas_scene.annotations[index]
    assert isinstance(item, TextNoteItem)
    height, width = item.box.height(), item.box.width()
    window.presenter.set_scale(1.5)
    try:
        assert note_font().pointSizeF() == pytest.approx(FONT_PT * 1.5)
        item = view.canvas_scene.annotations[index]
        assert item.box.width() == width and item.box.height() > height * 1.3   # wraps into more lines
        editor = view.edit_text(index)
        assert editor.font().pointSizeF() == pytest.approx(FONT_PT * 1.5)
        editor.close(None)
        # what is painted grows too: the text's dark pixels reach further down the box
        window.presenter.set_scale(1.0)
        small = _ink_height(view, view.canvas_scene.annotations[index])
        window.presenter.set_scale(1.5)
        big = _ink_height(view, view.canvas_scene.annotations[index])
        assert big > small * 1.3, (small, big)
    finally:
        window.presenter.set_scale(1.0)
    assert view.canvas_scene.annotations[index].box.height() == pytest.approx(height)


def _ink_height(view, item) -> float:
    """How tall the painted text of a text box is, in scene units."""
    scene_rect = item.sceneBoundingRect()
    image = QImage(int(scene_rect.width()) * 2, int(scene_rect.height()) * 2, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    view.canvas_scene.render(painter, QRectF(image.rect()), scene_rect)
    painter.end()
    rows = [y for y in range(image.height())
            if any(image.pixelColor(x, y).lightness() < 120 for x in range(0, image.width(), 2))]
    return (max(rows) - min(rows)) / 2 if rows else 0.0


def test_the_presenter_scale_moves_the_plots_to_one_row(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, "lb_demo.scalelab", size=(1920, 1080))
    qtbot.waitUntil(lambda: win._plots is not None, timeout=5000)
    plots = win.plots
    qtbot.waitUntil(lambda: plots.page_names() == [], timeout=3000)
    win.run.step(40.0)
    win.presenter.set_scale(1.5)
    try:
        qtbot.waitUntil(lambda: len(plots.page_names()) >= 2, timeout=3000)
        assert all(h >= 120 for h in plots.data_heights().values())     # larger text, still a data area
        assert win.canvas.height() >= 400
        for page in range(len(plots.page_names())):      # axis names kept, and no text over other text
            plots.show_page(page)
            qtbot.wait(20)
            rects = _text_rects(plots)
            assert _overlaps(rects) == [], page
            labels = [name for name, _ in rects if name.endswith("bottom label")]
            assert len(labels) == len(plots.visible_plots()) >= 1, (page, labels)
        assert plots.plots["throughput"].getAxis("left").labelText == "req/s"
    finally:
        win.presenter.set_scale(1.0)
    axis = plots.plots["latency"].getAxis("bottom")
    assert axis.label.isVisible() and axis.labelText == "simulated time"
    win.files.remove_recovery()


def _badge_box(view, node_id: str) -> tuple[int, int, bool]:
    """Width and height (in scene units ×2) of the dark replica badge painted above a node's
    card, and whether it stays inside what the node says it paints (its bounding rect)."""
    item = view.canvas_scene.nodes[node_id]
    rect = item.sceneBoundingRect()
    image = QImage(int(rect.width()) * 2, int(rect.height()) * 2, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    view.canvas_scene.render(painter, QRectF(image.rect()), rect)
    painter.end()
    card_top = int((item.mapToScene(look.CARD.topLeft()).y() - rect.top()) * 2)
    badge = [(x, y) for y in range(0, card_top + 6) for x in range(image.width())
             if abs(image.pixelColor(x, y).red() - 0x34) < 12 and abs(image.pixelColor(x, y).blue() - 0x40) < 12
             and image.pixelColor(x, y).green() < 0x48]
    xs, ys = [p[0] for p in badge], [p[1] for p in badge]
    inside = min(xs) > 0 and min(ys) > 0 and max(xs) < image.width() - 1
    return max(xs) - min(xs), max(ys) - min(ys), inside


def test_count_badges_grow_with_the_presenter_scale(qtbot, window):
    view = window.canvas
    window.controller.set_params(["web1"], {"replicas": 12})
    qtbot.wait(20)
    w1, h1, inside1 = _badge_box(view, "web1")
    try:
        window.presenter.set_scale(1.75)
        qtbot.wait(20)
        w2, h2, inside2 = _badge_box(view, "web1")
        window.presenter.set_scale(3.0)      # badges stop growing at 1.75× (they would cover the neighbours)
        qtbot.wait(20)
        w3, h3, _ = _badge_box(view, "web1")
    finally:
        window.presenter.set_scale(1.0)
    assert inside1 and inside2
    assert h2 == pytest.approx(h1 * 1.75, rel=0.15) and w2 == pytest.approx(w1 * 1.75, rel=0.2), (w1, h1, w2, h2)
    assert (w3, h3) == (w2, h2)
