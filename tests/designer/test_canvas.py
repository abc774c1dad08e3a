"""The canvas as a user meets it: mouse and keys on the view's viewport, what is drawn, what is in the document."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QDropEvent
from PySide6.QtTest import QTest

from designer.canvas import KIND_MIME, CanvasView
from designer.canvas import look
from designer.controller import DocumentController
from tests.designer.main_window_support import assert_undo_redo_replays
from simulation.fileformat import dumps, load
from simulation.state import NodeState

STARTER = Path(__file__).resolve().parents[2] / "resources" / "lessons" / "starter.scalelab"
LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def view(qtbot) -> CanvasView:
    ctl = DocumentController(load(STARTER))
    v = CanvasView(ctl)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    qtbot.waitExposed(v)
    v.resetTransform()
    v.centerOn(350, 200)
    return v


def vp(view: CanvasView, scene_point: QPointF) -> QPoint:
    return view.mapFromScene(scene_point)


def node_center(view: CanvasView, node_id: str) -> QPoint:
    return vp(view, view.canvas_scene.nodes[node_id].pos())


def handle(view: CanvasView, node_id: str) -> QPoint:
    return vp(view, view.canvas_scene.nodes[node_id].handle_scene_pos())


def drag(view: CanvasView, start: QPoint, end: QPoint, modifier=NO_MOD) -> None:
    """A left-button drag in small steps, like a hand would do it."""
    w = view.viewport()
    QTest.mousePress(w, LEFT, modifier, start)
    steps = 6
    for i in range(1, steps + 1):
        QTest.mouseMove(w, start + (end - start) * (i / steps))
    QTest.mouseRelease(w, LEFT, modifier, end)


def test_dropping_a_kind_from_the_palette_adds_a_snapped_node(view):
    mime = QMimeData()
    mime.setData(KIND_MIME, b"cache")
    target = vp(view, QPointF(587, 452))
    event = QDropEvent(QPointF(target), Qt.DropAction.CopyAction, mime, LEFT, NO_MOD)
    view.dropEvent(event)
    doc = view.controller.document
    assert "cache1" in doc and doc.node("cache1").label == "Cache 1"
    assert (doc.node("cache1").x, doc.node("cache1").y) == (580.0, 460.0)
    assert "cache1" in view.canvas_scene.nodes
    assert view.selected_ids() == ["cache1"]
    assert view.controller.undo_stack.undoText() == "Add Cache"


def test_foreign_drops_are_ignored(view):
    mime = QMimeData()
    mime.setText("server")
    count = len(view.controller.document.node_ids())
    view.dropEvent(QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, LEFT, NO_MOD))
    assert len(view.controller.document.node_ids()) == count


def test_dragging_from_a_handle_to_a_node_connects_them(view):
    ctl = view.controller
    srv = ctl.add_node("server", 460, 480)
    ctl.add_node("cache", 700, 480)
    drag(view, handle(view, srv), node_center(view, "cache1"))
    assert ctl.document.has_edge(srv, "cache1")
    assert (srv, "cache1") in view.canvas_scene.edges
    assert ctl.undo_stack.undoText() == f"Connect {srv} → cache1"
    drag(view, handle(view, "lb"), node_center(view, srv))
    assert ctl.document.has_edge("lb", srv)


def test_an_invalid_connection_is_refused_with_the_reason(view, qtbot):
    ctl = view.controller
    before = dumps(ctl.document)
    with qtbot.waitSignal(view.connectionRefused) as blocker:
        drag(view, handle(view, "web1"), node_center(view, "users"))
    assert "cannot send traffic to a client" in blocker.args[0]
    assert not ctl.document.has_edge("web1", "users")
    assert "cannot send traffic to a client" in view.refusal_text()
    assert dumps(ctl.document) == before
    # the controller says the same for the brief's example, database → client
    assert "cannot send traffic to a client" in ctl.connect("db", "users")


def test_a_database_has_no_handle_to_drag(view):
    db = view.canvas_scene.nodes["db"]
    assert not db.handle_contains(db.mapFromScene(db.handle_scene_pos()))


def test_moving_a_node_is_one_snapped_undo_step(view):
    ctl = view.controller
    before = dumps(ctl.document)
    count = ctl.undo_stack.count()
    start = node_center(view, "web2")
    drag(view, start, start + QPoint(93, 47))
    node = ctl.document.node("web2")
    assert (node.x % look.GRID, node.y % look.GRID) == (0, 0)
    assert (node.x, node.y) != (460, 200)
    assert ctl.undo_stack.count() == count + 1
    assert ctl.undo_stack.undoText() == "Move web2"
    assert view.canvas_scene.nodes["web2"].pos() == QPointF(node.x, node.y)
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before
    assert view.canvas_scene.nodes["web2"].pos() == QPointF(460, 200)


def test_a_click_without_moving_pushes_nothing(view):
    count = view.controller.undo_stack.count()
    p = node_center(view, "web1")
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, p)
    assert view.selected_ids() == ["web1"]
    assert view.controller.undo_stack.count() == count


def test_rubber_band_selects_and_delete_key_undoes_exactly(view, qtbot):
    ctl = view.controller
    before = dumps(ctl.document)
    with qtbot.waitSignal(view.selectionChangedIds):
        drag(view, vp(view, QPointF(400, -40)), vp(view, QPointF(800, 260)))
    assert view.selected_ids() == ["web1", "web2", "db"]
    view.setFocus()
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert not {"web1", "web2", "db"} & set(ctl.document.node_ids())
    assert not {"web1", "web2", "db"} & set(view.canvas_scene.nodes)
    assert all("web1" not in e for e in view.canvas_scene.edges)
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before
    assert len(view.canvas_scene.edges) == len(ctl.document.edges())


def test_undo_redo_of_a_sequence_of_canvas_edits_is_exact(view):
    ctl = view.controller
    snapshots = [dumps(ctl.document)]
    mime = QMimeData()
    mime.setData(KIND_MIME, b"server")
    view.dropEvent(QDropEvent(QPointF(vp(view, QPointF(460, 480))), Qt.DropAction.CopyAction, mime, LEFT, NO_MOD))
    snapshots.append(dumps(ctl.document))
    drag(view, handle(view, "lb"), node_center(view, "server1"))
    snapshots.append(dumps(ctl.document))
    drag(view, node_center(view, "server1"), node_center(view, "server1") + QPoint(40, 40))
    snapshots.append(dumps(ctl.document))
    view.select_ids(["web3"])
    view.delete_selection()
    snapshots.append(dumps(ctl.document))
    assert_undo_redo_replays(ctl, snapshots)
    assert set(view.canvas_scene.nodes) == set(ctl.document.node_ids())
    assert set(view.canvas_scene.edges) == set(ctl.document.edges())


def test_keyboard_copy_paste_and_duplicate_make_fresh_ids(view):
    ctl = view.controller
    view.select_ids(["lb", "web1"])
    view.setFocus()
    QTest.keyClick(view.viewport(), Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(view.viewport(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    pasted = view.selected_ids()
    assert len(pasted) == 2 and not {"lb", "web1"} & set(pasted)
    assert ctl.document.has_edge(pasted[0], pasted[1])
    assert set(pasted) <= set(view.canvas_scene.nodes)
    QTest.keyClick(view.viewport(), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    dup = view.selected_ids()
    assert len(dup) == 2 and not set(dup) & set(pasted)


def test_label_is_edited_in_place(view):
    ctl = view.controller
    node = view.canvas_scene.nodes["web1"]
    label_point = vp(view, node.mapToScene(look.LABEL.center()))
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, label_point)
    editor = view._editor
    assert editor is not None
    QTest.keyClicks(view.viewport(), "Front end")
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return)
    assert ctl.document.node("web1").label == "Front end"
    assert ctl.undo_stack.undoText() == "Rename web1"
    assert view._editor is None


def test_context_menu_offers_fail_recover_properties_delete(view, qtbot):
    menu = view.node_menu("web2")
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts[:3] == ["Fail Web 2", "Recover Web 2", "Properties…"]     # before a run: either
    assert "&Delete" in texts
    with qtbot.waitSignal(view.failRequested) as blocker:
        menu.actions()[0].trigger()
    assert blocker.args == ["web2"]
    with qtbot.waitSignal(view.recoverRequested):
        menu.actions()[1].trigger()


def test_spof_outline_follows_the_topology(view, qtbot):
    scene = view.canvas_scene
    assert scene.nodes["lb"].spof_kind == "full" and scene.spof["lb"].full
    assert "Single point of failure" in scene.tooltip_text("lb")
    assert not scene.nodes["web1"].spof_kind and "point of failure" not in scene.tooltip_text("web1")
    ctl = view.controller
    lb2 = ctl.add_node("load_balancer", 220, 340)
    ctl.connect("users", lb2)
    for web in ("web1", "web2", "web3"):
        ctl.connect(lb2, web)
    # DNS round robin over two balancers: the users keep sending half their requests to a dead one
    qtbot.waitUntil(lambda: scene.nodes["lb"].spof_kind == "partial")
    assert scene.nodes[lb2].spof_kind == "partial"
    tip = scene.tooltip_text("lb")
    assert "Partial single point of failure" in tip and "50% of requests fail while it is down" in tip
    assert "it is one of the entries of Users in DNS round robin" in tip
    ctl.set_label("users", "Visitors")                       # the reason names the client as the user calls it
    qtbot.waitUntil(lambda: "the entries of Visitors in DNS round robin" in scene.tooltip_text("lb"))
    ctl.set_params(["users"], {"entry_policy": "failover"})   # the second balancer takes over
    qtbot.waitUntil(lambda: not scene.nodes["lb"].spof_kind)
    assert not scene.nodes[lb2].spof_kind and "point of failure" not in scene.tooltip_text("lb")
    ctl.undo_stack.undo()
    qtbot.waitUntil(lambda: scene.nodes["lb"].spof_kind == "partial")


def outline_pixels(view: CanvasView, node_id: str) -> list[QColor]:
    """The pixels along the left side of a node's SPOF outline (5 px outside its card)."""
    image = view.viewport().grab().toImage()
    pos = view.canvas_scene.nodes[node_id].pos()
    return [image.pixelColor(vp(view, pos + QPointF(-35, y))) for y in range(-20, 21)]


def test_full_spof_has_a_solid_red_outline_partial_a_dashed_orange_one(view, qtbot):
    def red(c: QColor) -> bool:
        return c.red() > 180 and c.green() < 110 and c.blue() < 110

    def orange(c: QColor) -> bool:
        return c.red() > 200 and 110 < c.green() < 190 and c.blue() < 90

    assert all(red(c) for c in outline_pixels(view, "lb"))          # full: solid red
    assert not any(red(c) or orange(c) for c in outline_pixels(view, "web1"))
    ctl = view.controller
    ctl.connect("web1", ctl.add_node("database", 520, 60))          # web1 splits its calls over two databases
    qtbot.waitUntil(lambda: view.canvas_scene.nodes["db"].spof_kind == "partial")
    qtbot.waitUntil(lambda: any(orange(c) for c in outline_pixels(view, "db")))
    pixels = outline_pixels(view, "db")
    assert not any(red(c) for c in pixels)
    assert sum(orange(c) for c in pixels) < len(pixels) - 5          # dashed: gaps between the dashes


def pixel_at(view: CanvasView, node_id: str, dx: float, dy: float) -> QColor:
    image = view.viewport().grab().toImage()
    p = vp(view, view.canvas_scene.nodes[node_id].pos() + QPointF(dx, dy))
    return image.pixelColor(p)


def test_live_state_colours_nodes_and_clears(view, qtbot):
    # a point inside the card but outside the icon
    idle = pixel_at(view, "web1", -25, -25)
    assert idle.red() > 240 and idle.green() > 240 and idle.blue() > 240
    states = {"web1": NodeState(utilization=1.0, queue=12, in_system=16, throughput_rps=100),
              "web2": NodeState(utilization=0.0),
              "web3": NodeState(replicas=1, replicas_up=0, failed_replicas=(0,))}
    view.set_live_state(states, {("lb", "web1"): 100.0, ("lb", "web2"): 10.0})
    qtbot.waitUntil(lambda: pixel_at(view, "web1", -25, -25).red() > 200
                    and pixel_at(view, "web1", -25, -25).green() < 160)
    busy = pixel_at(view, "web1", -25, -25)
    calm = pixel_at(view, "web2", -25, -25)
    assert busy.red() > busy.green() + 60           # red when saturated
    assert calm.green() > calm.red() + 60           # green when idle
    assert view.canvas_scene.edges[("lb", "web1")].width > view.canvas_scene.edges[("lb", "web2")].width
    tip = view.canvas_scene.tooltip_text("web1")
    assert "Utilization: 100%" in tip and "Queue: 12" in tip
    assert "Failed" in view.canvas_scene.tooltip_text("web3")
    view.set_live_state(None, None)
    qtbot.waitUntil(lambda: pixel_at(view, "web1", -25, -25).green() > 240)
    assert view.canvas_scene.edges[("lb", "web1")].width == look.flow_width(0, 0)


def test_replicas_show_as_a_stack_without_a_run(view, qtbot):
    # the stack peeks out above-right of the card, where the canvas was empty
    before = pixel_at(view, "web2", 33, -20)
    view.controller.set_params(["web2"], {"replicas": 4})
    assert view.canvas_scene.nodes["web2"].replicas == 4
    qtbot.waitUntil(lambda: pixel_at(view, "web2", 33, -20) != before)


def test_render_to_image_is_the_expected_size_and_not_blank(view):
    view.select_ids(["web1"])
    rect = view.canvas_scene.itemsBoundingRect()
    image = view.render_to_image(scale=2.0)
    assert image.width() == pytest.approx((rect.width() + 40) * 2, abs=2)
    assert image.height() == pytest.approx((rect.height() + 40) * 2, abs=2)
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20
    assert QColor(image.pixel(1, 1)) == QColor("white")
    clear = view.render_to_image(scale=1.0, transparent=True)
    assert clear.pixelColor(1, 1).alpha() == 0
    assert view.selected_ids() == ["web1"]      # the selection survives, hidden only in the image


def test_render_to_svg_writes_vector_icons(view, tmp_path):
    path = tmp_path / "canvas.svg"
    view.render_to_svg(path)
    text = path.read_text()
    assert text.startswith("<?xml") and "<svg" in text and "Web 1" in text
    assert "<image" not in text           # icons are vectors, not bitmaps
    import re
    outlined = [g for g in re.findall(r'<g [^>]*stroke="#000000" stroke-opacity="1"[^>]*>(.*?)</g>', text, re.S)
                if "<path" in g or "<circle" in g]
    assert not outlined, "icon shapes came out with black outlines"


def test_zoom_and_fit(view):
    s = view.transform().m11()
    view.zoom_in()
    assert view.transform().m11() > s
    view.zoom_out()
    view.zoom_out()
    assert view.transform().m11() < s
    view.setFocus()
    QTest.keyClick(view.viewport(), Qt.Key.Key_F)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(view.canvas_scene.nodes["users"].pos())
    assert visible.contains(view.canvas_scene.nodes["db"].pos())


def test_document_replacement_rebuilds_the_scene(view):
    other = load(STARTER)
    view.controller.remove_nodes(["web1"])
    view.controller.set_document(other)
    assert set(view.canvas_scene.nodes) == set(other.node_ids())
    other_ids = set(other.edges())
    assert set(view.canvas_scene.edges) == other_ids


def test_clicking_an_edge_selects_it_and_delete_removes_only_it(view):
    ctl = view.controller
    edge = view.canvas_scene.edges[("lb", "web2")]
    middle = vp(view, edge.line.pointAt(0.5))
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, middle)
    assert edge.isSelected() and view.selected_ids() == []
    view.setFocus()
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert not ctl.document.has_edge("lb", "web2") and "web2" in ctl.document
    assert ctl.undo_stack.undoText() == "Disconnect lb → web2"


def test_escape_cancels_a_drag(view):
    before = dumps(view.controller.document)
    w = view.viewport()
    start = node_center(view, "web1")
    QTest.mousePress(w, LEFT, NO_MOD, start)
    for i in range(1, 5):
        QTest.mouseMove(w, start + QPoint(30 * i, 10 * i))
    QTest.keyClick(w, Qt.Key.Key_Escape)
    QTest.mouseRelease(w, LEFT, NO_MOD, start + QPoint(120, 40))
    assert dumps(view.controller.document) == before
    assert view.canvas_scene.nodes["web1"].pos() == QPointF(460, 60)


def test_tooltip_names_kind_label_and_key_params(view):
    tip = view.canvas_scene.tooltip_text("web1")
    assert "Web 1" in tip and "Server" in tip and "Capacity: 100 req/s" in tip


def test_replacing_the_document_mid_drag_ends_the_gesture_safely(view):
    w = view.viewport()
    start = node_center(view, "web1")
    QTest.mousePress(w, LEFT, NO_MOD, start)
    QTest.mouseMove(w, start + QPoint(60, 60))
    view.controller.set_document(load(STARTER))
    QTest.mouseMove(w, start + QPoint(80, 80))
    QTest.mouseRelease(w, LEFT, NO_MOD, start + QPoint(80, 80))
    assert view.controller.undo_stack.count() == 0
    assert view.canvas_scene.nodes["web1"].pos() == QPointF(460, 60)


def test_undo_removing_the_node_whose_label_is_edited(view):
    ctl = view.controller
    srv = ctl.add_node("server", 460, 480)
    view.edit_label(srv)
    ctl.undo_stack.undo()
    assert view._editor is None and srv not in ctl.document
    assert ctl.undo_stack.undoText() == ""


def test_double_click_on_a_node_asks_for_its_properties(view, qtbot):
    with qtbot.waitSignal(view.propertiesRequested) as blocker:
        QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, node_center(view, "lb"))
    assert blocker.args == ["lb"]
    assert view._editor is None


def test_flow_dots_run_while_live_updates_come_and_stop_after(view, qtbot):
    scene = view.canvas_scene
    assert not scene.flow_dots_running()
    view.set_live_state({}, {("users", "lb"): 200.0, ("lb", "web1"): 50.0})
    assert scene.flow_dots_running()
    p0 = scene.edge_layer.dot_phase
    qtbot.waitUntil(lambda: scene.edge_layer.dot_phase > p0)
    qtbot.waitUntil(lambda: not scene.flow_dots_running(), timeout=3000)   # no more updates: paused
    view.set_live_state(None, None)
    assert scene.edge_layer.dot_phase is None
