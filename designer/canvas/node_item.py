"""A node on the canvas: paints and hit-tests what the scene tells it to show.

The item keeps only display values given by the scene (kind, label, replicas, SPOF
reason, live state); the document stays the one source of truth. Painting is cached
per device (``DeviceCoordinateCache``) and uses pre-rendered icon pixmaps.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPaintEngine, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyle, QStyleOptionGraphicsItem, QWidget

from simulation.kinds import KINDS
from simulation.state import NodeState

from . import look
from .icons import draw_icon


def _look_key(live: NodeState | None) -> tuple | None:
    """What a live state changes in the picture (colour in 2% steps, badges)."""
    if live is None:
        return None
    queue = look.fmt_rate(live.queue) if live.queue >= 0.5 else ""
    return (round(max(live.utilization, live.utilization_max) * 50), queue, live.replicas, live.replicas_up, live.failed)


class NodeItem(QGraphicsItem):
    """One node. ``Type`` lets the scene tell nodes from edges without isinstance chains."""

    Type = QGraphicsItem.UserType + 1

    def __init__(self, node_id: str, kind: str):
        super().__init__()
        self.node_id = node_id
        self.kind = kind
        self.label = ""
        self.replicas = 1
        self.primaries = 1           # a database's copies that take writes (multi-primary when ≥ 2)
        self.shards = 1              # a sharded database: its replicas are its shards' stations
        self.spof_reason = ""
        self.spof_kind = ""          # "full" (solid red outline), "partial" (dashed orange) or ""
        self.live: NodeState | None = None
        self.editing_label = False
        self.exporting = False
        self.has_handle = bool(KINDS[kind].sends_to)   # a database is the end of the path
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(False)
        self.setZValue(1)

    def type(self) -> int:
        return NodeItem.Type

    # ----- display values, set by the scene ----------------------------------------------
    def set_display(self, *, label: str | None = None, replicas: int | None = None,
                    spof_reason: str | None = None, spof_kind: str | None = None,
                    live: NodeState | None | bool = False, primaries: int | None = None,
                    shards: int | None = None) -> None:
        """Change what is shown; ``live=False`` means "leave as is", ``None`` clears it."""
        if primaries is not None:
            self.primaries = primaries
        if spof_kind is not None:
            self.spof_kind = spof_kind
        if label is not None:
            self.label = label
        if replicas is not None:
            self.replicas = replicas
        if shards is not None:
            self.shards = shards
        if spof_reason is not None:
            self.spof_reason = spof_reason
        if live is not False:
            if label is None and replicas is None and spof_reason is None and spof_kind is None \
                    and _look_key(live) == _look_key(self.live):  # type: ignore[arg-type]
                self.live = live  # type: ignore[assignment]
                return  # looks the same: keep the cached bitmap (live updates come at 10 Hz)
            self.live = live  # type: ignore[assignment]
        self.update()

    # ----- geometry and hit tests ----------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return look.NODE_BOUNDS

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(look.CARD, 8, 8)
        path.addRect(look.LABEL)
        r = look.HANDLE_RADIUS + 3
        path.addEllipse(look.HANDLE_CENTER, r, r)
        return path

    def handle_contains(self, pos: QPointF) -> bool:
        """Whether ``pos`` (item coordinates) is on the connection handle (a little generous)."""
        if not self.has_handle:
            return False
        d = pos - look.HANDLE_CENTER
        return d.x() * d.x() + d.y() * d.y() <= (look.HANDLE_RADIUS + 4) ** 2

    def label_contains(self, pos: QPointF) -> bool:
        return look.LABEL.contains(pos)

    def handle_scene_pos(self) -> QPointF:
        return self.mapToScene(look.HANDLE_CENTER)

    # ----- painting --------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        selected = bool(option.state & QStyle.StateFlag.State_Selected) and not self.exporting
        live = self.live
        failed = live is not None and live.failed
        fill = look.IDLE_FILL
        if failed:
            fill = look.FAILED_FILL
        elif live is not None:
            fill = look.utilization_color(max(live.utilization, live.utilization_max))  # the busiest replica
        border = look.SELECTED if selected else look.BORDER
        if lod < look.LOD_ICONS:  # far out: a coloured square is all one can see
            painter.fillRect(look.CARD, self._spof_pen().color() if self.spof_kind else border)
            painter.fillRect(look.CARD.adjusted(6, 6, -6, -6), fill)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        replicas = live.replicas if live is not None else self.replicas
        if replicas > 1:
            self._paint_stack(painter, fill, min(replicas, 3))
        if self.spof_kind:
            painter.setPen(self._spof_pen())
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(look.CARD.adjusted(-5, -5, 5, 5), 11, 11)
        if selected:
            painter.setPen(QPen(QColor(28, 126, 214, 60), 8))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(look.CARD, 8, 8)
        painter.setPen(QPen(border, 2.5 if selected else 1.5))
        painter.setBrush(QBrush(fill))
        painter.drawRoundedRect(look.CARD, 8, 8)
        vector = painter.paintEngine() is not None and painter.paintEngine().type() == QPaintEngine.Type.SVG
        if failed:
            painter.setOpacity(0.35)
        draw_icon(painter, self.kind, look.ICON, vector)
        painter.setOpacity(1.0)
        if failed:
            self._paint_cross(painter)
        if not self.editing_label:
            self._paint_label(painter, lod)
        if lod < look.LOD_LABELS:
            return
        top, foot = look.TOP_BADGE_EDGE, look.BOTTOM_BADGE_EDGE
        if self.shards > 1:
            self._badge(painter, 12, top, f"{self.shards} shards", QColor("#343a40"))
        elif replicas > 1:
            self._badge(painter, 12, top, f"×{replicas}", QColor("#343a40"))
        if self.primaries > 1:
            self._badge(painter, 4, foot, f"×{self.primaries} primaries", QColor("#5f3dc4"))
        if live is not None:
            if live.queue >= 0.5:
                self._badge(painter, -12, top, f"q {look.fmt_rate(live.queue)}", QColor("#e8590c"))
            if 0 < live.replicas_up < live.replicas:
                self._badge(painter, -4, foot, f"{live.replicas_up}/{live.replicas} up", look.SPOF)
        if self.has_handle and not self.exporting:
            painter.setPen(QPen(look.BORDER, 1.5))
            painter.setBrush(QBrush(QColor("#ffffff")))
            painter.drawEllipse(look.HANDLE_CENTER, look.HANDLE_RADIUS, look.HANDLE_RADIUS)

    def _spof_pen(self) -> QPen:
        """Solid red around a full SPOF, dashed orange around a partial one."""
        if self.spof_kind == "partial":
            pen = QPen(look.SPOF_PARTIAL, 3.5, Qt.PenStyle.DashLine)
            pen.setDashPattern([2.5, 1.5])
            return pen
        return QPen(look.SPOF, 3.5)

    def _paint_stack(self, painter: QPainter, fill: QColor, n: int) -> None:
        painter.setPen(QPen(look.BORDER, 1.2))
        painter.setBrush(QBrush(fill.darker(104)))
        for i in range(n - 1, 0, -1):
            painter.drawRoundedRect(look.CARD.translated(5 * i, -5 * i), 8, 8)

    def _paint_cross(self, painter: QPainter) -> None:
        pen = QPen(look.SPOF, 5)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        r = look.CARD.adjusted(12, 12, -12, -12)
        painter.drawLine(r.topLeft(), r.bottomRight())
        painter.drawLine(r.topRight(), r.bottomLeft())

    def label_layout(self, zoom: float) -> tuple[QFont, list[str], QRectF]:
        """How the label is drawn at view ``zoom``: its font, lines, and the rectangle they
        fill (item coordinates). No lines when not even one fits under the card. (Kept for the
        next paint at the same zoom: live colours repaint nodes ten times a second.) A node
        without a label shows its id (a file written by hand may give none)."""
        text = self.label or self.node_id
        key = (text, round(zoom, 4), look.TEXT_SCALE, look.LABEL_AREA.width())
        cached = self.__dict__.get("_label_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        font = QFont()
        font.setPointSizeF(look.label_point_size(zoom))
        metrics = QFontMetricsF(font)
        area = look.LABEL_AREA
        lines = look.label_lines(text, metrics, area.width(), int(area.height() // metrics.lineSpacing()))
        width = max((metrics.horizontalAdvance(line) for line in lines), default=0.0)
        rect = QRectF(area.center().x() - width / 2, area.top(), width, len(lines) * metrics.lineSpacing())
        self._label_cache = (key, (font, lines, rect))
        return font, lines, rect

    def _paint_label(self, painter: QPainter, zoom: float) -> None:
        font, lines, rect = self.label_layout(zoom)
        if not lines:
            return
        painter.setFont(font)
        painter.setPen(Qt.PenStyle.NoPen)      # a halo of the background: edges never run through the text
        painter.setBrush(look.LABEL_HALO)
        pad = rect.height() / len(lines) * 0.12
        painter.drawRoundedRect(rect.adjusted(-2 * pad, 0, 2 * pad, 0), pad * 2, pad * 2)
        painter.setPen(QColor("#212529"))
        painter.drawText(QRectF(look.LABEL_AREA.left(), rect.top(), look.LABEL_AREA.width(), rect.height()),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "\n".join(lines))

    @staticmethod
    def _badge(painter: QPainter, x: float, bottom: float, text: str, color: QColor) -> None:
        """A pill with ``text``, its bottom edge at ``bottom``; it starts at ``x`` and grows
        away from the node's centre (to the right for x > 0, to the left for x < 0), and with
        the presenter's text size (look.BADGE_SCALE)."""
        k = look.BADGE_SCALE
        font = QFont(painter.font())
        font.setPointSizeF(look.BADGE_PT * k)
        font.setBold(True)
        painter.setFont(font)
        w = painter.fontMetrics().horizontalAdvance(text) + 10 * k
        h = look.BADGE_H * k
        rect = QRectF(x if x > 0 else x - w, bottom - h, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(rect, h / 2, h / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):  # noqa: N802 (Qt)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            scene = self.scene()
            if scene is not None and hasattr(scene, "node_item_moved"):
                scene.node_item_moved(self.node_id)
        return super().itemChange(change, value)
