"""Editing text in place on the canvas: one key handling for a node's label and an
annotation's text. Enter (or clicking elsewhere) commits, Escape cancels; a multi-line
editor takes Shift+Enter as a new line."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFocusEvent, QFont, QKeyEvent, QTextCursor, QTextOption
from PySide6.QtWidgets import QGraphicsTextItem

from . import look
from .node_item import NodeItem


class InPlaceEditor(QGraphicsTextItem):
    """A text item that reports once: ``on_done(text)`` on commit, ``on_done(None)`` on cancel.
    Subclasses say what the edited item shows meanwhile (:meth:`_editing`)."""

    multi_line = False

    def __init__(self, text: str, on_done: Callable[[str | None], None]):
        super().__init__()
        self.setPlainText(text)
        self.on_done = on_done
        self._closed = False
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.setZValue(20)

    def text(self) -> str:
        """What a commit would save."""
        return self.toPlainText()

    def begin(self, select_all: bool = True) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        cursor = self.textCursor()
        if select_all:
            cursor.select(QTextCursor.SelectionType.Document)
        else:
            cursor.movePosition(QTextCursor.MoveOperation.End)
        self.setTextCursor(cursor)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt)
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and self.multi_line and event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.textCursor().insertText("\n")
        elif enter:
            self.commit()
        elif event.key() == Qt.Key.Key_Escape:
            self.close(None)
        else:
            super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt)
        super().focusOutEvent(event)
        self.commit()

    def commit(self) -> None:
        self.close(self.text())

    def close(self, text: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._editing(False)
        if self.scene() is not None:
            self.scene().removeItem(self)
        self.on_done(text)

    def _editing(self, on: bool) -> None:
        """Hide (``on``) or show again what the edited item draws under the editor."""


class LabelEditor(InPlaceEditor):
    """A node's label, over the label; one line (the label is committed stripped)."""

    def __init__(self, node: NodeItem, on_done: Callable[[str | None], None]):
        super().__init__(node.label, on_done)
        self.node = node
        font = QFont(self.font())
        font.setPointSizeF(9.0 * look.TEXT_SCALE)
        self.setFont(font)
        self.setTextWidth(look.LABEL.width())
        option = QTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.document().setDefaultTextOption(option)
        self.setPos(node.mapToScene(look.LABEL.topLeft()) - self.boundingRect().topLeft() + QPointF(0, -4))
        self._editing(True)

    def text(self) -> str:
        return self.toPlainText().strip()

    def _editing(self, on: bool) -> None:
        self.node.editing_label = on
        self.node.update()
