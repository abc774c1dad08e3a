"""The canvas background: a light grid of 20 px cells, a darker line every 5 cells."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPen

from . import look


def draw_grid(painter: QPainter, rect: QRectF, scale: float) -> None:
    """Fill ``rect`` (scene coordinates) with the background and the grid lines at view ``scale``.

    Zoomed out, only every fifth line is drawn; when even those would be closer than
    6 pixels the grid is left out.
    """
    painter.fillRect(rect, look.BACKGROUND)
    step = look.GRID if scale >= 0.6 else look.GRID * 5
    if step * scale < 6:
        return
    major: list[tuple[float, bool]] = []
    minor: list[tuple[float, bool]] = []
    x = int(rect.left() // step) * step
    while x < rect.right():
        (major if round(x / look.GRID) % 5 == 0 else minor).append((x, True))
        x += step
    y = int(rect.top() // step) * step
    while y < rect.bottom():
        (major if round(y / look.GRID) % 5 == 0 else minor).append((y, False))
        y += step
    for lines, color in ((minor, look.GRID_MINOR), (major, look.GRID_MAJOR)):
        painter.setPen(QPen(color, 0))
        for v, vertical in lines:
            if vertical:
                painter.drawLine(QPointF(v, rect.top()), QPointF(v, rect.bottom()))
            else:
                painter.drawLine(QPointF(rect.left(), v), QPointF(rect.right(), v))
