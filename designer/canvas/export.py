"""Rendering the canvas to an image or an SVG file (for slides and the headless exporter)."""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator

from .scene import CanvasScene

MARGIN = 20.0


def export_rect(scene: CanvasScene) -> QRectF:
    """The items' bounding rectangle with a margin (a small default canvas when empty)."""
    scene.refresh_spof()
    rect = scene.itemsBoundingRect()
    if rect.isEmpty():
        rect = QRectF(0, 0, 200, 120)
    return rect.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)


def render_to_image(scene: CanvasScene, scale: float = 2.0, transparent: bool = False) -> QImage:
    """The whole topology at ``scale``× resolution on a white or transparent background."""
    source = export_rect(scene)
    w, h = max(1, math.ceil(source.width() * scale)), max(1, math.ceil(source.height() * scale))
    image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent if transparent else Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
                           | QPainter.RenderHint.TextAntialiasing)
    _render(scene, painter, QRectF(0, 0, w, h), source)
    painter.end()
    return image


def render_to_svg(scene: CanvasScene, path: str | Path, title: str = "ScaleLab topology") -> None:
    """The whole topology as an SVG file (icons stay vectors)."""
    source = export_rect(scene)
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QSize(math.ceil(source.width()), math.ceil(source.height())))
    gen.setViewBox(QRectF(0, 0, source.width(), source.height()))
    gen.setTitle(title)
    gen.setDescription("Exported from ScaleLab")
    painter = QPainter(gen)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _render(scene, painter, QRectF(0, 0, source.width(), source.height()), source)
    painter.end()


def _render(scene: CanvasScene, painter: QPainter, target: QRectF, source: QRectF) -> None:
    # The selection is hidden without telling anyone (no selectionChanged round trip).
    selected = scene.selectedItems()
    blocked = scene.blockSignals(True)
    scene.set_exporting(True)
    try:
        for item in selected:
            item.setSelected(False)
        scene.render(painter, target, source, Qt.AspectRatioMode.KeepAspectRatio)
    finally:
        for item in selected:
            item.setSelected(True)
        scene.set_exporting(False)
        scene.blockSignals(blocked)
