"""Undo commands: each one calls the Document's small invertible methods, nothing else.

Commands never touch canvas items: the scene is a projection of the document and
follows the document's events. Every command stores what its ``undo`` needs at the
time it first runs, so that undo/redo restores the document exactly (ids, order).
"""
from __future__ import annotations

import copy
from typing import Any

from PySide6.QtGui import QUndoCommand

from simulation.document import Document, NodeData, ScheduledEvent
from simulation.kinds import KINDS

# Ids for QUndoCommand.mergeWith (any value != -1 enables merging).
MERGE_PARAMS = 1001
MERGE_META = 1002
MERGE_SETTINGS = 1003


def node_name(doc: Document, node_id: str) -> str:
    """The name a user sees for a node in the Edit menu: its id (short and unique)."""
    return node_id


class AddNodeCommand(QUndoCommand):
    """Add one node; on redo it comes back with the same id and order."""

    def __init__(self, doc: Document, data: NodeData):
        super().__init__(f"Add {KINDS[data.kind].label}")
        self.doc = doc
        self.data = data
        self.seq: int | None = None

    def redo(self) -> None:
        self.doc.add_node(self.data.copy(), self.seq)
        self.seq = self.doc.graph.nodes[self.data.id]["seq"]

    def undo(self) -> None:
        self.doc.remove_node(self.data.id)


class RemoveNodeCommand(QUndoCommand):
    """Remove one node that has no edges left (its edges are sibling commands before it)."""

    def __init__(self, doc: Document, node_id: str):
        super().__init__(f"Delete {node_name(doc, node_id)}")
        self.doc = doc
        self.node_id = node_id
        self.saved: tuple[NodeData, int, list] | None = None

    def redo(self) -> None:
        self.saved = self.doc.remove_node(self.node_id)

    def undo(self) -> None:
        assert self.saved is not None
        data, seq, edges = self.saved
        self.doc.restore_node(data, seq, edges)


class AddEdgeCommand(QUndoCommand):
    def __init__(self, doc: Document, source: str, target: str):
        super().__init__(f"Connect {source} → {target}")
        self.doc = doc
        self.edge = (source, target)
        self.seq: int | None = None

    def redo(self) -> None:
        self.doc.add_edge(*self.edge, self.seq)
        self.seq = self.doc.graph.edges[self.edge]["seq"]

    def undo(self) -> None:
        self.doc.remove_edge(*self.edge)


class RemoveEdgeCommand(QUndoCommand):
    def __init__(self, doc: Document, source: str, target: str):
        super().__init__(f"Disconnect {source} → {target}")
        self.doc = doc
        self.edge = (source, target)
        self.seq: int | None = None

    def redo(self) -> None:
        self.seq = self.doc.remove_edge(*self.edge)

    def undo(self) -> None:
        self.doc.add_edge(*self.edge, self.seq)


class MacroCommand(QUndoCommand):
    """A group of commands as one step.

    The children are held in a Python list rather than given a Qt parent: PySide does
    not keep a child command's Python object alive, and a collected child crashes undo.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.children: list[QUndoCommand] = []

    def add(self, child: QUndoCommand) -> None:
        self.children.append(child)

    def redo(self) -> None:
        for child in self.children:
            child.redo()

    def undo(self) -> None:
        for child in reversed(self.children):
            child.undo()


def remove_nodes_macro(doc: Document, ids: list[str], text: str) -> MacroCommand:
    """One step deleting ``ids``: every touching edge first, then the nodes.

    Undo runs them backwards: nodes come back first, then their edges with
    their original order.
    """
    macro = MacroCommand(text)
    wanted = set(ids)
    # scheduled events of these nodes go too (last index first, so indices stay valid)
    for index in reversed(range(len(doc.events))):
        if doc.events[index].node in wanted:
            macro.add(RemoveEventCommand(doc, index))
    for s, t in doc.edges():
        if s in wanted or t in wanted:
            macro.add(RemoveEdgeCommand(doc, s, t))
    for node_id in ids:
        macro.add(RemoveNodeCommand(doc, node_id))
    return macro


def delete_text(ids: list[str], verb: str = "Delete") -> str:
    return f"{verb} {ids[0]}" if len(ids) == 1 else f"{verb} {len(ids)} nodes"


class MoveNodesCommand(QUndoCommand):
    """One drag: every moved node's old and new position."""

    def __init__(self, doc: Document, moves: dict[str, tuple[tuple[float, float], tuple[float, float]]]):
        text = f"Move {next(iter(moves))}" if len(moves) == 1 else f"Move {len(moves)} nodes"
        super().__init__(text)
        self.doc = doc
        self.moves = dict(moves)

    def redo(self) -> None:
        for node_id, (_, (x, y)) in self.moves.items():
            self.doc.move_node(node_id, x, y)

    def undo(self) -> None:
        for node_id, ((x, y), _) in self.moves.items():
            self.doc.move_node(node_id, x, y)


class SetParamsCommand(QUndoCommand):
    """Set parameters of one or more nodes; a burst of edits of one field merges into one step.

    ``changes`` must already be validated (the controller does it before pushing).
    """

    def __init__(self, doc: Document, ids: list[str], changes: dict[str, Any]):
        super().__init__(_params_text(doc, ids, changes))
        self.doc = doc
        self.ids = tuple(ids)
        self.changes = copy.deepcopy(changes)
        self.old: dict[str, dict[str, Any]] = {}

    def redo(self) -> None:
        old = {}
        for node_id in self.ids:
            old[node_id] = self.doc.set_params(node_id, copy.deepcopy(self.changes))
        if not self.old:  # keep the values from before the first edit of a merged burst
            self.old = old

    def undo(self) -> None:
        for node_id in self.ids:
            self.doc.set_params(node_id, copy.deepcopy(self.old[node_id]))

    def id(self) -> int:
        return MERGE_PARAMS

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParamsCommand):
            return False
        if other.ids != self.ids or set(other.changes) != set(self.changes):
            return False
        self.changes = copy.deepcopy(other.changes)
        return True


def _params_text(doc: Document, ids: list[str], changes: dict[str, Any]) -> str:
    if len(changes) == 1:
        name = next(iter(changes))
        kind = KINDS[doc.kind(ids[0])]
        title = kind.param(name).title if name in kind.param_names else name
        return f"Change {title[:1].lower() + title[1:]}"
    return "Change parameters"


class SetLabelCommand(QUndoCommand):
    def __init__(self, doc: Document, node_id: str, text: str):
        super().__init__(f"Rename {node_id}")
        self.doc = doc
        self.node_id = node_id
        self.text = text
        self.old = ""

    def redo(self) -> None:
        self.old = self.doc.set_label(self.node_id, self.text)

    def undo(self) -> None:
        self.doc.set_label(self.node_id, self.old)


class _SetDictCommand(QUndoCommand):
    """Shared shape of meta and settings edits: keyword changes, merge on the same keys."""

    merge_id = -1

    def __init__(self, doc: Document, text: str, changes: dict[str, Any]):
        super().__init__(text)
        self.doc = doc
        self.changes = dict(changes)
        self.old: dict[str, Any] | None = None

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def redo(self) -> None:
        old = self.apply(dict(self.changes))
        if self.old is None:
            self.old = old

    def undo(self) -> None:
        assert self.old is not None
        self.apply(dict(self.old))

    def id(self) -> int:
        return self.merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if type(other) is not type(self) or set(other.changes) != set(self.changes):
            return False
        self.changes = dict(other.changes)
        return True


class SetMetaCommand(_SetDictCommand):
    merge_id = MERGE_META

    def __init__(self, doc: Document, changes: dict[str, Any]):
        names = {"title": "Change title", "notes": "Edit lesson notes"}
        text = names.get(next(iter(changes)), "Change lesson") if len(changes) == 1 else "Change lesson"
        super().__init__(doc, text, changes)

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self.doc.set_meta(**changes)


class SetSettingsCommand(_SetDictCommand):
    merge_id = MERGE_SETTINGS

    def __init__(self, doc: Document, changes: dict[str, Any]):
        names = {"tick_ms": "Change tick", "duration_s": "Change duration", "seed": "Change seed"}
        text = names.get(next(iter(changes)), "Change settings") if len(changes) == 1 else "Change settings"
        super().__init__(doc, text, changes)

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self.doc.set_settings(**changes)


class InsertEventCommand(QUndoCommand):
    def __init__(self, doc: Document, index: int, event: ScheduledEvent):
        super().__init__(f"Schedule {event.action} of {event.node}")
        self.doc = doc
        self.index = index
        self.event = event

    def redo(self) -> None:
        self.doc.insert_event(self.index, copy.copy(self.event))

    def undo(self) -> None:
        self.doc.remove_event(self.index)


class RemoveEventCommand(QUndoCommand):
    def __init__(self, doc: Document, index: int):
        ev = doc.events[index]
        super().__init__(f"Remove scheduled {ev.action} of {ev.node}")
        self.doc = doc
        self.index = index
        self.event: ScheduledEvent | None = None

    def redo(self) -> None:
        self.event = self.doc.remove_event(self.index)

    def undo(self) -> None:
        assert self.event is not None
        self.doc.insert_event(self.index, self.event)


def paste_macro(doc: Document, nodes: list[NodeData], edges: list[tuple[str, str]], text: str) -> MacroCommand:
    """One step adding a set of new nodes and the edges among them."""
    macro = MacroCommand(text)
    for data in nodes:
        macro.add(AddNodeCommand(doc, data))
    for s, t in edges:
        macro.add(AddEdgeCommand(doc, s, t))
    return macro
