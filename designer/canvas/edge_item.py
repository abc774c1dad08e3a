"""An edge on the canvas: an arrow from one node's card to another's, as thick as its flow."""
from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyle, QStyleOptionGraphicsItem, QWidget

from . import look

CARD_HALF = 38.0   # where an arrow stops: just outside the card and its SPOF outline
ARROW = 10.0


def clip_to_card(center: QPointF, toward: QPointF) -> QPointF:
    """Where the ray from ``center`` to ``toward`` leaves the node's square card."""
    dx, dy = toward.x() - center.x(), toward.y() - center.y()
    m = max(abs(dx), abs(dy))
    if m < 1e-6:
        return QPointF(center)
    k = min(CARD_HALF / m, 1.0)
    return QPointF(center.x() + dx * k, center.y() + dy * k)


class EdgeItem(QGraphicsItem):
    Type = QGraphicsItem.UserType + 2

    def __init__(self, source: str, target: str):
        super().__init__()
        self.source = source
        self.target = target
        self.flow = 0.0
        self.width = 1.5
        self.line = QLineF()
        self._arrow = QPolygonF()
        self._shape: QPainterPath | None = None
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(0)

    def type(self) -> int:
        return EdgeItem.Type

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.target)

    def set_ends(self, source_center: QPointF, target_center: QPointF) -> None:
        """Recompute the arrow from the two nodes' centres (scene coordinates)."""
        self.prepareGeometryChange()
        a = clip_to_card(source_center, target_center)
        b = clip_to_card(target_center, source_center)
        self.line = QLineF(a, b)
        self._shape = None
        self._update_arrow()

    def set_flow(self, flow: float, width: float) -> None:
        if flow == self.flow and width == self.width:
            return
        self.prepareGeometryChange()
        self.flow, self.width = flow, width
        self._shape = None
        self._update_arrow()
        self.update()

    def _update_arrow(self) -> None:
        line = self.line
        length = line.length()
        size = ARROW + self.width
        if length < 1e-6:
            self._arrow = QPolygonF()
        else:
            angle = math.atan2(line.dy(), line.dx())
            tip = line.p2()
            left = QPointF(tip.x() - size * math.cos(angle - 0.45), tip.y() - size * math.sin(angle - 0.45))
            right = QPointF(tip.x() - size * math.cos(angle + 0.45), tip.y() - size * math.sin(angle + 0.45))
            self._arrow = QPolygonF([tip, left, right])
        pad = size + 4
        self._bounds = QRectF(line.p1(), line.p2()).normalized().adjusted(-pad, -pad, pad, pad)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            path = QPainterPath(self.line.p1())
            path.lineTo(self.line.p2())
            stroker = QPainterPathStroker()
            stroker.setWidth(max(10.0, self.width + 6))
            self._shape = stroker.createStroke(path)
            self._shape.addPolygon(self._arrow)
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        color = look.SELECTED if selected else (look.EDGE_FLOW if self.flow > 0 else look.EDGE_IDLE)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod >= look.LOD_LABELS:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # Stop the shaft at the arrow's base so a thick line does not poke through the tip.
        line = QLineF(self.line)
        if line.length() > ARROW + self.width:
            line.setLength(line.length() - (ARROW + self.width) * 0.8)
        pen = QPen(color, self.width + (1.5 if selected else 0.0))
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(pen)
        painter.drawLine(line)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(color))
        painter.drawPolygon(self._arrow)
