"""Zoom and pan of the canvas view: zoom about the cursor or the view centre, fit the
topology, keep room to scroll, and the presenter's label scale. A mixin of
:class:`~designer.canvas.view.CanvasView`."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QWheelEvent

from . import look
from .annotation_items import TextNoteItem, note_font

MIN_SCALE, MAX_SCALE = 0.05, 4.0


class ZoomPan:
    """Zooming for a QGraphicsView whose scene is ``canvas_scene``."""

    # ----- zoom and pan --------------------------------------------------------------------------
    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Zoom by ``factor`` keeping the scene point at viewport position ``anchor``
        (default: the viewport's centre) where it is."""
        current = self.transform().m11()
        factor = max(MIN_SCALE / current, min(MAX_SCALE / current, factor))
        at = anchor if anchor is not None else self.viewport().rect().center()
        fixed = self.mapToScene(at)
        self.scale(factor, factor)
        self._grow_scene_rect()
        moved = self.mapFromScene(fixed) - at
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def zoom_in(self) -> None:
        self.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.zoom_by(0.8)

    def fit_to_view(self) -> None:
        rect = self.canvas_scene.itemsBoundingRect()
        if rect.isEmpty():
            return
        self._grow_scene_rect()   # room to centre the items, however far they reach
        self.fitInView(rect.adjusted(-30, -30, 30, 30), Qt.AspectRatioMode.KeepAspectRatio)
        if self.transform().m11() > 1.5:  # a lone node should not fill the screen
            self.resetTransform()
            self.scale(1.5, 1.5)
            self.centerOn(rect.center())
        elif self.transform().m11() < MIN_SCALE:
            self.resetTransform()
            self.scale(MIN_SCALE, MIN_SCALE)
            self.centerOn(rect.center())
        self._remember_fit()

    def _remember_fit(self) -> None:
        self._fitted = (self.transform().m11(), self.mapToScene(self.viewport().rect().center()))

    def _still_fitted(self, grown: QPoint | None = None) -> bool:
        """Neither zoomed nor panned since the last Fit. ``grown``: how much the viewport has
        just grown, before the view caught up (its centre is then that much further on)."""
        fitted = getattr(self, "_fitted", None)
        if not fitted or abs(self.transform().m11() - fitted[0]) > 1e-9:
            return False
        centre = self.viewport().rect().center() - (grown / 2 if grown is not None else QPoint())
        moved = self.mapToScene(centre) - fitted[1]
        return moved.manhattanLength() <= 3.0 / fitted[0]

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt)
        """A fitted view stays fitted when the canvas grows or shrinks (the docks settle, the
        window goes full screen); a zoomed or panned one keeps its zoom."""
        old = event.oldSize()
        grown = QPoint(event.size().width() - old.width(), event.size().height() - old.height())
        fitted = old.isValid() and self._still_fitted(grown)
        super().resizeEvent(event)
        if fitted:
            QTimer.singleShot(0, self, lambda: self._still_fitted() and self.fit_to_view())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt)
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps, event.position().toPoint())
            event.accept()
        else:
            super().wheelEvent(event)

    def _grow_scene_rect(self, *_: object) -> None:
        """Keep room to scroll around the items, wherever they have been moved."""
        needed = self.canvas_scene.itemsBoundingRect().adjusted(-2000, -2000, 2000, 2000)
        if not self.sceneRect().contains(needed):
            self.setSceneRect(self.sceneRect().united(needed))

    def set_text_scale(self, scale: float) -> None:
        """Presenter mode: node labels and text boxes ``scale`` × their size (a text box keeps
        its width and grows as tall as its text needs)."""
        look.set_text_scale(scale)
        for node in self.canvas_scene.nodes.values():
            node.prepareGeometryChange()
            node.update()
        for item in self.canvas_scene.annotations:
            if isinstance(item, TextNoteItem):
                item.set_annotation(item.note)
        if self._note_editor is not None:
            self._note_editor.setFont(note_font())
        self.canvas_scene.update()

    def label_point_size(self) -> float:
        """The point size node labels show at on screen (at the view's zoom)."""
        zoom = self.transform().m11()
        return look.label_point_size(zoom) * zoom
