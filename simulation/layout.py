"""Positions for nodes that have none of their own.

A file written by hand or by a script (the Document API's nodes default to (0, 0)) may
leave every node at one point: opened as it is, the canvas shows one pile. The nodes
that share their position with another one are laid out left to right by level, as the
lessons are drawn: a node's column is the longest chain of edges that leads to it
(clients first), its row its place among its column's nodes, ordered by where their
predecessors are, each column centred on the tallest. Nodes placed apart keep their
places; the others go below them.
"""
from __future__ import annotations

from collections import Counter

from .document import Document

COLUMN = 240.0   # between columns (a node paints about 200 units wide)
ROW = 130.0      # between rows
GAP = 160.0      # between the nodes that kept their places and the ones laid out below them


def stacked_nodes(doc: Document) -> list[str]:
    """The nodes that share their exact position with at least one other node."""
    at = Counter((n.x, n.y) for n in doc.nodes())
    return [n.id for n in doc.nodes() if at[(n.x, n.y)] > 1]


def levels(doc: Document, ids: list[str]) -> dict[str, int]:
    """Each node's column among ``ids``: the longest chain of edges between them that ends
    there, in one pass in topological order (files have no loops: the document refuses
    them; a node on one would stay in column 0). Linear in nodes and edges."""
    inside = set(ids)
    level = dict.fromkeys(ids, 0)
    succ = {i: [t for t in doc.successors(i) if t in inside and t != i] for i in ids}
    into = dict.fromkeys(ids, 0)
    for i in ids:
        for t in succ[i]:
            into[t] += 1
    todo = [i for i in ids if into[i] == 0]
    while todo:   # each node is taken once, when its last predecessor is done
        i = todo.pop()
        for t in succ[i]:
            level[t] = max(level[t], level[i] + 1)
            into[t] -= 1
            if into[t] == 0:
                todo.append(t)
    return level


def arranged(doc: Document, ids: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """New positions of ``ids`` (default: the stacked nodes), laid out by level below the
    other nodes; empty when there is nothing to do."""
    ids = stacked_nodes(doc) if ids is None else [i for i in ids if i in doc]
    if not ids:
        return {}
    chosen = set(ids)
    level = levels(doc, ids)
    order = {i: k for k, i in enumerate(doc.node_ids())}
    columns: dict[int, list[str]] = {}
    for i in ids:
        columns.setdefault(level[i], []).append(i)
    tallest = max(len(v) for v in columns.values())
    row: dict[str, float] = {}   # each column centred on the tallest one
    for c in sorted(columns):
        def place(i: str) -> tuple[float, int]:   # under its predecessors (their mean row), then file order
            before = [row[p] for p in doc.predecessors(i) if p in row]
            return (sum(before) / len(before) if before else float("inf"), order[i])
        members = sorted(columns[c], key=place)
        for k, i in enumerate(members):
            row[i] = k + (tallest - len(members)) / 2
    others = [n for n in doc.nodes() if n.id not in chosen]
    x0 = min((n.x for n in others), default=0.0)
    y0 = max((n.y for n in others), default=-GAP) + GAP
    return {i: (x0 + COLUMN * level[i], y0 + ROW * row[i]) for i in ids}
