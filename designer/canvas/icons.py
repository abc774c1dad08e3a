"""Kind icons: SVG files rendered once into pixmaps (never per paint).

Painting into an SVG file draws the vector icon instead, so exported SVGs stay sharp
(a faded icon too: no embedded bitmap).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPicture, QPixmap
from PySide6.QtSvg import QSvgRenderer

from ..lessons import ICONS_DIR as ICON_DIR

PIXMAP_SIZE = 128  # rendered once; drawn at 40 px, so sharp up to 3× zoom


def icon_path(name: str) -> Path:
    """``resources/icons/<name>.svg`` (a kind name or an action icon name)."""
    return ICON_DIR / f"{name}.svg"


@lru_cache(maxsize=None)
def svg_renderer(name: str) -> QSvgRenderer:
    return QSvgRenderer(str(icon_path(name)))


@lru_cache(maxsize=None)
def icon_image(name: str, size: int = PIXMAP_SIZE) -> QImage:
    """The icon as a premultiplied ARGB image (images, unlike pixmaps, work without a GUI thread check)."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    svg_renderer(name).render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


@lru_cache(maxsize=None)
def icon_pixmap(name: str, size: int = PIXMAP_SIZE) -> QPixmap:
    return QPixmap.fromImage(icon_image(name, size))


def icon(name: str) -> QIcon:
    """A QIcon for menus, toolbars and the palette."""
    return QIcon(str(icon_path(name)))


def draw_icon(painter: QPainter, name: str, rect: QRectF, vector: bool = False) -> None:
    """Draw an icon into ``rect``: the cached pixmap, or the SVG itself when ``vector``."""
    if vector:
        # The painter's pen would otherwise outline every shape of the icon in the output.
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if painter.opacity() < 1.0:
            # Qt's SVG renderer paints a faded icon (a failed node's) into a bitmap layer;
            # recorded as vector commands and replayed, each shape keeps the opacity instead.
            picture = QPicture()
            recorder = QPainter(picture)
            svg_renderer(name).render(recorder, rect)
            recorder.end()
            painter.drawPicture(0, 0, picture)
        else:
            svg_renderer(name).render(painter, rect)
        painter.restore()
    else:
        painter.drawPixmap(rect, icon_pixmap(name), QRectF(0, 0, PIXMAP_SIZE, PIXMAP_SIZE))
