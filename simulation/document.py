"""The topology document: a networkx graph of typed nodes, plus lesson text,
simulation settings and scheduled events.

The document speaks plain Python: every change goes through a small, invertible
method and is announced by a plain :class:`Event` (the designer re-emits these as
Qt signals). Nothing here knows about Qt.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import networkx as nx

from .annotations import Annotation
from .goals import Goal
from .kinds import KINDS, SIMULATION_PARAMS, can_connect
from .machines import changes_for as machine_changes, explicit_problem as machine_problem, resolve as resolve_machine
from .params import FormatError, check_value, object_with_defaults


class Event:
    """A minimal observer list: ``ev.connect(fn)``, ``ev.emit(*args)``."""

    def __init__(self) -> None:
        self._handlers: list[Callable[..., Any]] = []

    def connect(self, handler: Callable[..., Any]) -> None:
        self._handlers.append(handler)

    def disconnect(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    def emit(self, *args: Any) -> None:
        for handler in list(self._handlers):
            handler(*args)


@dataclass
class NodeData:
    """Everything the file says about one node. ``params`` holds only the
    parameters that were set; :meth:`Document.params` fills in the defaults."""

    id: str
    kind: str
    label: str = ""
    x: float = 0.0
    y: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> "NodeData":
        return NodeData(self.id, self.kind, self.label, self.x, self.y, copy.deepcopy(self.params))


@dataclass
class ScheduledEvent:
    at_s: float
    action: str
    node: str
    replica: int | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"at_s": self.at_s, "action": self.action, "node": self.node}
        if self.replica is not None:
            d["replica"] = self.replica
        return d


def default_settings() -> dict[str, Any]:
    return {p.name: p.default for p in SIMULATION_PARAMS}


class Document:
    """A topology. Nodes and edges keep their order (the file's order)."""

    def __init__(self) -> None:
        self.graph = nx.DiGraph()
        self.meta: dict[str, Any] = {"title": "", "notes": ""}
        self.settings: dict[str, Any] = default_settings()
        self.events: list[ScheduledEvent] = []
        self.goals: list[Goal] = []    # what a graded challenge asks of a run (goals.py)
        self.annotations: list[Annotation] = []   # text boxes and arrows for slides (annotations.py)
        self._seq = 0
        # Plain events announcing every change.
        self.node_added = Event()      # (node_id)
        self.node_removed = Event()    # (node_id)
        self.node_changed = Event()    # (node_id, what) what in {"params", "label", "position"}
        self.edge_added = Event()      # (source, target)
        self.edge_removed = Event()    # (source, target)
        self.meta_changed = Event()    # ()
        self.settings_changed = Event()  # ()
        self.events_changed = Event()  # ()
        self.annotation_added = Event()    # (index)
        self.annotation_removed = Event()  # (index)
        self.annotation_changed = Event()  # (index)

    # ----- reading -----------------------------------------------------------------
    def __contains__(self, node_id: str) -> bool:
        return node_id in self.graph

    def node_ids(self) -> list[str]:
        return sorted(self.graph.nodes, key=lambda n: self.graph.nodes[n]["seq"])

    def node(self, node_id: str) -> NodeData:
        return self.graph.nodes[node_id]["data"]

    def nodes(self) -> list[NodeData]:
        return [self.node(n) for n in self.node_ids()]

    def kind(self, node_id: str) -> str:
        return self.node(node_id).kind

    def edges(self) -> list[tuple[str, str]]:
        return sorted(self.graph.edges, key=lambda e: self.graph.edges[e]["seq"])

    def has_edge(self, source: str, target: str) -> bool:
        return self.graph.has_edge(source, target)

    def successors(self, node_id: str) -> list[str]:
        """Downstream nodes in edge order (O(degree · log degree), not a scan of all edges)."""
        if node_id not in self.graph:
            return []
        out = self.graph.adj[node_id]
        return sorted(out, key=lambda t: out[t]["seq"])

    def predecessors(self, node_id: str) -> list[str]:
        if node_id not in self.graph:
            return []
        into = self.graph.pred[node_id]
        return sorted(into, key=lambda s: into[s]["seq"])

    def params(self, node_id: str) -> dict[str, Any]:
        """All parameters of a node, defaults filled in."""
        data = self.node(node_id)
        kind = KINDS[data.kind]
        out = kind.defaults()
        out.update(copy.deepcopy(data.params))
        for p in kind.params:
            if p.type == "object":
                out[p.name] = object_with_defaults(p, out[p.name])
        return resolve_machine(out) if data.kind == "server" else out

    def param(self, node_id: str, name: str) -> Any:
        return self.params(node_id)[name]

    def new_id(self, kind: str) -> str:
        """A fresh id like ``server3``."""
        base = {"load_balancer": "lb"}.get(kind, kind)
        i = 1
        while f"{base}{i}" in self.graph:
            i += 1
        return f"{base}{i}"

    def copy(self) -> "Document":
        from .fileformat import document_from_dict, document_to_dict
        return document_from_dict(document_to_dict(self))

    # ----- changing (small, invertible steps) ---------------------------------------
    def add_node(self, data: NodeData, seq: int | None = None) -> None:
        if data.kind not in KINDS:
            raise FormatError("", f'unknown kind "{data.kind}"')
        if data.id in self.graph:
            raise FormatError("", f'there is already a node "{data.id}"')
        if seq is None:
            seq = self._seq
        self._seq = max(self._seq, seq + 1)
        self.graph.add_node(data.id, data=data, seq=seq)
        self.node_added.emit(data.id)

    def remove_node(self, node_id: str) -> tuple[NodeData, int, list[tuple[str, str, int]]]:
        """Remove a node and its edges; returns what :meth:`restore_node` needs."""
        touching = list(self.graph.in_edges(node_id)) + list(self.graph.out_edges(node_id))
        edges = sorted(((s, t, self.graph.edges[s, t]["seq"]) for (s, t) in touching), key=lambda e: e[2])
        for s, t, _ in edges:
            self.remove_edge(s, t)
        data = self.node(node_id)
        seq = self.graph.nodes[node_id]["seq"]
        self.graph.remove_node(node_id)
        self.node_removed.emit(node_id)
        return data, seq, edges

    def restore_node(self, data: NodeData, seq: int, edges: list[tuple[str, str, int]]) -> None:
        self.add_node(data, seq)
        for s, t, eseq in edges:
            self.add_edge(s, t, eseq)

    def connect_problem(self, source: str, target: str) -> str:
        """Why an edge source→target may not be added ('' if it may)."""
        if source not in self.graph or target not in self.graph:
            missing = source if source not in self.graph else target
            return f'there is no node "{missing}"'
        if source == target:
            return "a node cannot send traffic to itself"
        if self.graph.has_edge(source, target):
            return "these nodes are already connected"
        ok, why = can_connect(self.kind(source), self.kind(target))
        if not ok:
            return why
        # a new edge closes a loop only if the target already reaches the source; nothing
        # does when the source has no feeders or the target no successors (the usual case)
        if (self.graph.in_degree(source) and self.graph.out_degree(target)
                and nx.has_path(self.graph, target, source)):
            return "this connection would make requests go round in a loop"
        return ""

    def add_edge(self, source: str, target: str, seq: int | None = None) -> None:
        problem = self.connect_problem(source, target)
        if problem:
            raise FormatError("", problem)
        if seq is None:
            seq = self._seq
        self._seq = max(self._seq, seq + 1)
        self.graph.add_edge(source, target, seq=seq)
        self.edge_added.emit(source, target)

    def remove_edge(self, source: str, target: str) -> int:
        seq = self.graph.edges[source, target]["seq"]
        self.graph.remove_edge(source, target)
        self.edge_removed.emit(source, target)
        return seq

    def set_params(self, node_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set (or, with value ``None``, unset) parameters. Values are validated.

        Returns the previous explicit values (``None`` where unset) for undo.
        """
        data = self.node(node_id)
        kind = KINDS[data.kind]
        if data.kind == "server":   # a machine type decides capacity, workers and price (machines.py)
            changes = machine_changes(data.params, changes)
        checked = {}
        for name, value in changes.items():
            if name not in kind.param_names:
                raise FormatError(name, f"a {kind.label.lower()} has no parameter {name!r}")
            if value is not None:
                value = check_value(kind.param(name), value, name)
                if kind.param(name).type == "object":
                    from .patterns import check_pattern
                    check_pattern(value, name)
            checked[name] = value
        merged = self.params(node_id)
        merged.update({k: (kind.param(k).default if v is None else v) for k, v in checked.items()})
        from .kinds import cross_check
        cross_check(data.kind, merged, "")
        explicit = {**data.params, **checked}
        problem = machine_problem({k: v for k, v in explicit.items() if v is not None}) \
            if data.kind == "server" else None
        if problem:
            raise FormatError(*problem)
        old = {name: copy.deepcopy(data.params.get(name)) for name in checked}
        for name, value in checked.items():
            if value is None:
                data.params.pop(name, None)
            else:
                data.params[name] = value
        self.node_changed.emit(node_id, "params")
        return old

    def set_label(self, node_id: str, label: str) -> str:
        data = self.node(node_id)
        old, data.label = data.label, label
        self.node_changed.emit(node_id, "label")
        return old

    def move_node(self, node_id: str, x: float, y: float) -> tuple[float, float]:
        data = self.node(node_id)
        old = (data.x, data.y)
        data.x, data.y = float(x), float(y)
        self.node_changed.emit(node_id, "position")
        return old

    def set_meta(self, **changes: Any) -> dict[str, Any]:
        old = {k: self.meta.get(k) for k in changes}
        self.meta.update(changes)
        self.meta_changed.emit()
        return old

    def set_settings(self, **changes: Any) -> dict[str, Any]:
        by_name = {p.name: p for p in SIMULATION_PARAMS}
        for name, value in changes.items():
            if name not in by_name:
                raise FormatError(f"simulation.{name}", "unknown setting")
            changes[name] = check_value(by_name[name], value, f"simulation.{name}")
        old = {k: self.settings.get(k) for k in changes}
        self.settings.update(changes)
        self.settings_changed.emit()
        return old

    def insert_event(self, index: int, event: ScheduledEvent) -> None:
        self.events.insert(index, event)
        self.events_changed.emit()

    def remove_event(self, index: int) -> ScheduledEvent:
        ev = self.events.pop(index)
        self.events_changed.emit()
        return ev

    def insert_annotation(self, index: int, annotation: Annotation) -> None:
        self.annotations.insert(index, annotation)
        self.annotation_added.emit(index)

    def remove_annotation(self, index: int) -> Annotation:
        annotation = self.annotations.pop(index)
        self.annotation_removed.emit(index)
        return annotation

    def replace_annotation(self, index: int, annotation: Annotation) -> Annotation:
        """Put ``annotation`` in place of the one at ``index`` (moved, resized, retyped); returns the old one."""
        old, self.annotations[index] = self.annotations[index], annotation
        self.annotation_changed.emit(index)
        return old

    def replicas(self, node_id: str) -> int:
        """Replica slots of a node: its replicas, max_replicas when it autoscales,
        or a database's primary plus its read replicas."""
        params = self.params(node_id)
        if params.get("autoscale"):
            return int(params["max_replicas"])
        if "read_replicas" in params:        # a database: per shard, its primaries (replica 0 is one), then read replicas
            return (int(params.get("primaries", 1)) + int(params["read_replicas"])) * int(params.get("shards", 1))
        return int(params.get("replicas", 1))
