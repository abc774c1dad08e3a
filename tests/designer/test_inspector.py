"""The inspector, used as a user would: type values, pick choices, select several nodes."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from designer.controller import DocumentController
from designer.inspector import Inspector, common_params
from simulation.fileformat import load
from simulation.kinds import KINDS

STARTER = Path(__file__).resolve().parents[2] / "resources" / "lessons" / "starter.scalelab"


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    widget.selectAll() if hasattr(widget, "selectAll") else None
    widget.lineEdit().selectAll() if hasattr(widget, "lineEdit") else None
    qtbot.keyClicks(widget.lineEdit() if hasattr(widget, "lineEdit") else widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_form_is_generated_from_the_declarations(setup):
    controller, inspector = setup
    for node_id in ("users", "lb", "web1", "db"):
        inspector.set_selection([node_id])
        kind = KINDS[controller.document.kind(node_id)]
        expected = [p.name for p in kind.params if p.type != "object"]
        assert list(inspector.rows) == expected
    inspector.set_selection(["web1"])
    spin = inspector.rows["capacity_rps"].editor.widget
    assert spin.maximum() == KINDS["server"].param("capacity_rps").maximum
    assert spin.suffix().strip() == "req/s"
    assert "Requests per second" in spin.toolTip()


def test_valid_edit_changes_the_document_and_is_undoable(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1"])
    spin = inspector.rows["capacity_rps"].editor.widget
    type_into(qtbot, spin, "150")
    assert controller.document.params("web1")["capacity_rps"] == 150
    assert "capacity" in controller.undo_stack.undoText().lower()
    controller.undo_stack.undo()
    assert controller.document.params("web1")["capacity_rps"] == 100
    assert spin.value() == 100     # the form follows the document


def test_invalid_value_is_refused_with_the_reason(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1"])
    row = inspector.rows["capacity_rps"]
    type_into(qtbot, row.editor.widget, "0")         # capacity must be > 0
    assert controller.document.params("web1")["capacity_rps"] == 100
    assert row.error.isVisible()
    assert "must be > 0" in row.error.text()
    type_into(qtbot, row.editor.widget, "5000000")   # above the declared maximum
    assert controller.document.params("web1")["capacity_rps"] == 100
    assert "must be ≤ 1000000" in row.error.text()
    assert controller.undo_stack.count() == 0
    type_into(qtbot, row.editor.widget, "120")
    assert not row.error.isVisible()


def test_choice_and_multi_selection_edit(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1", "web2", "web3"])
    combo = inspector.rows["sessions"].editor.widget
    before = controller.document.params("web1")["sessions"]
    combo.setCurrentIndex(combo.findData("database"))
    combo.activated.emit(combo.currentIndex())
    assert [controller.document.params(i)["sessions"] for i in ("web1", "web2", "web3")] == ["database"] * 3
    assert controller.undo_stack.count() == 1       # one step for all three
    controller.undo_stack.undo()
    assert [controller.document.params(i)["sessions"] for i in ("web1", "web2", "web3")] == [before] * 3


def test_mixed_kinds_show_only_common_fields(setup):
    controller, inspector = setup
    inspector.set_selection(["lb", "web1"])
    assert set(inspector.rows) == {"capacity_rps", "queue_limit"}
    assert common_params(["client", "database"]) == []
    assert "(mixed)" in inspector.rows["capacity_rps"].label.text()


def test_pattern_sub_form(setup):
    controller, inspector = setup
    inspector.set_selection(["users"])
    pattern = inspector.pattern
    pattern.variant.activated.emit(pattern.variant.findData("spike"))
    assert controller.document.params("users")["pattern"]["type"] == "spike"
    assert set(pattern.rows) == {"at_s", "duration_s", "factor"}
    pattern.rows["factor"].editor.widget.setValue(8)
    assert controller.document.params("users")["pattern"]["factor"] == 8
    pattern.variant.activated.emit(pattern.variant.findData("steps"))
    field = pattern.rows["factors"].editor.widget
    field.setText("1, 2")            # fewer factors than times: refused
    field.editingFinished.emit()
    assert "as many entries" in pattern.error.text()
    assert controller.document.params("users")["pattern"]["factors"] == [1.0, 2.0, 4.0]


def test_settings_and_notes_when_nothing_is_selected(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection([])
    assert list(inspector.rows) == ["tick_ms", "duration_s", "seed"]
    seed = inspector.rows["seed"].editor.widget
    seed.setText("42")
    seed.editingFinished.emit()
    assert controller.document.settings["seed"] == 42
    seed.setText("forty")
    seed.editingFinished.emit()
    assert "must be an integer" in inspector.rows["seed"].error.text()
    inspector.title_edit.setText("My lesson")
    inspector.title_edit.editingFinished.emit()
    assert controller.document.meta["title"] == "My lesson"
    inspector.notes_edit.setPlainText("# Hello")
    qtbot.waitUntil(lambda: controller.document.meta["notes"] == "# Hello", timeout=3000)


def test_label_edit(setup):
    controller, inspector = setup
    inspector.set_selection(["web2"])
    inspector.label_edit.setText("Primary web")
    inspector.label_edit.editingFinished.emit()
    assert controller.document.node("web2").label == "Primary web"
    controller.undo_stack.undo()
    assert controller.document.node("web2").label == "Web 2"


def test_scheduled_events_are_listed_added_and_removed(qtbot):
    controller = DocumentController(load(STARTER.with_name("lb_demo.scalelab")))
    inspector = Inspector(controller)
    qtbot.addWidget(inspector)
    editor = inspector.events_editor
    assert editor.model.rowCount() == 2
    assert editor.model.index(0, 0).data() == "30 s" and editor.model.index(0, 2).data() == "Web 2"
    editor.at.setValue(60)
    editor.action.setCurrentText("fail")
    editor.node.setCurrentIndex(editor.node.findData("web3"))
    editor.add_button.click()
    events = controller.document.events
    assert [(e.at_s, e.action, e.node) for e in events][1] == (60.0, "fail", "web3")   # kept in time order
    assert editor.model.rowCount() == 3
    editor.table.selectRow(0)
    editor.remove_button.click()
    assert [e.at_s for e in controller.document.events] == [60.0, 90.0]
    controller.undo_stack.undo()
    controller.undo_stack.undo()
    assert [e.at_s for e in controller.document.events] == [30.0, 90.0]
