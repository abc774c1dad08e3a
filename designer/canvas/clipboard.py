"""Copy and paste of nodes as JSON: the same node shape as the .scalelab file.

A clip is ``{"format": "scalelab-clip", "nodes": [...], "edges": [...]}``; pasting
validates every node with the loader's own rules (unknown kinds, bad parameters,
over-long labels, ``min_replicas > max_replicas`` are refused, naming the place) and
gives every node a fresh id.
"""
from __future__ import annotations

import json
from typing import Any

from simulation.annotations import Annotation, parse_annotations
from simulation.document import Document, NodeData
from simulation.kinds import KINDS
from simulation.params import FormatError, check_number

from ..validation import loader_node

CLIP_MIME = "application/x-scalelab-nodes"
CLIP_FORMAT = "scalelab-clip"


def nodes_to_clip(doc: Document, ids: list[str], notes: list[int] = ()) -> str:
    """JSON of the nodes ``ids`` (in document order), the edges among them and the
    annotations at the indices ``notes`` (a clip of annotations alone has no nodes)."""
    wanted = set(ids)
    nodes = [n for n in doc.nodes() if n.id in wanted]
    data = {
        "format": CLIP_FORMAT,
        "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "x": n.x, "y": n.y,
                   "params": dict(n.params)} for n in nodes],
        "edges": [{"source": s, "target": t} for s, t in doc.edges() if s in wanted and t in wanted],
    }
    if notes:
        data["annotations"] = [doc.annotations[i].to_dict() for i in notes]
    return json.dumps(data, indent=1, ensure_ascii=False)


def clip_to_nodes(doc: Document, text: str, offset: tuple[float, float]
                  ) -> tuple[list[NodeData], list[tuple[str, str]]]:
    """Parse a clip into new nodes (fresh ids, shifted by ``offset``) and their edges.

    Raises :class:`FormatError` if the text is not a valid clip.
    """
    try:
        data: Any = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise FormatError("clipboard", f"not ScaleLab nodes ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != CLIP_FORMAT:
        raise FormatError("clipboard", "not ScaleLab nodes")
    raw_nodes = data.get("nodes")
    raw_edges = data.get("edges", [])
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        raise FormatError("clipboard", "nodes and edges must be lists")
    taken: set[str] = set(doc.graph.nodes)
    labels: set[str] = {n.label for n in doc.nodes()}
    renamed: dict[str, str] = {}
    nodes: list[NodeData] = []
    for i, raw in enumerate(raw_nodes):
        where = f"clipboard.nodes[{i}]"
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            raise FormatError(where, "not a node of a known kind")
        new_id = fresh_id(raw["kind"], taken)
        taken.add(new_id)
        renamed[str(raw.get("id"))] = new_id
        x = check_number(raw.get("x", 0.0), f"{where}.x", integer=False, minimum=-1e7, maximum=1e7)
        y = check_number(raw.get("y", 0.0), f"{where}.y", integer=False, minimum=-1e7, maximum=1e7)
        # The node as it will be, checked by the loader's own rules (label length and
        # characters, every parameter, min_replicas ≤ max_replicas, position).
        candidate = dict(raw, id=new_id, x=float(x) + offset[0], y=float(y) + offset[1])
        label = raw.get("label")
        if isinstance(label, str) and label in labels:   # "Web 2 (copy)": the copy is told apart
            label = copy_label(label, labels)
            candidate["label"] = label
        if isinstance(label, str):
            labels.add(label)
        nodes.append(loader_node(candidate, where, Document()))
    edges = []
    among = Document()          # the pasted nodes alone: their edges must be allowed like a file's
    for data in nodes:
        among.add_node(data.copy())
    for i, raw in enumerate(raw_edges):
        if not isinstance(raw, dict):
            continue
        s, t = renamed.get(str(raw.get("source"))), renamed.get(str(raw.get("target")))
        if s and t and (s, t) not in edges:
            problem = among.connect_problem(s, t)
            if problem:
                raise FormatError(f"clipboard.edges[{i}]", problem)
            among.add_edge(s, t)
            edges.append((s, t))
    return nodes, edges


def clip_annotations(text: str, offset: tuple[float, float]) -> list[Annotation]:
    """The clip's annotations (checked by the loader's rules), shifted by ``offset``.
    Call after :func:`clip_to_nodes` accepted the text."""
    data: Any = json.loads(text)
    return [a.moved(*offset) for a in parse_annotations(data.get("annotations", []), "clipboard.annotations")]


def fresh_id(kind: str, taken: set[str]) -> str:
    """Like :meth:`Document.new_id`, but also avoiding ids about to be added."""
    base = {"load_balancer": "lb"}.get(kind, kind)
    i = 1
    while f"{base}{i}" in taken:
        i += 1
    return f"{base}{i}"


def copy_label(label: str, taken: set[str]) -> str:
    """``label (copy)``, or ``label (copy 2)``, … : the first not in ``taken``."""
    base = label[:180]
    for n in range(1, len(taken) + 2):
        candidate = f"{base} (copy)" if n == 1 else f"{base} (copy {n})"
        if candidate not in taken:
            return candidate
    return f"{base} (copy)"


def default_label(kind: str, node_id: str) -> str:
    """``server3`` -> ``Server 3``; ``lb2`` -> ``Load balancer 2``."""
    digits = ""
    for ch in reversed(node_id):
        if not ch.isdigit():
            break
        digits = ch + digits
    label = KINDS[kind].label
    return f"{label} {digits}" if digits else label
