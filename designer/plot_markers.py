"""The lesson's scheduled events on a plot: one item for all of them.

One pyqtgraph item per event (an InfiniteLine) makes 5,000 events cost minutes to add
and remove. This item holds the times in a numpy array and, when painted, draws one
dashed line per screen pixel column that holds events (so 100,000 events draw at most
a few hundred lines), with a label where there is room (``fail Web 1 (+3)`` when
several events share a pixel).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

COLOUR = "#b71c1c"
MAX_LINES = 2_000       # drawn per paint (one per pixel column at most)
LABEL_GAP_PX = 70       # a label needs this much room after the previous one
MAX_LABELS = 60
LINE_WIDTH = 1.2        # pixels at presenter scale 1 (as the curves)


class EventMarkers(pg.GraphicsObject):
    """Vertical dashed lines at the events' times across the whole view height."""

    def __init__(self, with_labels: bool = False) -> None:
        super().__init__()
        self.with_labels = with_labels
        self.times = np.empty(0)
        self._order = np.empty(0, dtype=int)
        self._text: Callable[[int], str] = str
        self._pen = QPen(QColor(COLOUR), LINE_WIDTH, Qt.PenStyle.DashLine)    # seen on a projector too
        self._pen.setCosmetic(True)
        self._font = QFont()
        self._font.setPointSizeF(8.0)
        self.setZValue(-1)

    def set_events(self, times: np.ndarray, order: np.ndarray, text: Callable[[int], str]) -> None:
        """Events at ``times`` (sorted; ``order[k]`` is the original index of the k-th) and
        ``text(index)`` describing one (asked only for the few labels drawn)."""
        self.times, self._order, self._text = times, order, text
        self.prepareGeometryChange()
        self.update()

    def set_scale(self, scale: float) -> None:
        """Presenter mode: lines ``scale`` × wider."""
        self._pen.setWidthF(LINE_WIDTH * scale)
        self.update()

    def count(self) -> int:
        return len(self.times)

    # ----- pyqtgraph / Qt ----------------------------------------------------------------
    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph hook
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        vb = self.getViewBox()
        if vb is None or not len(self.times):
            return QRectF()
        return vb.viewRect().normalized()

    def visible_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the first event in each visible pixel column, and how many share it."""
        vb = self.getViewBox()
        if vb is None or not len(self.times):
            return np.empty(0, dtype=int), np.empty(0, dtype=int)
        rect = vb.viewRect().normalized()
        lo, hi = rect.left(), rect.right()
        i0 = int(np.searchsorted(self.times, lo, side="left"))
        i1 = int(np.searchsorted(self.times, hi, side="right"))
        if i1 <= i0:
            return np.empty(0, dtype=int), np.empty(0, dtype=int)
        px = self.pixelWidth() or (hi - lo) / 1000.0 or 1.0
        column = np.floor((self.times[i0:i1] - lo) / px).astype(np.int64)
        _, first, counts = np.unique(column, return_index=True, return_counts=True)
        return (first + i0)[:MAX_LINES], counts[:MAX_LINES]

    def paint(self, painter: QPainter, *args) -> None:
        vb = self.getViewBox()
        if vb is None:
            return
        first, counts = self.visible_columns()
        if not len(first):
            return
        rect = vb.viewRect().normalized()
        painter.setPen(self._pen)
        top, bottom = rect.top(), rect.bottom()
        for i in first:
            x = float(self.times[i])
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        if not self.with_labels:
            return
        # Labels in screen coordinates (the view's y axis is flipped and scaled).
        to_screen = painter.transform()
        painter.resetTransform()
        painter.setFont(self._font)
        painter.setPen(QColor(COLOUR))
        last = -1e9
        shown = 0
        y_top = min(to_screen.map(QPointF(0, top)).y(), to_screen.map(QPointF(0, bottom)).y())
        for i, n in zip(first, counts):
            sx = to_screen.map(QPointF(float(self.times[i]), top)).x()
            if sx - last < LABEL_GAP_PX:
                continue
            text = self._text(int(self._order[i])) + (f" (+{n - 1})" if n > 1 else "")
            painter.drawText(QPointF(sx + 2, y_top + 10), text)
            last = sx
            shown += 1
            if shown >= MAX_LABELS:
                break
