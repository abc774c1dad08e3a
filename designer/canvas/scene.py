"""The canvas scene: a projection of the document.

Items are created and removed only in response to the controller's signals; the scene
maps node ids to :class:`NodeItem` and (source, target) pairs to :class:`EdgeItem`.
Single points of failure are recomputed (deferred, once per burst of changes) whenever
the topology changes.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from simulation.kinds import KINDS
from simulation.state import NodeState

from . import look
from .annotation_items import ANNOTATION_ITEMS, ArrowItem, TextNoteItem, make_annotation_item
from .edge_item import MAX_DOT_EDGES, EdgeItem, EdgeLayer
from .node_item import NodeItem

if TYPE_CHECKING:
    from designer.controller import DocumentController

try:  # written in parallel by the simulation side; the canvas works without it
    from simulation.analysis import Spof, structural_spof
except ImportError:  # pragma: no cover
    structural_spof = None  # type: ignore[assignment]

DOTS_STALE_S = 0.6   # no live update for this long (paused): the dots stand still

KEY_PARAMS = {
    "client": ("rate_rps", "users"),
    "server": ("capacity_rps", "workers", "replicas", "sessions"),
    "load_balancer": ("algorithm", "affinity"),
    "database": ("read_capacity_rps", "write_capacity_rps"),
    "cache": ("capacity_items", "ttl_s", "invalidation"),
}


class CanvasScene(QGraphicsScene):
    def __init__(self, controller: "DocumentController", parent=None):
        super().__init__(parent)
        self.controller = controller
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[tuple[str, str], EdgeItem] = {}
        self._edges_of: dict[str, set[tuple[str, str]]] = {}
        self.annotations: list[TextNoteItem | ArrowItem] = []   # in document order
        self.spof: dict[str, "Spof"] = {}   # full and partial single points of failure
        self.live_states: dict[str, NodeState] | None = None
        self.live_flows: dict[tuple[str, str], float] | None = None
        self._spof_timer = QTimer(self)
        self._spof_timer.setSingleShot(True)
        self._spof_timer.setInterval(0)
        self._spof_timer.timeout.connect(self.refresh_spof)
        self._dots_timer = QTimer(self)
        self._dots_timer.setInterval(40)
        self._dots_timer.timeout.connect(self._advance_dots)
        self._last_live = 0.0
        c = controller
        c.nodeAdded.connect(self._on_node_added)
        c.nodeRemoved.connect(self._on_node_removed)
        c.nodeChanged.connect(self._on_node_changed)
        c.edgeAdded.connect(self._on_edge_added)
        c.edgeRemoved.connect(self._on_edge_removed)
        c.documentReplaced.connect(self.rebuild)
        c.annotationAdded.connect(self._on_annotation_added)
        c.annotationRemoved.connect(self._on_annotation_removed)
        c.annotationChanged.connect(self._on_annotation_changed)
        self.rebuild()

    @property
    def document(self):
        return self.controller.document

    # ----- following the document ------------------------------------------------------------
    def rebuild(self) -> None:
        """Drop every item and project the (new) document again."""
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        self._edges_of.clear()
        self.annotations.clear()
        self.edge_layer = EdgeLayer(self.edges)
        self.addItem(self.edge_layer)
        self.live_states = self.live_flows = None
        self._dots_timer.stop()
        for node_id in self.document.node_ids():
            self._on_node_added(node_id)
        for s, t in self.document.edges():
            self._on_edge_added(s, t)
        for index in range(len(self.document.annotations)):
            self._on_annotation_added(index)
        self.refresh_spof()

    def _on_node_added(self, node_id: str) -> None:
        data = self.document.node(node_id)
        item = NodeItem(node_id, data.kind)
        item.set_display(label=data.label, replicas=shown_replicas(self.document, node_id),
                         primaries=int(data.params.get("primaries", 1)),
                         shards=int(self.document.params(node_id).get("shards", 1)))
        item.setPos(data.x, data.y)
        self.nodes[node_id] = item
        self._edges_of[node_id] = set()
        self.addItem(item)
        self._spof_timer.start()

    def _on_node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        self._edges_of.pop(node_id, None)
        if item is not None:
            self.removeItem(item)
        self._spof_timer.start()

    def _on_node_changed(self, node_id: str, what: str) -> None:
        item = self.nodes.get(node_id)
        if item is None:
            return
        data = self.document.node(node_id)
        if what == "position":
            item.setPos(data.x, data.y)
        elif what == "label":
            item.set_display(label=data.label)
            self._spof_timer.start()  # the reasons name nodes
        elif what == "params":
            item.set_display(replicas=shown_replicas(self.document, node_id),
                             primaries=int(self.document.params(node_id).get("primaries", 1)),
                             shards=int(self.document.params(node_id).get("shards", 1)))
            self._spof_timer.start()  # replicas count as redundancy

    def _on_edge_added(self, source: str, target: str) -> None:
        edge = EdgeItem(source, target)
        self.edges[(source, target)] = edge
        self._edges_of[source].add(edge.key)
        self._edges_of[target].add(edge.key)
        self.addItem(edge)
        self._place_edge(edge)
        self._spof_timer.start()

    def _on_edge_removed(self, source: str, target: str) -> None:
        edge = self.edges.pop((source, target), None)
        for end in (source, target):
            self._edges_of.get(end, set()).discard((source, target))
        if edge is not None:
            self.removeItem(edge)
        self.edge_layer.invalidate()
        self._spof_timer.start()

    def _on_annotation_added(self, index: int) -> None:
        item = make_annotation_item(self.document.annotations[index])
        self.annotations.insert(index, item)
        self.addItem(item)

    def _on_annotation_removed(self, index: int) -> None:
        self.removeItem(self.annotations.pop(index))

    def _on_annotation_changed(self, index: int) -> None:
        item, new = self.annotations[index], self.document.annotations[index]
        if isinstance(item, TextNoteItem) == (new.type == "text"):
            item.set_annotation(new)
        else:   # not done by the designer, but a replace may change the type
            selected = item.isSelected()
            self._on_annotation_removed(index)
            self._on_annotation_added(index)
            self.annotations[index].setSelected(selected)

    def node_item_moved(self, node_id: str) -> None:
        """A node item moved (by the document or during a drag): its edges follow."""
        for key in self._edges_of.get(node_id, ()):
            self._place_edge(self.edges[key])

    def _place_edge(self, edge: EdgeItem) -> None:
        edge.set_ends(self.nodes[edge.source].pos(), self.nodes[edge.target].pos())

    # ----- analysis and live state -------------------------------------------------------------
    def refresh_spof(self) -> None:
        """Recompute the single points of failure now and outline them."""
        self._spof_timer.stop()
        spof = structural_spof(self.document) if structural_spof is not None else {}
        for node_id, item in self.nodes.items():
            s = spof.get(node_id)
            reason, kind = (s.reason, s.kind) if s is not None else ("", "")
            if (reason, kind) != (item.spof_reason, item.spof_kind):
                item.set_display(spof_reason=reason, spof_kind=kind)
        self.spof = spof

    def set_live_state(self, states: dict[str, NodeState] | None,
                       flows: dict[tuple[str, str], float] | None) -> None:
        """Show a run's live numbers; ``None`` returns to the idle look."""
        self.live_states, self.live_flows = states, flows
        for node_id, item in self.nodes.items():
            item.set_display(live=states.get(node_id) if states else None)
        max_flow = max(flows.values(), default=0.0) if flows else 0.0
        for key, edge in self.edges.items():
            flow = float(flows.get(key, 0.0)) if flows else 0.0
            edge.set_flow(flow, look.flow_width(flow, max_flow))
        flowing = sum(1 for f in flows.values() if f > 0) if flows else 0
        if 0 < flowing <= MAX_DOT_EDGES:   # beyond that, thickness alone shows the flow
            self._last_live = time.monotonic()
            if self.edge_layer.dot_phase is None:
                self.edge_layer.dot_phase = 0.0
            if not self._dots_timer.isActive():
                self._dots_timer.start()
        else:
            self._dots_timer.stop()
            self.edge_layer.dot_phase = None
        self.edge_layer.update()

    def _advance_dots(self) -> None:
        """Move the flow dots; they stop when live updates stop (a paused run)."""
        if time.monotonic() - self._last_live > DOTS_STALE_S or self.edge_layer.dot_phase is None:
            self._dots_timer.stop()
            return
        self.edge_layer.dot_phase += self._dots_timer.interval() / 1000.0
        self.edge_layer.update()

    def flow_dots_running(self) -> bool:
        return self._dots_timer.isActive()

    def set_exporting(self, on: bool) -> None:
        """Hide selection and handles while rendering an image."""
        mode = QGraphicsItem.CacheMode.NoCache if on else QGraphicsItem.CacheMode.DeviceCoordinateCache
        for item in self.nodes.values():
            item.exporting = on
            item.setCacheMode(mode)   # paint for real: no cached bitmaps in images and SVGs
            item.update()
        self.edge_layer.setCacheMode(mode)
        for note in self.annotations:
            note.exporting = on
            note.update()

    # ----- lookups ---------------------------------------------------------------------------
    def node_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def edge_at(self, pos: QPointF) -> EdgeItem | None:
        for item in self.items(pos):
            if isinstance(item, EdgeItem):
                return item
        return None

    def selected_node_ids(self) -> list[str]:
        chosen = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [n for n in self.document.node_ids() if n in chosen]

    def selected_annotations(self) -> list[int]:
        """Indices (in the document's list) of the selected text boxes and arrows."""
        return [i for i, item in enumerate(self.annotations) if item.isSelected()]

    def top_item(self, pos: QPointF) -> QGraphicsItem | None:
        """The topmost node, annotation or edge at ``pos`` (arrows lie over nodes, text boxes under them)."""
        for item in self.items(pos):
            if isinstance(item, (NodeItem, EdgeItem) + ANNOTATION_ITEMS):
                return item
        return None

    def annotation_handle_at(self, pos: QPointF) -> tuple[TextNoteItem | ArrowItem, int] | None:
        """A selected annotation's handle at ``pos``: (item, 1 or 2 for an arrow's end, 0 for a text box's grip)."""
        for item in self.annotations:
            if not item.isSelected():
                continue
            local = item.mapFromScene(pos)
            if isinstance(item, ArrowItem) and item.end_at(local):
                return item, item.end_at(local)
            if isinstance(item, TextNoteItem) and item.grip_contains(local):
                return item, 0
        return None

    def selected_edges(self) -> list[tuple[str, str]]:
        return [i.key for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def nodes_rect(self):
        """The rectangle around everything drawn (what Fit and export show)."""
        return self.itemsBoundingRect()

    def tooltip_text(self, node_id: str) -> str:
        """Rich text for a node's hover tooltip: kind, label, key params, SPOF, live numbers."""
        doc = self.document
        if node_id not in doc:
            return ""
        kind = KINDS[doc.kind(node_id)]
        params = doc.params(node_id)
        rows = [f"<b>{_esc(doc.node(node_id).label or node_id)}</b> — {kind.label} <i>({_esc(node_id)})</i>"]
        for name in KEY_PARAMS.get(kind.name, ()):
            p = kind.param(name)
            # units like req/s or s read well after a number; counted nouns ("1 copies") do not
            unit = f" {p.unit}" if p.unit and ("/" in p.unit or p.unit in ("s", "ms", "×")) else ""
            value = params[name]
            value = f"{value:g}" if isinstance(value, float) else value
            rows.append(f"{_esc(p.title)}: {_esc(str(value))}{_esc(unit)}")
        state = self.live_states.get(node_id) if self.live_states else None
        if state is not None:
            rows.append("<hr>")
            if state.failed:
                rows.append("<b style='color:#e03131'>✕ Failed</b>")
            rows.append(f"Utilization: {state.utilization:.0%}")
            if state.replicas > 1 and state.utilization_max > state.utilization + 0.005:
                rows.append(f"Busiest replica: {state.utilization_max:.0%}")
            rows.append(f"Throughput: {state.throughput_rps:.1f} req/s")
            rows.append(f"Queue: {state.queue:.0f} waiting, {state.in_system:.0f} in system")
            if state.replicas > 1 or state.replicas_up != state.replicas:
                rows.append(f"Replicas up: {state.replicas_up} of {state.replicas}")
        spof = self.spof.get(node_id)
        if spof is not None and spof.full:
            rows.append(f"<hr><b style='color:{look.SPOF.name()}'>Single point of failure</b><br>{_esc(spof.reason)}")
        elif spof is not None:
            rows.append(f"<hr><b style='color:{look.SPOF_PARTIAL.name()}'>Partial single point of failure</b>"
                        f"<br>{_esc(spof.reason)}")
        return "<br>".join(rows).replace("<br><hr><br>", "<hr>").replace("<br><hr>", "<hr>")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shown_replicas(doc, node_id: str) -> int:
    """Replicas drawn when not running: an autoscaled server shows its starting count."""
    params = doc.params(node_id)
    if params.get("autoscale"):
        return min(max(int(params["replicas"]), int(params["min_replicas"])), int(params["max_replicas"]))
    return doc.replicas(node_id)
