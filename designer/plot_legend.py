"""Legends and event labels that never cover the data.

A :class:`SideLegend` is a pyqtgraph legend placed in its own cell of the plot's layout,
right of the data area (not floating over the curves); it hides itself, and gives its
room back, while no legend of the panel names anything. While one does, every legend
cell is as wide as the widest (``set_reserve``), so that plots stacked in a column have
their time axes at the same x. :class:`EventLabels` writes the scheduled events'
names in a band above the data area (the plot's top-axis row, kept free for them).
"""
from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

from .plot_markers import COLOUR, MAX_LABELS, EventMarkers

LEGEND_CELL = (2, 3)    # row of the ViewBox, a column right of the right axis
BAND_PX = 15.0          # height of the event-label band at scale 1
LABEL_PAD_PX = 6.0      # least room between two event labels


class SideLegend(pg.LegendItem):
    """A legend laid out beside the plot's data area."""

    def __init__(self, plot: pg.PlotItem, text_size_pt: float = 8.0) -> None:
        super().__init__(offset=None, labelTextSize=f"{text_size_pt:g}pt", verSpacing=-6)
        self.setFlag(self.GraphicsItemFlag.ItemIgnoresTransformations, False)
        self.setBrush(pg.mkBrush(255, 255, 255, 0))
        plot.layout.addItem(self, *LEGEND_CELL)
        plot.layout.setColumnSpacing(LEGEND_CELL[1] - 1, 6)    # a gap between the data and the legend
        plot.layout.setAlignment(self, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        plot.legend = self
        self.reserve = 0.0          # the width kept for the cell even with fewer names (alignment)
        self.content_width = 0.0    # the width its names need (0 without names)
        self.content_changed: Callable[[], None] | None = None
        self.updateSize()           # no room while empty (not the layout's default margins)
        self.setVisible(False)

    def addItem(self, item, name: str) -> None:  # noqa: N802 - pyqtgraph API
        super().addItem(item, name)
        self._show_if_needed()

    def removeItem(self, item) -> None:  # noqa: N802 - pyqtgraph API
        super().removeItem(item)
        self._show_if_needed()

    def clear(self) -> None:
        super().clear()
        self._show_if_needed()

    def _show_if_needed(self) -> None:
        self.setVisible(bool(self.items) or self.reserve > 0)

    def set_reserve(self, width: float) -> None:
        """Keep the cell ``width`` wide even when the names need less (0: only what they need)."""
        if abs(width - self.reserve) < 0.5:
            return
        self.reserve = float(width)
        self.updateSize()
        self._show_if_needed()

    def updateSize(self) -> None:  # noqa: N802 - sized by the plot's layout, not moved to (0, 0)
        width = height = 0.0
        for row in range(self.layout.rowCount()):
            row_height = col_width = 0.0
            for col in range(self.layout.columnCount()):
                item = self.layout.itemAt(row, col)
                if item:
                    col_width += item.preferredWidth() + 3
                    row_height = max(row_height, item.preferredHeight())
            width, height = max(width, col_width), height + row_height
        content = width + 6 if getattr(self, "items", None) else 0.0
        changed = abs(content - getattr(self, "content_width", 0.0)) >= 0.5
        self.content_width = content
        width = max(content, getattr(self, "reserve", 0.0))
        self.setMinimumWidth(width)
        self.setPreferredSize(width, height)
        self.setMaximumSize(width, height)
        self.updateGeometry()
        if changed and getattr(self, "content_changed", None) is not None:
            self.content_changed()

    def set_text_size(self, points: float) -> None:
        self.opts["labelTextSize"] = f"{points:g}pt"
        for _, label in self.items:
            label.setText(label.text, size=f"{points:g}pt")
        self.updateSize()

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - not draggable over the data
        ev.ignore()

    def texts(self) -> list[str]:
        return [label.text for _, label in self.items]


class EventLabels(pg.GraphicsObject):
    """The events' names, drawn in the band above the plot's data area."""

    def __init__(self, plot: pg.PlotItem, markers: EventMarkers) -> None:
        self.band = plot.getAxis("top")
        plot.showAxis("top")
        self.band.setStyle(showValues=False, tickLength=0)
        self.band.setPen(pg.mkPen(None))
        super().__init__(self.band)
        self.plot, self.markers = plot, markers
        self._font = QFont()
        self.label_rects: list[QRectF] = []     # in scene coordinates, as last painted
        self.drawn: list[str] = []              # their texts
        self.set_scale(1.0)
        plot.vb.sigXRangeChanged.connect(lambda *a: self.update())

    def set_scale(self, scale: float) -> None:
        self._font.setPointSizeF(8.0 * scale)
        self.band.setHeight(BAND_PX * scale)
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self.band.boundingRect()

    def paint(self, painter: QPainter, *args) -> None:
        self.label_rects, self.drawn = [], []
        first, counts = self.markers.visible_columns()
        if not len(first):
            return
        painter.setFont(self._font)
        painter.setPen(QColor(COLOUR))
        metrics = painter.fontMetrics()
        band = self.boundingRect()
        # A label per marker where there is room; a marker too close to the previous label is
        # counted in it ("fail Web 1 (+2)"): no event goes unmentioned.
        labels: list[list] = []      # [x, marker index, events]
        for i, n in zip(first[:MAX_LABELS * 4], counts):
            scene_x = self.plot.vb.mapViewToScene(QPointF(float(self.markers.times[i]), 0)).x()
            x = self.mapFromScene(QPointF(scene_x, 0)).x()
            if x > band.right():
                break
            if labels and (x < labels[-1][0] + self._width(metrics, labels[-1]) + LABEL_PAD_PX
                           or len(labels) >= MAX_LABELS):
                labels[-1][2] += int(n)
            else:
                labels.append([x, i, int(n)])
        for x, i, n in labels:
            text = self._text(i, n)
            rect = QRectF(x + 2, band.top(), metrics.horizontalAdvance(text) + 2, band.height())
            if rect.right() > band.right():    # near the right end: left of its line, else shortened
                left = QRectF(rect).translated(-rect.width() - 4, 0)
                if not self.label_rects or self.mapRectFromScene(self.label_rects[-1]).right() <= left.left():
                    rect = left
                elif band.right() - rect.left() >= 40:
                    rect.setRight(band.right())
                    text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(rect.width()) - 2)
                else:
                    continue
            painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            self.label_rects.append(self.mapRectToScene(rect))
            self.drawn.append(text)

    def _text(self, i: int, n: int) -> str:
        return self.markers._text(int(self.markers._order[i])) + (f" (+{n - 1})" if n > 1 else "")

    def _width(self, metrics, label: list) -> float:
        return metrics.horizontalAdvance(self._text(label[1], label[2])) + 2
