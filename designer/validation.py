"""The loader's rules, applied to an edit before it happens.

The designer must never hold (and so never write) what it cannot read back. Rather
than repeating the file format's rules, every check here runs a candidate through
the loader's own functions (``simulation.fileformat``): a node through ``_node``, an
event through ``_event``, a text through ``_text``; a whole document through
``document_from_dict`` before it is saved. Each raises :class:`FormatError` naming
what and where.
"""
from __future__ import annotations

import inspect
import json
from typing import Any, Iterable

from simulation import fileformat as ff
from simulation.document import Document, NodeData, ScheduledEvent
from simulation.params import FormatError

LABEL_MAX = 200      # the loader's limit for nodes[i].label
COORD_MAX = 1e7      # the loader's limit for nodes[i].x / .y


def node_dict(data: NodeData) -> dict[str, Any]:
    """A node as the file writes it."""
    return {"id": data.id, "kind": data.kind, "label": data.label, "x": data.x, "y": data.y,
            "params": dict(data.params)}


def loader_node(raw: Any, where: str, doc: Document) -> NodeData:
    """The loader's ``_node`` check of one node, whichever way it names places: given a
    ``where`` (``nodes[3]``) or, in newer loaders, an index (places then read
    ``node "web1", label``; ``where`` is put in front of them)."""
    if "index" not in inspect.signature(ff._node).parameters:
        return ff._node(raw, where, doc)
    try:
        return ff._node(raw, 0, doc)
    except FormatError as err:
        if not where:
            raise
        raise FormatError(f"{where}, {err.where}" if err.where else where, err.message) from None


def check_label(text: Any, where: str = "label") -> str:
    """A node's label as the loader accepts it (a string of at most 200 valid characters)."""
    return ff._text(text, where, LABEL_MAX)


def check_text(text: Any, where: str) -> str:
    """A lesson text (title, notes) as the loader accepts it."""
    return ff._text(text, where, ff.MAX_TEXT)


def check_node(data: NodeData, where: str | None = None,
               events: Iterable[ScheduledEvent] = ()) -> NodeData:
    """Validate one node exactly as the loader would (id, kind, label, position, every
    parameter and the cross-field rules such as ``min_replicas ≤ max_replicas``), and the
    scheduled ``events`` that target it (e.g. a replica that must still exist)."""
    where = where or data.id
    checked = loader_node(json.loads(json.dumps(node_dict(data))), where, Document())
    alone = Document()
    alone.add_node(checked)
    for i, event in enumerate(events):
        if event.node == data.id:
            try:
                ff._event(event.to_dict(), f"events[{i}]", alone)
            except FormatError:
                raise FormatError(f"{where}.params", f"the scheduled event '{event.action} replica {event.replica} "
                                  f"at {event.at_s:g} s' needs a replica this node would no longer have; "
                                  "remove that event first") from None
    return checked


def check_event(doc: Document, event: ScheduledEvent, where: str = "event") -> ScheduledEvent:
    """A scheduled event as the loader accepts it in ``doc``."""
    if len(doc.events) >= ff.MAX_EVENTS:
        raise FormatError("events", f"too many events (at most {ff.MAX_EVENTS})")
    return ff._event(event.to_dict(), where, doc)


def check_room(doc: Document, nodes: int = 0, edges: int = 0) -> None:
    """Refuse an edit that would give the document more nodes or edges than a file may hold."""
    if nodes and doc.graph.number_of_nodes() + nodes > ff.MAX_NODES:
        raise FormatError("nodes", f"too many nodes (at most {ff.MAX_NODES})")
    if edges and doc.graph.number_of_edges() + edges > ff.MAX_EDGES:
        raise FormatError("edges", f"too many connections (at most {ff.MAX_EDGES})")


def clamp_coordinate(value: float) -> float:
    return max(-COORD_MAX, min(COORD_MAX, float(value)))


def writable_text(doc: Document) -> str:
    """The file text of ``doc``, after checking that the loader reads it back.

    Raises :class:`FormatError` (naming the place) instead of writing a file that could
    not be reopened.
    """
    try:
        text = ff.dumps(doc)
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise FormatError("", f"contains an invalid character ({err.reason})") from None
    except ValueError as err:     # e.g. a non-finite number
        raise FormatError("", str(err)) from None
    ff.loads(text)
    return text
