"""Rendering the canvas to an image or an SVG file (for slides and the headless exporter).

Items marked with :data:`NOT_EXPORTED` (the dots of followed requests, a live overlay of
sampled requests) are left out of every picture: an export shows the topology and its
state, the same from the app and from ``scalelab export``."""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator

from .scene import CanvasScene

MARGIN = 20.0
NOT_EXPORTED = 0x5CA1    # QGraphicsItem.data key: an item set True here is not drawn in exports


def _not_exported(scene: CanvasScene) -> list:
    return [item for item in scene.items() if item.data(NOT_EXPORTED)]


def export_rect(scene: CanvasScene) -> QRectF:
    """The items' bounding rectangle with a margin (a small default canvas when empty)."""
    scene.refresh_spof()
    skipped = set(_not_exported(scene))
    if not skipped:
        rect = scene.itemsBoundingRect()
    else:
        rect = QRectF()
        for item in scene.items():
            if item not in skipped and item.topLevelItem() not in skipped:
                rect = rect.united(item.sceneBoundingRect())
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
    hidden = [item for item in _not_exported(scene) if item.isVisible()]
    blocked = scene.blockSignals(True)
    scene.set_exporting(True)
    try:
        for item in selected:
            item.setSelected(False)
        for item in hidden:
            item.setVisible(False)
        scene.render(painter, target, source, Qt.AspectRatioMode.KeepAspectRatio)
    finally:
        for item in hidden:
            item.setVisible(True)
        for item in selected:
            item.setSelected(True)
        scene.set_exporting(False)
        scene.blockSignals(blocked)
