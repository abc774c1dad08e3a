"""Mouse tools as objects with start / move / finish / cancel (no mode switch in the view).

The view picks one interaction when a button goes down (:func:`interaction_for`) and
forwards the mouse to it until the button is released or Escape cancels it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QApplication, QGraphicsLineItem, QGraphicsRectItem

from . import look
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

    def scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.view.mapToScene(event.position().toPoint())


class MoveNodesInteraction(Interaction):
    """Drag the selected nodes; the items move live, the document once on release."""

    def __init__(self, view: "CanvasView", press_pos: QPointF):
        super().__init__(view)
        self.press = press_pos
        self.started = False
        doc = self.controller.document
        self.origin = {i: (doc.node(i).x, doc.node(i).y) for i in self.scene.selected_node_ids()}

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

    def finish(self, event: QMouseEvent) -> None:
        if not self.started:
            return
        targets = self._targets(self.scene_pos(event))
        self.controller.move_nodes({i: (self.origin[i], targets[i]) for i in self.origin})

    def involves(self, node_id: str) -> bool:
        return node_id in self.origin

    def cancel(self) -> None:
        for node_id, (x, y) in self.origin.items():
            if node_id in self.scene.nodes:
                self.scene.nodes[node_id].setPos(x, y)


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
        inside = {i for i in self.scene.items(area) if isinstance(i, (NodeItem, EdgeItem))}
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
