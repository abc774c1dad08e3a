"""The lesson notes panel: the document's ``meta.notes`` rendered as Markdown.

Qt lays out an unbreakable run of characters in quadratic time (a 100,000-character
word takes seconds, a million characters minutes), and Markdown of a huge text is
slow too. So notes longer than :data:`MAX_MARKDOWN` characters, or with a run of more
than :data:`LONG_RUN` characters without a space, are shown as plain text: the first
:data:`MAX_MARKDOWN` characters, long runs broken every 100 characters for display,
under a one-line note. The inspector still edits the whole text.
"""
from __future__ import annotations

import re

from PySide6.QtCore import QEvent
from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextBrowser

MAX_MARKDOWN = 50_000
LONG_RUN = 300
_RUN_RE = re.compile(r"\S{%d,}" % LONG_RUN)
_ZWSP = "\u200b"
# Heading sizes relative to the panel's font. Qt's Markdown makes a level-1 heading
# xx-large (about 2.3x), which in a narrow panel at presenter scale breaks the title
# mid-word; these stay readable and keep a one-word title whole.
HEADING_SCALE = {1: 1.35, 2: 1.2, 3: 1.1}


def needs_plain(text: str) -> bool:
    """True when ``text`` is too big or has words too long to lay out quickly."""
    return len(text) > MAX_MARKDOWN or _RUN_RE.search(text) is not None


def break_long_runs(text: str, every: int = 100) -> str:
    """Insert invisible break opportunities into runs of more than ``LONG_RUN`` characters."""
    return _RUN_RE.sub(lambda m: _ZWSP.join(m.group(0)[i:i + every] for i in range(0, len(m.group(0)), every)),
                       text)


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
        self.plain = False          # shown as plain text (too long for Markdown)
        controller.metaChanged.connect(self.refresh)
        controller.documentReplaced.connect(self.refresh)
        self.refresh()

    def refresh(self, *args) -> None:
        meta = self._controller.document.meta
        notes = str(meta.get("notes", "") or "")
        title = str(meta.get("title", "") or "")
        self.plain = False
        if not notes.strip():
            self.clear()
        elif needs_plain(notes):
            self.plain = True
            shown = notes[:MAX_MARKDOWN]
            why = (f"These notes are {len(notes):,} characters long: the first {len(shown):,} are shown "
                   "as plain text." if len(notes) > MAX_MARKDOWN else
                   "These notes have very long words: they are shown as plain text.")
            head = f"{title}\n\n" if title else ""
            self.setPlainText(f"({why} Edit them in the inspector.)\n\n{head}{break_long_runs(shown)}")
        else:
            # Add the title as a heading unless the notes start with one.
            text = notes if notes.lstrip().startswith("#") or not title else f"# {title}\n\n{notes}"
            self.setMarkdown(text)
            self._size_headings()

    def _size_headings(self) -> None:
        """Headings at HEADING_SCALE of the panel's font (which follows the presenter scale)."""
        base = self.font().pointSizeF()
        if base <= 0:
            return
        block = self.document().begin()
        while block.isValid():
            level = block.blockFormat().headingLevel()
            if level:
                fmt = QTextCharFormat()
                fmt.setFontPointSize(base * HEADING_SCALE.get(level, 1.0))
                fmt.setProperty(QTextCharFormat.Property.FontSizeAdjustment, 0)
                cursor = QTextCursor(block)
                cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
                cursor.mergeCharFormat(fmt)
            block = block.next()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange and not self.plain:
            self.refresh()   # the presenter scale changed the application font: headings follow
