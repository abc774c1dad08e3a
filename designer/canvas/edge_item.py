"""Edges on the canvas: arrows from one node's card to another's, as thick as their flow.

An :class:`EdgeItem` per edge hit-tests and carries the selection; one
:class:`EdgeLayer` paints them all in batches.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from . import look

CARD_HALF = 38.0   # where an arrow stops: just outside the card and its SPOF outline
ARROW = 10.0
DOT_SPACING = 26.0   # px between two moving dots on a flowing edge
MAX_DOT_EDGES = 500  # above this many flowing edges, no dots (thickness still shows flow)
MAX_WIDTH = 10.0   # flow widths stay below this (look.flow_width), selection included


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
        self.arrow = QPolygonF()
        self._shape: QPainterPath | None = None
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
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
        self._changed()

    def set_flow(self, flow: float, width: float) -> None:
        """Thickness follows the flow; the bounds already allow the widest pen (no re-indexing)."""
        if flow == self.flow and width == self.width:
            return
        self.flow, self.width = flow, width
        self._shape = None
        self._update_arrow()
        self._changed()

    def _update_arrow(self) -> None:
        line = self.line
        length = line.length()
        size = ARROW + self.width
        if length < 1e-6:
            self.arrow = QPolygonF()
        else:
            angle = math.atan2(line.dy(), line.dx())
            tip = line.p2()
            left = QPointF(tip.x() - size * math.cos(angle - 0.45), tip.y() - size * math.sin(angle - 0.45))
            right = QPointF(tip.x() - size * math.cos(angle + 0.45), tip.y() - size * math.sin(angle + 0.45))
            self.arrow = QPolygonF([tip, left, right])
        pad = ARROW + MAX_WIDTH + 4
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
            self._shape.addPolygon(self.arrow)
        return self._shape

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):  # noqa: N802 (Qt)
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self._changed()
        return super().itemChange(change, value)

    def _changed(self) -> None:
        scene = self.scene()
        if scene is not None and hasattr(scene, "edge_layer"):
            scene.edge_layer.invalidate()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        """Nothing: :class:`EdgeLayer` draws every edge in a few batched calls."""


class EdgeLayer(QGraphicsItem):
    """Draws all edges at once, grouped by colour and width.

    2,000 edges as 2,000 painted items cost ~70 ms a frame in Python calls alone;
    batched ``drawLines`` and one arrow path per group take a few milliseconds.
    The :class:`EdgeItem` objects stay for hit-testing and selection.
    """

    def __init__(self, edges: dict[tuple[str, str], EdgeItem]):
        super().__init__()
        self.edges = edges
        self._batches: list[tuple[QColor, float, list[QLineF], QPainterPath]] | None = None
        self._bounds = QRectF()
        self._flowing: list[tuple[QLineF, float, float]] = []   # shaft, relative flow, width
        self.dot_phase: float | None = None   # seconds of animation; None: no dots
        self.setZValue(0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        # Qt limits a device cache to the viewport, so this is one viewport-sized bitmap at most.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def invalidate(self) -> None:
        """An edge appeared, vanished, moved, or changed flow or selection."""
        if self._batches is not None:
            self.prepareGeometryChange()   # once per burst: the batches are rebuilt lazily
            self._batches = None
            self.update()

    def _build(self) -> None:
        groups: dict[tuple[str, float], tuple[QColor, list[QLineF], QPainterPath]] = {}
        bounds = QRectF()
        self._flowing = []
        for edge in self.edges.values():
            color = look.SELECTED if edge.isSelected() else (look.EDGE_FLOW if edge.flow > 0 else look.EDGE_IDLE)
            width = edge.width + (1.5 if edge.isSelected() else 0.0)
            key = (color.name(), round(width, 1))
            if key not in groups:
                groups[key] = (color, [], QPainterPath())
            _, lines, arrows = groups[key]
            line = QLineF(edge.line)
            if line.length() > ARROW + edge.width:   # stop the shaft at the arrow's base
                line.setLength(line.length() - (ARROW + edge.width) * 0.8)
            lines.append(line)
            if edge.flow > 0:
                self._flowing.append((line, (edge.width - 2.0) / 6.0, edge.width))
            arrows.addPolygon(edge.arrow)
            arrows.closeSubpath()
            bounds = bounds.united(edge.boundingRect())
        self._batches = [(color, width, lines, arrows) for (_, width), (color, lines, arrows) in groups.items()]
        self._bounds = bounds

    def boundingRect(self) -> QRectF:
        if self._batches is None:
            self._build()
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._batches is None:
            self._build()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        near = lod >= look.LOD_LABELS
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, near)
        for color, width, lines, arrows in self._batches or ():
            if near:
                pen = QPen(color, width)
                pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            else:  # far out: hairlines (cheap to rasterise), still thicker where the flow is
                pen = QPen(color, max(1.0, round(width * lod * 2) / 2))
                pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLines(lines)
            if near:  # arrowheads are a few pixels wide when zoomed far out: not drawn
                painter.fillPath(arrows, color)
        if near and self.dot_phase is not None and len(self._flowing) <= MAX_DOT_EDGES:
            self._paint_dots(painter, self.dot_phase)

    def _paint_dots(self, painter: QPainter, phase: float) -> None:
        """Dots running along flowing edges, faster where more flows: traffic you can watch."""
        painter.setPen(Qt.PenStyle.NoPen)
        white, blue = QColor(255, 255, 255, 235), look.EDGE_FLOW
        for line, rel, width in self._flowing:
            length = line.length()
            if length < DOT_SPACING:
                continue
            speed = 25.0 + 75.0 * max(0.0, min(rel, 1.0))      # px per second
            thick = width >= 5.0
            painter.setBrush(white if thick else blue)
            r = 2.4 if thick else width / 2 + 1.6
            d = (phase * speed) % DOT_SPACING
            while d < length:
                painter.drawEllipse(line.pointAt(d / length), r, r)
                d += DOT_SPACING
