"""Mouse tools as objects with start / move / finish / cancel (no mode switch in the view).

The view picks one interaction when a button goes down (:func:`interaction_for`) and
forwards the mouse to it until the button is released or Escape cancels it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QApplication, QGraphicsLineItem, QGraphicsRectItem

from simulation.annotations import MIN_WIDTH, MAX_WIDTH, Arrow

from . import look
from .annotation_items import ANNOTATION_ITEMS, ArrowItem, TextNoteItem
from .edge_item import EdgeItem
from .node_item import NodeItem

if TYPE_CHECKING:
    from .view import CanvasView


class Interaction:
    """One gesture on the canvas."""

    def __init__(self, view: "CanvasView"):
        self.view = view
        self.scene = view.canvas_scene
        self.controller = view.controller

    def start(self, event: QMouseEvent) -> None:
        pass

    def move(self, event: QMouseEvent) -> None:
        pass

    def finish(self, event: QMouseEvent) -> None:
        pass

    def cancel(self) -> None:
        pass

    def involves(self, node_id: str) -> bool:
        """Whether this gesture is about ``node_id`` (it must end if that node goes away)."""
        return False

    def involves_annotations(self) -> bool:
        """Whether this gesture holds annotation indices (it must end if annotations come or go)."""
        return False

    def scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.view.mapToScene(event.position().toPoint())


class MoveNodesInteraction(Interaction):
    """Drag the selected nodes and annotations; the items move live, the document once on release."""

    def __init__(self, view: "CanvasView", press_pos: QPointF):
        super().__init__(view)
        self.press = press_pos
        self.started = False
        doc = self.controller.document
        self.origin = {i: (doc.node(i).x, doc.node(i).y) for i in self.scene.selected_node_ids()}
        self.notes = {i: doc.annotations[i] for i in self.scene.selected_annotations()}

    def _delta(self, pos: QPointF) -> tuple[float, float]:
        """How far the annotations move: whole grid steps, so they keep their place beside the nodes."""
        d = pos - self.press
        return look.snap(d.x()), look.snap(d.y())

    def _show_notes(self, dx: float, dy: float) -> None:
        for index, note in self.notes.items():
            item = self.scene.annotations[index]
            if isinstance(item, TextNoteItem):
                item.setPos(note.x + dx, note.y + dy)
            else:
                item.setPos(dx, dy)

    def involves_annotations(self) -> bool:
        return bool(self.notes)

    def _targets(self, pos: QPointF) -> dict[str, tuple[float, float]]:
        d = pos - self.press
        return {i: (look.snap(x + d.x()), look.snap(y + d.y())) for i, (x, y) in self.origin.items()}

    def move(self, event: QMouseEvent) -> None:
        pos = self.scene_pos(event)
        if not self.started:
            dist = (self.view.mapFromScene(pos) - self.view.mapFromScene(self.press)).manhattanLength()
            if dist < QApplication.startDragDistance():
                return
            self.started = True
        for node_id, (x, y) in self._targets(pos).items():
            self.scene.nodes[node_id].setPos(x, y)
        self._show_notes(*self._delta(pos))

    def finish(self, event: QMouseEvent) -> None:
        if not self.started:
            return
        pos = self.scene_pos(event)
        targets = self._targets(pos)
        dx, dy = self._delta(pos)
        self.controller.move_items({i: (self.origin[i], targets[i]) for i in self.origin},
                                   {i: note.moved(dx, dy) for i, note in self.notes.items()})

    def involves(self, node_id: str) -> bool:
        return node_id in self.origin

    def cancel(self) -> None:
        for node_id, (x, y) in self.origin.items():
            if node_id in self.scene.nodes:
                self.scene.nodes[node_id].setPos(x, y)
        if self.notes and len(self.scene.annotations) == len(self.controller.document.annotations):
            self._show_notes(0.0, 0.0)


class AnnotationHandleInteraction(Interaction):
    """Drag an arrow's end (``end`` 1 or 2) or a text box's width grip (``end`` 0); one edit on release."""

    def __init__(self, view: "CanvasView", item: TextNoteItem | ArrowItem, end: int):
        super().__init__(view)
        self.item, self.end = item, end
        self.index = self.scene.annotations.index(item)
        self.original = self.controller.document.annotations[self.index]

    def _changed(self, pos: QPointF):
        a = self.original
        if isinstance(a, Arrow):
            x, y = look.snap(pos.x(), look.GRID / 2), look.snap(pos.y(), look.GRID / 2)
            fixed = (a.x1, a.y1) if self.end == 2 else (a.x2, a.y2)
            if (x, y) == fixed:
                return a
            return replace(a, x2=x, y2=y) if self.end == 2 else replace(a, x1=x, y1=y)
        width = min(MAX_WIDTH, max(MIN_WIDTH, round(pos.x() - a.x)))
        return replace(a, width=float(width))

    def move(self, event: QMouseEvent) -> None:
        new = self._changed(self.scene_pos(event))
        if isinstance(self.item, ArrowItem):
            self.item.set_line(QLineF(new.x1, new.y1, new.x2, new.y2))
        else:
            self.item.preview_width(new.box_width)

    def finish(self, event: QMouseEvent) -> None:
        new = self._changed(self.scene_pos(event))
        self.cancel()
        text = "Resize text" if self.end == 0 else "Move arrow end"
        self.controller.change_annotations({self.index: new}, text)

    def cancel(self) -> None:
        if self.index < len(self.scene.annotations) and self.scene.annotations[self.index] is self.item:
            self.item.set_annotation(self.item.arrow if isinstance(self.item, ArrowItem) else self.item.note)

    def involves_annotations(self) -> bool:
        return True


class DrawArrowInteraction(Interaction):
    """Add arrow: press where it starts, drag, release where its head points."""

    def __init__(self, view: "CanvasView", press_pos: QPointF):
        super().__init__(view)
        self.start_pos = QPointF(look.snap(press_pos.x(), look.GRID / 2), look.snap(press_pos.y(), look.GRID / 2))
        self.preview = ArrowItem(Arrow(self.start_pos.x(), self.start_pos.y(), self.start_pos.x() + 1,
                                       self.start_pos.y()))

    def _end(self, event: QMouseEvent) -> QPointF:
        p = self.scene_pos(event)
        return QPointF(look.snap(p.x(), look.GRID / 2), look.snap(p.y(), look.GRID / 2))

    def start(self, event: QMouseEvent) -> None:
        self.preview.setOpacity(0.6)
        self.scene.addItem(self.preview)

    def move(self, event: QMouseEvent) -> None:
        end = self._end(event)
        if end != self.start_pos:
            self.preview.set_line(QLineF(self.start_pos, end))

    def finish(self, event: QMouseEvent) -> None:
        self.cancel()
        end = self._end(event)
        if QLineF(self.start_pos, end).length() < look.GRID:
            self.view.status(f"Drag from where the arrow starts to where it points (at least {look.GRID:g} long)")
            return
        self.view.added_annotation(self.controller.add_annotation(
            Arrow(self.start_pos.x(), self.start_pos.y(), end.x(), end.y())))

    def cancel(self) -> None:
        if self.preview.scene() is not None:
            self.scene.removeItem(self.preview)


class ConnectInteraction(Interaction):
    """Drag from a node's handle to another node to connect them."""

    OK = QColor("#2f9e44")

    def __init__(self, view: "CanvasView", source: NodeItem):
        super().__init__(view)
        self.source = source
        self.line = QGraphicsLineItem()
        pen = QPen(look.SELECTED, 2, Qt.PenStyle.DashLine)
        self.line.setPen(pen)
        self.line.setZValue(10)
        self.hover: NodeItem | None = None

    def start(self, event: QMouseEvent) -> None:
        p = self.source.handle_scene_pos()
        self.line.setLine(QLineF(p, p))
        self.scene.addItem(self.line)

    def _target(self, pos: QPointF) -> NodeItem | None:
        item = self.scene.node_at(pos)
        return item if item is not None and item is not self.source else None

    def move(self, event: QMouseEvent) -> None:
        pos = self.scene_pos(event)
        self.line.setLine(QLineF(self.source.handle_scene_pos(), pos))
        target = self._target(pos)
        if target is self.hover:
            return
        self.hover = target
        if target is None:
            color, tip = look.SELECTED, ""
        else:
            tip = self.controller.document.connect_problem(self.source.node_id, target.node_id)
            color = look.REFUSED if tip else self.OK
        self.line.setPen(QPen(color, 2, Qt.PenStyle.DashLine))
        self.view.setToolTip(tip)

    def finish(self, event: QMouseEvent) -> None:
        self._remove_line()
        target = self._target(self.scene_pos(event))
        if target is None:
            return
        problem = self.controller.connect(self.source.node_id, target.node_id)
        if problem:
            self.view.show_refusal(problem, event.position().toPoint())

    def cancel(self) -> None:
        self._remove_line()

    def involves(self, node_id: str) -> bool:
        return node_id == self.source.node_id

    def _remove_line(self) -> None:
        self.view.setToolTip("")
        if self.line.scene() is not None:
            self.scene.removeItem(self.line)


class RubberBandInteraction(Interaction):
    """Drag on empty canvas to select what the rectangle touches (Ctrl/Shift adds)."""

    def __init__(self, view: "CanvasView", press_pos: QPointF, additive: bool):
        super().__init__(view)
        self.press = press_pos
        self.additive = additive
        self.before = set(self.scene.selectedItems()) if additive else set()
        self.rect = QGraphicsRectItem()
        self.rect.setPen(QPen(look.SELECTED, 1, Qt.PenStyle.DashLine))
        self.rect.setBrush(QColor(28, 126, 214, 30))
        self.rect.setZValue(10)

    def start(self, event: QMouseEvent) -> None:
        if not self.additive:
            self.scene.clearSelection()
        self.rect.setRect(QRectF(self.press, self.press))
        self.scene.addItem(self.rect)

    def move(self, event: QMouseEvent) -> None:
        area = QRectF(self.press, self.scene_pos(event)).normalized()
        self.rect.setRect(area)
        inside = {i for i in self.scene.items(area) if isinstance(i, (NodeItem, EdgeItem) + ANNOTATION_ITEMS)
                  and i.isVisible() and i.flags() & i.GraphicsItemFlag.ItemIsSelectable}
        self.view.set_selection(inside | self.before)

    def finish(self, event: QMouseEvent) -> None:
        self.move(event)
        self._remove()

    def cancel(self) -> None:
        self._remove()
        self.view.set_selection(self.before)

    def _remove(self) -> None:
        if self.rect.scene() is not None:
            self.scene.removeItem(self.rect)


class PanInteraction(Interaction):
    """Middle-button (or Alt+left) drag moves the view."""

    def start(self, event: QMouseEvent) -> None:
        self.last = event.position()
        self.view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, event: QMouseEvent) -> None:
        d = event.position() - self.last
        self.last = event.position()
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - int(d.x()))
        v.setValue(v.value() - int(d.y()))

    def finish(self, event: QMouseEvent) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.view.viewport().unsetCursor()


def interaction_for(view: "CanvasView", event: QMouseEvent) -> Interaction | None:
    """The gesture a button press starts, given what is under the mouse."""
    scene = view.canvas_scene
    pos = view.mapToScene(event.position().toPoint())
    mods = event.modifiers()
    additive = bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))
    if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and mods & Qt.KeyboardModifier.AltModifier):
        return PanInteraction(view)
    if event.button() != Qt.MouseButton.LeftButton:
        return None
    if view.arrow_tool:                     # Add arrow: this drag draws it
        view.set_arrow_tool(False)
        return DrawArrowInteraction(view, pos)
    handle = scene.annotation_handle_at(pos)
    if handle is not None and not additive:
        return AnnotationHandleInteraction(view, *handle)
    top = scene.top_item(pos)
    if isinstance(top, ANNOTATION_ITEMS):   # an arrow over a node, a text box over an edge
        if additive:
            top.setSelected(not top.isSelected())
            return None
        if not top.isSelected():
            view.set_selection({top})
        return MoveNodesInteraction(view, pos)
    node = scene.node_at(pos)
    if node is not None and node.handle_contains(node.mapFromScene(pos)):
        return ConnectInteraction(view, node)
    if node is not None:
        if additive:
            node.setSelected(not node.isSelected())
            return None
        if not node.isSelected():
            view.set_selection({node})
        return MoveNodesInteraction(view, pos)
    edge = scene.edge_at(pos)
    if edge is not None:
        if additive:
            edge.setSelected(not edge.isSelected())
        else:
            view.set_selection({edge})
        return None
    return RubberBandInteraction(view, pos, additive)
