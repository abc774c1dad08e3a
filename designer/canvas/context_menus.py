"""The right-click menus of nodes (Fail, Recover, one primary or shard, Properties,
Rename, Delete); the empty canvas's and the annotations' are in :mod:`annotation_view`.
A mixin of :class:`~designer.canvas.view.CanvasView`."""
from __future__ import annotations

from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QMenu

from .annotation_items import ArrowItem, TextNoteItem
from .icons import icon


class ContextMenus:
    """Which menu a right click opens, and the node menu itself."""

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 (Qt)
        pos = self.mapToScene(event.pos())
        top = self.canvas_scene.top_item(pos)
        if isinstance(top, (TextNoteItem, ArrowItem)):
            if not top.isSelected():
                self.set_selection({top})
            self.annotation_menu(self.selected_annotations()).exec(event.globalPos())
            return
        node = self.canvas_scene.node_at(pos)
        if node is None:
            if top is None:
                self.canvas_menu(pos.x(), pos.y()).exec(event.globalPos())
            return
        if not node.isSelected():
            self.set_selection({node})
        self.node_menu(node.node_id).exec(event.globalPos())

    def node_menu(self, node_id: str) -> QMenu:
        """The right-click menu of a node (also used by tests)."""
        menu = QMenu(self)
        label = self.controller.document.node(node_id).label or node_id
        live = self.canvas_scene.nodes[node_id].live if node_id in self.canvas_scene.nodes else None
        if live is None or not live.failed:      # only what can be done to the node as it is now
            menu.addAction(icon("fail"), f"Fail {label}", lambda: self.failRequested.emit(node_id))
        if live is None or live.failed:          # (before a run, either: the run starts failed)
            menu.addAction(icon("recover"), f"Recover {label}", lambda: self.recoverRequested.emit(node_id))
        primaries = int(self.controller.document.params(node_id).get("primaries", 1))
        if primaries > 1:   # a multi-primary database: one primary at a time (replica k is primary k + 1)
            for k in range(primaries):
                menu.addAction(icon("fail"), f"Fail primary {k + 1} of {label}",
                               lambda k=k: self.failReplicaRequested.emit(node_id, k))
            for k in range(primaries):
                menu.addAction(icon("recover"), f"Recover primary {k + 1} of {label}",
                               lambda k=k: self.recoverReplicaRequested.emit(node_id, k))
        params = self.controller.document.params(node_id)
        if int(params.get("shards", 1)) > 1:   # one shard: replica shard × (1 + read_replicas)
            per = 1 + int(params["read_replicas"])
            fail, recover = menu.addMenu("Fail one shard"), menu.addMenu("Recover one shard")
            for s in range(int(params["shards"])):
                fail.addAction(f"Shard {s}", lambda s=s: self.shardFailRequested.emit(node_id, s * per))
                recover.addAction(f"Shard {s}", lambda s=s: self.shardRecoverRequested.emit(node_id, s * per))
        menu.addSeparator()
        menu.addAction("Properties…", lambda: self.propertiesRequested.emit(node_id))
        menu.addAction("Rename", lambda: self.edit_label(node_id))
        menu.addSeparator()
        menu.addAction(self.delete_action)
        return menu
