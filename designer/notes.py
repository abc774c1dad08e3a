"""The lesson notes panel: the document's ``meta.notes`` rendered as Markdown."""
from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser


class NotesPanel(QTextBrowser):
    """Read-only view of the lesson's title and notes. Edit them in the inspector
    (with nothing selected)."""

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("lessonNotes")
        self.setOpenExternalLinks(True)
        self.setPlaceholderText("This lesson has no notes. Click an empty spot of the canvas and "
                                "write some in the inspector.")
        self._controller = controller
        controller.metaChanged.connect(self.refresh)
        controller.documentReplaced.connect(self.refresh)
        self.refresh()

    def refresh(self, *args) -> None:
        meta = self._controller.document.meta
        notes = str(meta.get("notes", "") or "")
        title = str(meta.get("title", "") or "")
        if notes.strip():
            # Add the title as a heading unless the notes start with one.
            text = notes if notes.lstrip().startswith("#") or not title else f"# {title}\n\n{notes}"
            self.setMarkdown(text)
        else:
            self.clear()
