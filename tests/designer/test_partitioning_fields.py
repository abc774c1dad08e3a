"""The inspector's fields for tables: a database's tables and a client's table mix, typed as text."""
from __future__ import annotations

from PySide6.QtCore import Qt


def type_text(qtbot, widget, text: str) -> None:
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_tables_and_table_mix_are_typed_as_text_and_shown_back(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["db"])
    field = inspector.rows["tables"].editor.widget
    type_text(qtbot, field, "users, flights_domestic")
    assert controller.document.params("db")["tables"] == ["users", "flights_domestic"]

    inspector.set_selection(["users"])
    mix = inspector.rows["table_mix"].editor.widget
    type_text(qtbot, mix, "users: 0.3, flights_domestic: 0.7")
    assert controller.document.params("users")["table_mix"] == {"users": 0.3, "flights_domestic": 0.7}
    inspector.set_selection(["db"])
    inspector.set_selection(["users"])
    assert inspector.rows["table_mix"].editor.widget.text() == "users: 0.3, flights_domestic: 0.7"


def test_a_bad_weight_is_refused_with_the_reason(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["users"])
    row = inspector.rows["table_mix"]
    type_text(qtbot, row.editor.widget, "users: lots")
    assert controller.document.params("users")["table_mix"] == {}
    assert row.error.isVisible() and 'the weight of "users" must be a number' in row.error.text()
    type_text(qtbot, row.editor.widget, "users: 0, flights: 0")
    assert controller.document.params("users")["table_mix"] == {}
    assert "must not all be 0" in row.error.text()
