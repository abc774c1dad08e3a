"""The canvas view: where users drop, connect, select, move and edit in place.

Mouse gestures are :mod:`interactions` objects; edit operations go through the
:class:`DocumentController` so that each one is an undo step. Zoom and pan
(:mod:`zoom`), the keyboard actions (:mod:`view_actions`), the node menu
(:mod:`context_menus`) and the annotation tools (:mod:`annotation_view`) are mixins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import shiboken6
from PySide6.QtCore import QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QDragEnterEvent, QDragMoveEvent, QDropEvent, QHelpEvent, QImage, QKeyEvent,
                           QMouseEvent, QPainter)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QLabel, QToolTip, QWidget

from simulation.kinds import KINDS
from simulation.params import FormatError
from simulation.state import NodeState

from . import KIND_MIME, export, look
from .annotation_items import TextNoteEditor, TextNoteItem
from .annotation_view import AnnotationTools
from .context_menus import ContextMenus
from .grid import draw_grid
from .interactions import Interaction, interaction_for
from .label_editor import LabelEditor
from .scene import CanvasScene
from .view_actions import CanvasActions
from .zoom import ZoomPan


class CanvasView(AnnotationTools, ContextMenus, ZoomPan, CanvasActions, QGraphicsView):
    connectionRefused = Signal(str)
    failRequested = Signal(str)
    recoverRequested = Signal(str)
    failReplicaRequested = Signal(str, int)      # one primary of a multi-primary database
    recoverReplicaRequested = Signal(str, int)
    shardFailRequested = Signal(str, int)      # (database, replica of the shard's primary)
    shardRecoverRequested = Signal(str, int)
    propertiesRequested = Signal(str)
    selectionChangedIds = Signal(list)

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self._interaction: Interaction | None = None
        self._editor: LabelEditor | None = None
        self._note_editor: TextNoteEditor | None = None
        self.arrow_tool = False          # Add arrow: the next drag on the canvas draws one
        # Connected before the scene's own handler, so gestures end before items go away.
        controller.documentReplaced.connect(self.cancel_gestures)
        controller.nodeRemoved.connect(self._node_removed)
        controller.annotationAdded.connect(self._annotations_renumbered)
        controller.annotationRemoved.connect(self._annotations_renumbered)
        self.canvas_scene = CanvasScene(controller, self)
        self.setScene(self.canvas_scene)
        # Items switch antialiasing on themselves where it shows (not for 2,000 far-away edges).
        self.setRenderHints(QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState)
        # Zooms keep their own anchor (zoom_by): Qt's AnchorUnderMouse uses the last mouse
        # move it saw, which the gestures below never pass on.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSceneRect(QRectF(-5000, -5000, 10000, 10000))
        self.canvas_scene.selectionChanged.connect(self._emit_selection)
        self._grow_timer = QTimer(self, singleShot=True, interval=0, timeout=self._grow_scene_rect)
        for sig in (controller.nodeAdded, controller.nodeChanged, controller.documentReplaced):
            sig.connect(self._grow_timer.start)
        self._refusal = QLabel(self.viewport())
        self._refusal.setStyleSheet("QLabel { background: #fff5f5; color: #c92a2a; border: 1px solid #ffa8a8;"
                                    " border-radius: 4px; padding: 6px 10px; font-weight: bold; }")
        self._refusal.hide()
        self._refusal_timer = QTimer(self, singleShot=True, interval=4000, timeout=self._refusal.hide)
        self._make_actions()
        QTimer.singleShot(0, self.fit_to_view)

    # ----- selection ---------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        return self.canvas_scene.selected_node_ids()

    def _emit_selection(self) -> None:
        if shiboken6.isValid(self.canvas_scene):   # not while the scene is being destroyed
            self.selectionChangedIds.emit(self.selected_ids())

    def select_ids(self, ids: Iterable[str]) -> None:
        nodes = self.canvas_scene.nodes
        self.set_selection({nodes[i] for i in ids if i in nodes})

    def set_selection(self, items: set[QGraphicsItem]) -> None:
        """Select exactly ``items`` with one selectionChanged signal."""
        scene = self.canvas_scene
        blocked = scene.blockSignals(True)
        before = set(scene.selectedItems())
        for item in before - items:
            item.setSelected(False)
        for item in items - before:
            item.setSelected(True)
        scene.blockSignals(blocked)
        if before != items:
            scene.selectionChanged.emit()

    def select_all(self) -> None:
        self.set_selection(set(self.canvas_scene.nodes.values()) | set(self.canvas_scene.annotations))

    def selected_annotations(self) -> list[int]:
        return self.canvas_scene.selected_annotations()

    def _select_new(self, ids: list[str], notes_before: int) -> None:
        """Select pasted or duplicated nodes and the annotations appended after ``notes_before``."""
        nodes = self.canvas_scene.nodes
        self.set_selection({nodes[i] for i in ids if i in nodes} | set(self.canvas_scene.annotations[notes_before:]))

    # ----- edits -------------------------------------------------------------------------------
    def delete_selection(self) -> None:
        ids, edges, notes = self.selected_ids(), self.canvas_scene.selected_edges(), self.selected_annotations()
        if ids or notes:
            self.controller.remove_items(ids, notes)   # the nodes' edges go with them
        elif edges:
            self.controller.remove_edges(edges)

    def copy_selection(self) -> str:
        ids, notes = self.selected_ids(), self.selected_annotations()
        return self.controller.copy_nodes(ids, notes) if ids or notes else ""

    def cut_selection(self) -> None:
        ids, notes = self.selected_ids(), self.selected_annotations()
        if notes:
            self.controller.copy_nodes(ids, notes)
            self.controller.remove_items(ids, notes)
        elif ids:
            self.controller.cut(ids)

    def paste(self) -> list[str]:
        before = len(self.controller.document.annotations)
        ids = self.controller.paste()
        self._select_new(ids, before)
        return ids

    def duplicate_selection(self) -> list[str]:
        before = len(self.controller.document.annotations)
        ids = self.controller.duplicate(self.selected_ids(), self.selected_annotations())
        self._select_new(ids, before)
        return ids

    # ----- live state and export ------------------------------------------------------------------
    def set_live_state(self, states: dict[str, NodeState] | None,
                       flows: dict[tuple[str, str], float] | None) -> None:
        self.canvas_scene.set_live_state(states, flows)

    def render_to_image(self, scale: float = 2.0, transparent: bool = False) -> QImage:
        return export.render_to_image(self.canvas_scene, scale, transparent)

    def render_to_svg(self, path: str | Path) -> None:
        title = self.controller.document.meta.get("title") or "ScaleLab topology"
        export.render_to_svg(self.canvas_scene, path, title)

    # ----- mouse -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self._close_editors()
        if self._interaction is not None:
            return
        self._interaction = interaction_for(self, event)
        if self._interaction is not None:
            self._interaction.start(event)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if self._interaction is not None:
            self._interaction.move(event)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        interaction, self._interaction = self._interaction, None
        if interaction is not None:
            interaction.finish(event)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        pos = self.mapToScene(event.position().toPoint())
        top = self.canvas_scene.top_item(pos)
        if isinstance(top, TextNoteItem) and event.button() == Qt.MouseButton.LeftButton:
            self.edit_text(self.canvas_scene.annotations.index(top))
            return
        node = self.canvas_scene.node_at(pos)
        if node is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if node.label_contains(node.mapFromScene(pos)):
            self.edit_label(node.node_id)
        else:
            self.propertiesRequested.emit(node.node_id)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt)
        if event.key() == Qt.Key.Key_Escape and self._interaction is not None:
            interaction, self._interaction = self._interaction, None
            interaction.cancel()
            return
        if event.key() == Qt.Key.Key_Escape and self.arrow_tool:
            self.set_arrow_tool(False)
            return
        notes = self.selected_annotations()
        if event.key() == Qt.Key.Key_F2 and not self.selected_ids() and len(notes) == 1:
            self.edit_text(notes[0])
            return
        if event.key() == Qt.Key.Key_F2 and len(self.selected_ids()) == 1:
            self.edit_label(self.selected_ids()[0])
            return
        super().keyPressEvent(event)

    def cancel_gestures(self) -> None:
        """End any drag or label edit without changing the document (the document is replaced)."""
        interaction, self._interaction = self._interaction, None
        if interaction is not None:
            interaction.cancel()
        if self._editor is not None:
            self._editor.close(None)
        if self._note_editor is not None:
            self._note_editor.close(None)
        self.set_arrow_tool(False)

    def _node_removed(self, node_id: str) -> None:
        # A gesture about a node that is gone (undo, a run's edit) cannot finish.
        if self._editor is not None and self._editor.node.node_id == node_id:
            self._editor.close(None)
        if self._interaction is not None and self._interaction.involves(node_id):
            interaction, self._interaction = self._interaction, None
            interaction.cancel()

    def edit_label(self, node_id: str) -> LabelEditor | None:
        """Open the in-place label editor; the new label is one undo step."""
        node = self.canvas_scene.nodes.get(node_id)
        if node is None:
            return None

        def done(text: str | None) -> None:
            self._editor = None
            if text is not None and node_id in self.controller.document:
                try:
                    self.controller.set_label(node_id, text)
                except FormatError as err:
                    self.controller.editRefused.emit(f"Label not changed: {err.message}")

        self._editor = LabelEditor(node, done)
        self.canvas_scene.addItem(self._editor)
        self._editor.begin()
        return self._editor

    def viewportEvent(self, event) -> bool:  # noqa: N802 (Qt)
        if isinstance(event, QHelpEvent) and self._interaction is None:
            node = self.canvas_scene.node_at(self.mapToScene(event.pos()))
            if node is not None:
                QToolTip.showText(event.globalPos(), self.canvas_scene.tooltip_text(node.node_id), self)
                return True
        return super().viewportEvent(event)

    # ----- dropping kinds from the palette ---------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt)
        if event.mimeData().hasFormat(KIND_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt)
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt)
        if not event.mimeData().hasFormat(KIND_MIME):
            event.ignore()
            return
        kind = bytes(event.mimeData().data(KIND_MIME).data()).decode("utf-8", "replace")
        if kind not in KINDS:
            event.ignore()
            return
        pos = self.mapToScene(event.position().toPoint())
        node_id = self.controller.add_node(kind, look.snap(pos.x()), look.snap(pos.y()))
        self.select_ids([node_id])
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        event.acceptProposedAction()

    # ----- feedback ----------------------------------------------------------------------------------
    def show_refusal(self, reason: str, at: QPoint | None = None) -> None:
        """Say why a connection was refused: a red note on the canvas, a tooltip and a signal."""
        text = reason[:1].upper() + reason[1:]
        self._refusal.setText(f"✕ {text}")
        self._refusal.adjustSize()
        at = at if at is not None else self.viewport().rect().center()
        # A banner at the top of the canvas: never under the cursor's tooltip, always in view.
        self._refusal.move(max(4, (self.viewport().width() - self._refusal.width()) // 2), 8)
        self._refusal.show()
        self._refusal.raise_()
        self._refusal_timer.start()
        self.setStatusTip(text)
        QToolTip.showText(self.viewport().mapToGlobal(at), text, self)
        self.connectionRefused.emit(reason)

    def clear_refusal(self) -> None:
        """Something succeeded since: no banner, no status tip about the refused connection."""
        self._refusal.hide()
        self.setStatusTip("")

    def refusal_text(self) -> str:
        return self._refusal.text() if self._refusal.isVisible() else ""

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 (Qt)
        draw_grid(painter, rect, self.transform().m11())
