"""Annotations on the canvas: a text box and an arrow item, and the in-place text editor.

Like nodes, the items only show what the scene gives them (an immutable
``TextNote`` / ``Arrow`` from the document). Text boxes lie above the edges and
below the nodes (a note never hides a component); arrows lie above the nodes, so
that an arrow pointing at a node keeps its head visible. A selected annotation
shows its handles: a text box's width grip on its right edge, an arrow's two ends.
"""
from __future__ import annotations

import math
from typing import Callable

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen,
                           QPolygonF)
from PySide6.QtWidgets import QGraphicsItem, QStyle, QStyleOptionGraphicsItem, QWidget

from simulation.annotations import Arrow, TextNote, color_of

from . import look
from .label_editor import InPlaceEditor

PAD = 6.0                 # text inside its box
FONT_PT = 10.0            # at presenter scale 1 (look.TEXT_SCALE multiplies it)
NOTE_FILL = QColor(255, 249, 219, 240)   # a pale sticky note
NOTE_BORDER = QColor("#f0c36d")
GRIP = 5.0                # half size of a handle
ARROW_WIDTH = 2.5
HEAD = 13.0
TEXT_Z, ARROW_Z = 0.5, 3.0


def note_font() -> QFont:
    """The text boxes' font: 10 pt × the presenter scale (like the node labels)."""
    font = QFont()
    font.setPointSizeF(FONT_PT * look.TEXT_SCALE)
    return font


def text_height(text: str, width: float) -> float:
    """The height of ``text`` wrapped at ``width`` (without the padding)."""
    metrics = QFontMetricsF(note_font())
    flags = int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft)
    rect = metrics.boundingRect(QRectF(0, 0, max(width, 1.0), 1e6), flags, text or " ")
    return max(rect.height(), metrics.height())


def _handle_pen() -> QPen:
    return QPen(look.SELECTED, 1.5)


class TextNoteItem(QGraphicsItem):
    """A text box at (x, y), ``box_width`` wide, as tall as its wrapped text."""

    Type = QGraphicsItem.UserType + 11

    def __init__(self, note: TextNote):
        super().__init__()
        self.exporting = False
        self.editing = False
        self.note = note
        self.box = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(TEXT_Z)
        self.set_annotation(note)

    def type(self) -> int:
        return TextNoteItem.Type

    def set_annotation(self, note: TextNote) -> None:
        self.prepareGeometryChange()
        self.note = note
        w = note.box_width
        self.box = QRectF(0, 0, w, text_height(note.text, w - 2 * PAD) + 2 * PAD)
        self.setPos(note.x, note.y)
        self.update()

    def preview_width(self, width: float) -> None:
        """Show the box at another width while its grip is dragged (the document changes on release)."""
        self.prepareGeometryChange()
        self.box = QRectF(0, 0, width, text_height(self.note.text, width - 2 * PAD) + 2 * PAD)
        self.update()

    def grip_center(self) -> QPointF:
        return QPointF(self.box.right(), self.box.center().y())

    def grip_contains(self, pos: QPointF) -> bool:
        """Whether ``pos`` (item coordinates) is on the width grip (a little generous)."""
        d = pos - self.grip_center()
        return abs(d.x()) <= GRIP + 3 and abs(d.y()) <= GRIP + 6

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self.box.adjusted(-3, -3, GRIP + 4, 3)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.box)
        if self.isSelected():
            path.addRect(QRectF(self.grip_center() - QPointF(GRIP + 3, GRIP + 6), QPointF(self.grip_center()
                                                                                         + QPointF(GRIP + 3, GRIP + 6))))
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected) and not self.exporting
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(look.SELECTED if selected else NOTE_BORDER, 1.5 if selected else 1.0))
        painter.setBrush(QBrush(NOTE_FILL))
        painter.drawRoundedRect(self.box, 4, 4)
        if not self.editing:
            painter.setFont(note_font())
            painter.setPen(QColor(color_of(self.note)))
            painter.drawText(self.box.adjusted(PAD, PAD, -PAD, -PAD),
                             int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                             self.note.text)
        if selected:
            painter.setPen(_handle_pen())
            painter.setBrush(QBrush(QColor("#ffffff")))
            c = self.grip_center()
            painter.drawRect(QRectF(c.x() - GRIP / 1.6, c.y() - GRIP * 1.4, GRIP * 1.25, GRIP * 2.8))


class ArrowItem(QGraphicsItem):
    """An arrow from (x1, y1) to its head at (x2, y2), drawn in scene coordinates (moved by ``setPos``)."""

    Type = QGraphicsItem.UserType + 12

    def __init__(self, arrow: Arrow):
        super().__init__()
        self.exporting = False
        self.arrow = arrow
        self.line = QLineF()
        self._shape = QPainterPath()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(ARROW_Z)
        self.set_annotation(arrow)

    def type(self) -> int:
        return ArrowItem.Type

    def set_annotation(self, arrow: Arrow) -> None:
        self.arrow = arrow
        self.setPos(0, 0)
        self.set_line(QLineF(arrow.x1, arrow.y1, arrow.x2, arrow.y2))

    def set_line(self, line: QLineF) -> None:
        """Show other ends (also while an end is dragged)."""
        self.prepareGeometryChange()
        self.line = QLineF(line)
        path = QPainterPath(line.p1())
        path.lineTo(line.p2())
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        self._shape = stroker.createStroke(path)
        for p in (line.p1(), line.p2()):
            self._shape.addEllipse(p, GRIP + 3, GRIP + 3)
        self.update()

    def end_at(self, pos: QPointF) -> int:
        """1 or 2 if ``pos`` (item coordinates) is on that end's handle, else 0."""
        for end, p in ((2, self.line.p2()), (1, self.line.p1())):
            if QLineF(p, pos).length() <= GRIP + 4:
                return end
        return 0

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self._shape.boundingRect().adjusted(-HEAD, -HEAD, HEAD, HEAD)

    def shape(self) -> QPainterPath:
        return self._shape

    def head(self) -> QPolygonF:
        line = self.line
        angle = math.atan2(line.dy(), line.dx())
        tip = line.p2()
        left = QPointF(tip.x() - HEAD * math.cos(angle - 0.42), tip.y() - HEAD * math.sin(angle - 0.42))
        right = QPointF(tip.x() - HEAD * math.cos(angle + 0.42), tip.y() - HEAD * math.sin(angle + 0.42))
        return QPolygonF([tip, left, right])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected) and not self.exporting
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(color_of(self.arrow))
        if selected:
            painter.setPen(QPen(QColor(28, 126, 214, 70), ARROW_WIDTH + 6))
            painter.drawLine(self.line)
        pen = QPen(color, ARROW_WIDTH)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        length = self.line.length()
        if length > HEAD * 0.8:   # the shaft stops inside the head, so the tip stays sharp
            painter.drawLine(QLineF(self.line.p1(), self.line.pointAt(1 - HEAD * 0.7 / length)))
        painter.setPen(QPen(color, 1.0))
        painter.setBrush(QBrush(color))
        painter.drawPolygon(self.head())
        if selected:
            painter.setPen(_handle_pen())
            painter.setBrush(QBrush(QColor("#ffffff")))
            for p in (self.line.p1(), self.line.p2()):
                painter.drawEllipse(p, GRIP, GRIP)


ANNOTATION_ITEMS = (TextNoteItem, ArrowItem)


def make_annotation_item(annotation) -> TextNoteItem | ArrowItem:
    return TextNoteItem(annotation) if annotation.type == "text" else ArrowItem(annotation)


class TextNoteEditor(InPlaceEditor):
    """Editing a text box in place. Enter or clicking elsewhere commits (``on_done(text)``),
    Shift+Enter starts a new line, Escape cancels (``on_done(None)``)."""

    multi_line = True

    def __init__(self, item: TextNoteItem, on_done: Callable[[str | None], None]):
        super().__init__(item.note.text, on_done)
        self.item = item
        self.setFont(note_font())
        self.setDefaultTextColor(QColor(color_of(item.note)))
        self.document().setDocumentMargin(0)
        self.setTextWidth(item.note.box_width - 2 * PAD)
        self.setPos(item.mapToScene(QPointF(PAD, PAD)))
        self._editing(True)

    def _editing(self, on: bool) -> None:
        self.item.editing = on
        self.item.update()
