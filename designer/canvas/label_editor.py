"""Editing a node's label in place: a text item over the label, committed on Enter or focus loss."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFocusEvent, QFont, QKeyEvent, QTextCursor
from PySide6.QtWidgets import QGraphicsTextItem

from . import look
from .node_item import NodeItem


class LabelEditor(QGraphicsTextItem):
    """Enter or clicking elsewhere commits (``on_done(text)``); Escape cancels (``on_done(None)``)."""

    def __init__(self, node: NodeItem, on_done: Callable[[str | None], None]):
        super().__init__(node.label)
        self.node = node
        self.on_done = on_done
        self._closed = False
        font = QFont(self.font())
        font.setPointSizeF(9.0)
        self.setFont(font)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.setTextWidth(look.LABEL.width())
        self.document().setDefaultTextOption(self._centered())
        self.setZValue(20)
        self.setPos(node.mapToScene(look.LABEL.topLeft()) - self.boundingRect().topLeft()
                    + self._nudge())
        node.editing_label = True
        node.update()

    @staticmethod
    def _centered():
        from PySide6.QtGui import QTextOption
        option = QTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        return option

    @staticmethod
    def _nudge():
        from PySide6.QtCore import QPointF
        return QPointF(0, -4)

    def begin(self) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        cursor = self.textCursor()
        cursor.select(QTextCursor.SelectionType.Document)
        self.setTextCursor(cursor)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close(self.toPlainText().strip())
        elif event.key() == Qt.Key.Key_Escape:
            self.close(None)
        else:
            super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt)
        super().focusOutEvent(event)
        self.close(self.toPlainText().strip())

    def close(self, text: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        self.node.editing_label = False
        self.node.update()
        if self.scene() is not None:
            self.scene().removeItem(self)
        self.on_done(text)
