"""The canvas view's annotation tools: add a text box or an arrow, edit a text in place,
recolour, and the right-click menus of the empty canvas and of annotations.

A mixin of :class:`~designer.canvas.view.CanvasView` (kept apart so that the view stays
about gestures); every change goes through the controller, one undo step each.
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from simulation.annotations import COLORS, Arrow, TextNote
from simulation.params import FormatError

from . import look
from .annotation_items import TextNoteEditor, TextNoteItem


class AnnotationTools:
    """Annotation editing for the canvas view (uses its controller, scene and actions)."""

    def add_text_at(self, x: float, y: float, edit: bool = True) -> int | None:
        """A new text box with its top-left at (x, y), opened for typing; returns its index."""
        try:
            index = self.controller.add_annotation(TextNote(look.snap(x), look.snap(y), "Text"))
        except FormatError as err:
            self.controller.editRefused.emit(f"No text added: {err}")
            return None
        self.added_annotation(index)
        if edit:
            self.edit_text(index)
        return index

    def add_text_at_center(self) -> int | None:
        center = self.mapToScene(self.viewport().rect().center())
        return self.add_text_at(center.x() - 100, center.y() - 20)

    def add_arrow_at(self, x: float, y: float) -> int | None:
        """An arrow from (x, y) pointing up and to the right; drag its ends to place it."""
        x, y = look.snap(x), look.snap(y)
        try:
            index = self.controller.add_annotation(Arrow(x, y, x + 100, y - 60))
        except FormatError as err:
            self.controller.editRefused.emit(f"No arrow added: {err}")
            return None
        self.added_annotation(index)
        return index

    def added_annotation(self, index: int) -> None:
        self.set_selection({self.canvas_scene.annotations[index]})
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def set_arrow_tool(self, on: bool) -> None:
        """Add Arrow: the next left drag on the canvas draws an arrow (Escape cancels)."""
        self.arrow_tool = on
        if on:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            self.controller.editRefused.emit("Drag on the canvas from where the arrow starts to where it points "
                                             "(Escape cancels)")
        else:
            self.viewport().unsetCursor()

    def status(self, text: str) -> None:
        self.controller.editRefused.emit(text)

    def edit_text(self, index: int) -> TextNoteEditor | None:
        """Edit a text box in place; the new text is one undo step (an emptied box is deleted)."""
        item = self.canvas_scene.annotations[index] if 0 <= index < len(self.canvas_scene.annotations) else None
        if not isinstance(item, TextNoteItem):
            return None
        self._close_editors()

        def done(text: str | None) -> None:
            self._note_editor = None
            if text is None or item not in self.canvas_scene.annotations:
                return
            try:
                self.controller.set_annotation_text(self.canvas_scene.annotations.index(item), text)
            except FormatError as err:
                self.controller.editRefused.emit(f"Text not changed: {err.message}")

        self._note_editor = TextNoteEditor(item, done)
        self.canvas_scene.addItem(self._note_editor)
        self._note_editor.begin()
        return self._note_editor

    def set_annotation_color(self, indices: list[int], color: str) -> None:
        doc = self.controller.document
        value = None if color == "default" else color
        self.controller.change_annotations({i: replace(doc.annotations[i], color=value) for i in indices},
                                           "Change colour")

    def _close_editors(self) -> None:
        for editor in (self._editor, self._note_editor):
            if editor is not None:
                editor.commit()

    def _annotations_renumbered(self, index: int) -> None:
        """Annotations came or went (undo, paste): gestures holding indices cannot finish."""
        if self._note_editor is not None:
            self._note_editor.close(None)
        if self._interaction is not None and self._interaction.involves_annotations():
            interaction, self._interaction = self._interaction, None
            interaction.cancel()

    def add_node_at_center(self, kind: str) -> str:
        """For the palette's keyboard path: add ``kind`` in the middle of the visible area."""
        center = self.mapToScene(self.viewport().rect().center())
        node_id = self.controller.add_node(kind, look.snap(center.x()), look.snap(center.y()))
        self.select_ids([node_id])
        return node_id

    def canvas_menu(self, x: float, y: float) -> QMenu:
        """The right-click menu of the empty canvas at scene point (x, y) (also used by tests)."""
        menu = QMenu(self)
        menu.addAction("Add text here", lambda: self.add_text_at(x, y))
        menu.addAction("Add arrow here", lambda: self.add_arrow_at(x, y))
        menu.addSeparator()
        menu.addAction(self.paste_action)
        return menu

    def annotation_menu(self, indices: list[int]) -> QMenu:
        """The right-click menu of selected annotations: edit, colour, copy, delete."""
        menu = QMenu(self)
        doc = self.controller.document
        if len(indices) == 1 and doc.annotations[indices[0]].type == "text":
            menu.addAction("Edit text", lambda: self.edit_text(indices[0]))
        colors = menu.addMenu("Colour")
        for name in COLORS:
            colors.addAction(name.capitalize(), lambda name=name: self.set_annotation_color(indices, name))
        menu.addSeparator()
        menu.addActions([self.copy_action, self.duplicate_action, self.delete_action])
        return menu

