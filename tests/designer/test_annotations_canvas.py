"""Annotations as a user meets them: text boxes and arrows added, typed, moved, resized,
copied and deleted with real mouse and key events on the canvas, every step undoable,
saved with the lesson and drawn in the exported pictures."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from designer import export
from designer.canvas import CanvasView
from designer.canvas.annotation_items import NOTE_FILL, PAD, ArrowItem, TextNoteItem
from designer.canvas.export import export_rect
from designer.controller import DocumentController
from simulation.annotations import Arrow, TextNote
from simulation.fileformat import dumps, load
from tests.designer.main_window_support import LESSONS, assert_undo_redo_replays

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def view(qtbot) -> CanvasView:
    v = CanvasView(DocumentController(load(LESSONS / "starter.scalelab")))
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    qtbot.waitExposed(v)
    v.resetTransform()
    v.centerOn(350, 200)
    return v


def vp(view: CanvasView, x: float, y: float) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def drag(view: CanvasView, start: QPoint, end: QPoint, modifier=NO_MOD) -> None:
    """A left-button drag in small steps, like a hand would do it."""
    w = view.viewport()
    QTest.mousePress(w, LEFT, modifier, start)
    for i in range(1, 7):
        QTest.mouseMove(w, start + (end - start) * (i / 6))
    QTest.mouseRelease(w, LEFT, modifier, end)


def add_text_by_menu(view: CanvasView, x: float, y: float) -> None:
    """Right-click on the empty canvas → "Add text here" (the menu is built as the right-click builds it)."""
    assert view.canvas_scene.top_item(QPointF(x + 5, y + 5)) is None, "the spot must be empty"
    menu = view.canvas_menu(x, y)
    [add] = [a for a in menu.actions() if a.text() == "Add text here"]
    add.trigger()


def type_text(view: CanvasView, text: str) -> None:
    QTest.keyClicks(view.viewport(), text)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return)


def test_add_type_move_each_step_undoable(view):
    ctl, doc = view.controller, view.controller.document
    snapshots = [dumps(doc)]
    add_text_by_menu(view, 20, 0)
    assert doc.annotations == [TextNote(20.0, 0.0, "Text")]
    assert view._note_editor is not None            # opened for typing, "Text" selected
    snapshots.append(dumps(doc))
    type_text(view, "Balancer at work")            # "a" and "t" are shortcuts elsewhere: not here
    assert doc.annotations == [TextNote(20.0, 0.0, "Balancer at work")]
    assert view._note_editor is None and not view.arrow_tool
    snapshots.append(dumps(doc))
    item = view.canvas_scene.annotations[0]
    assert isinstance(item, TextNoteItem) and item.isSelected()
    drag(view, vp(view, 60, 12), vp(view, 143, 52))   # 83, 40: moved by whole grid steps
    assert doc.annotations == [TextNote(100.0, 40.0, "Balancer at work")]
    assert item.pos() == QPointF(100, 40)
    snapshots.append(dumps(doc))
    assert ctl.undo_stack.undoText() == "Move 1 item"
    assert_undo_redo_replays(ctl, snapshots)


def test_double_click_edits_in_place_shift_enter_breaks_escape_cancels(view):
    doc = view.controller.document
    view.controller.add_annotation(TextNote(20, 0, "Old"))
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, vp(view, 40, 10))
    assert view._note_editor is not None
    QTest.keyClicks(view.viewport(), "Lxine onx")
    QTest.keyClick(view.viewport(), Qt.Key.Key_Backspace)   # edits the text: not the canvas's Delete shortcut
    QTest.keyClick(view.viewport(), Qt.Key.Key_Home)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Right)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)
    QTest.keyClick(view.viewport(), Qt.Key.Key_End)
    QTest.keyClicks(view.viewport(), "e")
    assert view._note_editor is not None and len(doc.annotations) == 1
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClicks(view.viewport(), "two")
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return)
    assert doc.annotations[0].text == "Line one\ntwo"
    tall = view.canvas_scene.annotations[0].box.height()
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, vp(view, 40, 10))
    QTest.keyClicks(view.viewport(), "nothing")
    QTest.keyClick(view.viewport(), Qt.Key.Key_Escape)
    assert doc.annotations[0].text == "Line one\ntwo"
    assert view.controller.undo_stack.undoText() == "Edit text"
    view.controller.undo_stack.undo()
    assert doc.annotations[0].text == "Old" and view.canvas_scene.annotations[0].box.height() < tall
    # an emptied box goes away (one undo step brings it back)
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, vp(view, 40, 10))
    QTest.keyClick(view.viewport(), Qt.Key.Key_Backspace)   # the whole text is selected: erase it
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return)
    assert doc.annotations == [] and view.canvas_scene.annotations == []
    view.controller.undo_stack.undo()
    assert doc.annotations == [TextNote(20.0, 0.0, "Old")]


def test_keyboard_t_adds_text_in_view_and_typing_letters_is_not_a_shortcut(view):
    doc = view.controller.document
    view.setFocus()
    QTest.keyClick(view.viewport(), Qt.Key.Key_T)
    assert len(doc.annotations) == 1 and view._note_editor is not None
    type_text(view, "a fat tea")
    assert doc.annotations[0].text == "a fat tea" and not view.arrow_tool and len(doc.annotations) == 1
    box = view.canvas_scene.annotations[0].sceneBoundingRect()
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(box.center())


def test_arrow_drawn_by_dragging_then_its_end_dragged(view):
    ctl, doc = view.controller, view.controller.document
    snapshots = [dumps(doc)]
    view.add_arrow_action.trigger()
    assert view.arrow_tool
    drag(view, vp(view, 40, 440), vp(view, 201, 419))
    assert doc.annotations == [Arrow(40.0, 440.0, 200.0, 420.0)]
    assert not view.arrow_tool and ctl.undo_stack.undoText() == "Add arrow"
    arrow = view.canvas_scene.annotations[0]
    assert isinstance(arrow, ArrowItem) and arrow.isSelected()
    snapshots.append(dumps(doc))
    drag(view, vp(view, 200, 420), vp(view, 260, 381))      # the head's handle
    assert doc.annotations == [Arrow(40.0, 440.0, 260.0, 380.0)]
    assert ctl.undo_stack.undoText() == "Move arrow end"
    snapshots.append(dumps(doc))
    drag(view, vp(view, 40, 440), vp(view, 20, 460))        # the tail's handle
    assert doc.annotations == [Arrow(20.0, 460.0, 260.0, 380.0)]
    snapshots.append(dumps(doc))
    drag(view, vp(view, 140, 420), vp(view, 180, 400))      # the shaft: the whole arrow moves
    assert doc.annotations == [Arrow(60.0, 440.0, 300.0, 360.0)]
    snapshots.append(dumps(doc))
    assert_undo_redo_replays(ctl, snapshots)
    # a click without a drag draws nothing; Escape leaves the tool
    view.add_arrow_action.trigger()
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, vp(view, -100, 480))
    assert len(doc.annotations) == 1
    view.add_arrow_action.trigger()
    QTest.keyClick(view.viewport(), Qt.Key.Key_Escape)
    assert not view.arrow_tool


def test_text_width_grip_resizes_and_wraps(view):
    doc = view.controller.document
    view.controller.add_annotation(TextNote(20, 0, "a few words that will wrap when the box is narrow"))
    item = view.canvas_scene.annotations[0]
    one_line = item.box.height()
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, vp(view, 40, 10))
    assert item.isSelected()
    grip = item.mapToScene(item.grip_center())
    drag(view, vp(view, grip.x(), grip.y()), vp(view, grip.x() - 120, grip.y()))
    assert doc.annotations[0].width == pytest.approx(100.0, abs=1.0)
    assert item.box.width() == doc.annotations[0].width and item.box.height() > one_line
    view.controller.undo_stack.undo()
    assert doc.annotations[0].width is None and item.box.height() == one_line


def test_select_nodes_and_notes_together_move_copy_duplicate_delete(view, qtbot):
    ctl, doc = view.controller, view.controller.document
    ctl.add_annotation(TextNote(-60, 100, "Users arrive here"))
    ctl.add_annotation(Arrow(-20, 140, 0, 170))
    before = dumps(doc)
    # a rubber band from empty canvas takes the node "users" and both annotations
    drag(view, vp(view, -90, 80), vp(view, 60, 300))
    assert view.selected_ids() == ["users"] and view.selected_annotations() == [0, 1]
    drag(view, vp(view, 0, 200), vp(view, 41, 219))         # by the node: all three move 40, 20
    assert (doc.node("users").x, doc.node("users").y) == (40.0, 220.0)
    assert doc.annotations == [TextNote(-20.0, 120.0, "Users arrive here"), Arrow(20.0, 160.0, 40.0, 190.0)]
    ctl.undo_stack.undo()                                    # one step
    assert dumps(doc) == before
    # duplicate (Ctrl+D) copies them all, shifted; the copies are selected
    QTest.keyClick(view.viewport(), Qt.Key.Key_D, CTRL)
    assert len(doc.annotations) == 4 and doc.annotations[2] == TextNote(-20.0, 140.0, "Users arrive here")
    assert view.selected_annotations() == [2, 3] and len(view.selected_ids()) == 1
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)       # Delete removes the selected copies
    assert dumps(doc) == before
    # copy and paste an annotation alone
    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, vp(view, -40, 110))
    assert view.selected_annotations() == [0] and view.selected_ids() == []
    QTest.keyClick(view.viewport(), Qt.Key.Key_C, CTRL)
    QTest.keyClick(view.viewport(), Qt.Key.Key_V, CTRL)
    assert doc.annotations[2] == TextNote(-20.0, 140.0, "Users arrive here")
    assert view.selected_annotations() == [2]
    QTest.keyClick(view.viewport(), Qt.Key.Key_Backspace)
    assert dumps(doc) == before
    ctl.undo_stack.undo()
    assert len(doc.annotations) == 3


def test_colour_from_the_annotation_menu_is_one_undo_step(view):
    doc = view.controller.document
    view.controller.add_annotation(Arrow(-20, 140, 0, 170))
    view.set_selection({view.canvas_scene.annotations[0]})
    menu = view.annotation_menu([0])
    [colours] = [a.menu() for a in menu.actions() if a.text() == "Colour"]
    [red] = [a for a in colours.actions() if a.text() == "Red"]
    red.trigger()
    assert doc.annotations[0].color == "red"
    view.controller.undo_stack.undo()
    assert doc.annotations[0].color is None


def test_saved_and_reopened_with_the_same_annotations(window, dialogs, tmp_path):
    canvas = window.canvas
    canvas.add_text_at(20, 0, edit=False)
    canvas.add_arrow_at(-40, 100)
    canvas.set_annotation_color([1], "blue")
    wanted = list(window.controller.document.annotations)
    dialogs.save_path = str(tmp_path / "annotated.scalelab")
    assert window.file_save_as()
    assert window.open_file(LESSONS / "starter.scalelab")
    assert window.controller.document.annotations == [] and canvas.canvas_scene.annotations == []
    assert window.open_file(tmp_path / "annotated.scalelab")
    assert window.controller.document.annotations == wanted
    shown = [(type(i).__name__, i.isVisible()) for i in canvas.canvas_scene.annotations]
    assert shown == [("TextNoteItem", True), ("ArrowItem", True)]
    assert window.actions_["add_text"] in window.menuBar().actions()[1].menu().actions()


def _dark_pixels(image: QImage, rect) -> int:
    n = 0
    for x in range(int(rect.left()), int(rect.right())):
        for y in range(int(rect.top()), int(rect.bottom())):
            if QColor(image.pixel(x, y)).lightness() < 120:
                n += 1
    return n


def test_exported_png_and_svg_contain_the_annotation(view):
    doc = view.controller.document
    note = TextNote(20, 40, "Balancer checks")
    plain = export.canvas_image(view, 2.0)
    view.controller.add_annotation(note)
    view.set_selection({view.canvas_scene.annotations[0]})    # the selection is not exported
    drawn = export.canvas_image(view, 2.0)
    assert (drawn.width(), drawn.height()) == (plain.width(), plain.height())   # inside the topology's bounds
    rect = export_rect(view.canvas_scene)
    box = view.canvas_scene.annotations[0].box.translated(note.x - rect.left(), note.y - rect.top())
    area = box.adjusted(PAD, PAD, -PAD, -PAD)
    area = type(area)(area.topLeft() * 2, area.bottomRight() * 2)
    assert _dark_pixels(plain, area) == 0                     # empty canvas there before
    assert _dark_pixels(drawn, area) > 40                     # the letters
    fill = QColor(drawn.pixel(int(box.right() * 2 - 8), int(box.bottom() * 2 - 4)))
    assert abs(fill.red() - NOTE_FILL.red()) < 6 and abs(fill.blue() - NOTE_FILL.blue()) < 12
    assert b"Balancer checks" in export.canvas_svg(view)
    assert doc.annotations == [note] and view.selected_annotations() == [0]


def test_headless_export_and_fit_view_include_far_annotations(qtbot):
    doc = load(LESSONS / "starter.scalelab")
    plain, _ = export.render_headless(doc)
    doc.annotations = [TextNote(1500, 0, "far away to the right")]
    with_note, _ = export.render_headless(doc)
    a, b = QImage.fromData(plain), QImage.fromData(with_note)
    assert b.width() > a.width() + 2 * 600                   # the picture grew to take it in
    view = CanvasView(DocumentController(doc))
    qtbot.addWidget(view)
    view.resize(800, 500)
    view.show()
    view.fit_to_view()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(view.canvas_scene.annotations[0].sceneBoundingRect())
    assert visible.contains(QPointF(0, 200))


def test_undo_of_an_add_during_editing_closes_the_editor(view):
    doc = view.controller.document
    add_text_by_menu(view, 20, 0)
    assert view._note_editor is not None
    view.controller.undo_stack.undo()
    assert view._note_editor is None and doc.annotations == []
    assert not [i for i in view.canvas_scene.items() if type(i).__name__ == "TextNoteEditor"]


def test_the_lb_demo_lesson_shows_its_notes(qtbot):
    doc = load(LESSONS / "lb_demo.scalelab")
    assert doc.annotations, "lb_demo carries its notes for slides"
    view = CanvasView(DocumentController(doc))
    qtbot.addWidget(view)
    assert [type(i).__name__ for i in view.canvas_scene.annotations] == [
        "TextNoteItem" if a.type == "text" else "ArrowItem" for a in doc.annotations]


def test_annotating_mid_run_leaves_the_run_alone(window, qtbot):
    """A teacher annotates a paused run: the simulation is the same object at the same time."""
    run = window.run
    run.step(3.0)
    qtbot.waitUntil(lambda: run.state == "paused" and run.now >= 3.0, timeout=20000)
    sim, now = run.sim, run.now
    window.actions_["add_text"].trigger()
    type_text(window.canvas, "right here")
    window.canvas.add_arrow_at(-40, 100)
    qtbot.wait(50)
    assert run.sim is sim and run.now == now
    assert [a.type for a in window.controller.document.annotations] == ["text", "arrow"]
    QTest.keyClick(window.canvas.viewport(), Qt.Key.Key_Delete)   # the new arrow is selected
    assert [a.type for a in window.controller.document.annotations] == ["text"]
    assert run.sim is sim
