"""Undo commands for annotations: insert at an index, remove (returning it), replace.

Like the node commands, they call only the Document's small invertible methods; the
scene follows the document's events. Several of them (a delete of many, a drag that
moves nodes and notes together, a paste) are grouped in a :class:`MacroCommand`.
"""
from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from simulation.annotations import Annotation
from simulation.document import Document

from .commands import MacroCommand


def what(annotation: Annotation) -> str:
    return "text" if annotation.type == "text" else "arrow"


class InsertAnnotationCommand(QUndoCommand):
    def __init__(self, doc: Document, index: int, annotation: Annotation, text: str = ""):
        super().__init__(text or f"Add {what(annotation)}")
        self.doc, self.index, self.annotation = doc, index, annotation

    def redo(self) -> None:
        self.doc.insert_annotation(self.index, self.annotation)

    def undo(self) -> None:
        self.doc.remove_annotation(self.index)


class RemoveAnnotationCommand(QUndoCommand):
    def __init__(self, doc: Document, index: int):
        super().__init__(f"Delete {what(doc.annotations[index])}")
        self.doc, self.index = doc, index
        self.saved: Annotation | None = None

    def redo(self) -> None:
        self.saved = self.doc.remove_annotation(self.index)

    def undo(self) -> None:
        assert self.saved is not None
        self.doc.insert_annotation(self.index, self.saved)


class ReplaceAnnotationCommand(QUndoCommand):
    """An edit of one annotation (text, width, ends, colour, position)."""

    def __init__(self, doc: Document, index: int, new: Annotation, text: str):
        super().__init__(text)
        self.doc, self.index, self.new = doc, index, new
        self.old: Annotation | None = None

    def redo(self) -> None:
        self.old = self.doc.replace_annotation(self.index, self.new)

    def undo(self) -> None:
        assert self.old is not None
        self.doc.replace_annotation(self.index, self.old)


def remove_annotations(macro: MacroCommand, doc: Document, indices: list[int]) -> None:
    """Add removals of ``indices`` to ``macro``, highest first so that the others keep their index
    (undo puts them back lowest first, each at its own place)."""
    for index in sorted(set(indices), reverse=True):
        macro.add(RemoveAnnotationCommand(doc, index))


def replace_annotations(macro: MacroCommand, doc: Document, changes: dict[int, Annotation], text: str) -> None:
    for index, new in sorted(changes.items()):
        macro.add(ReplaceAnnotationCommand(doc, index, new, text))
