"""Status-bar messages that never linger over newer state.

A refusal ("Not connected: …", "Label not changed: …", "Cannot fail Web 2 …", "The run
reached its duration …") stays until the user's next action succeeds: an edit, undo or
redo, a new document, a run command, a fail or recover click. A message about a run
("Web 2 failed at t = 12.0 s", "Reached the end of the run") goes when that run is reset
or the document replaced. Other messages keep their timeouts.
"""
from __future__ import annotations

from PySide6.QtCore import QObject


class StatusMessages(QObject):
    """Watches one main window's sources of messages and of success."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self._refusals: set[str] = set()      # texts shown for refusals, until something succeeds
        self._run_texts: set[str] = set()     # texts about the current run
        # Connected after the window's own slots: the text is already in the status bar.
        window.controller.editRefused.connect(self._refusal)
        window.canvas.connectionRefused.connect(lambda why: self._refusal(f"Not connected: {why}"))
        window.run.refused.connect(self._refusal)
        window.run.message.connect(self._run_texts.add)
        for signal in (window.controller.undo_stack.indexChanged, window.run.stateChanged,
                       window.run.manualEventsChanged):
            signal.connect(self.succeeded)
        window.run.resetDone.connect(self.run_gone)
        window.controller.documentReplaced.connect(self.run_gone)

    def _refusal(self, text: str) -> None:
        self._refusals.add(text)

    def current(self) -> str:
        return self.window.statusBar().currentMessage()

    def succeeded(self, *args) -> None:
        """Something the user did worked: the refusals before it are out of date."""
        if self._refusals and self.current() in self._refusals:
            self.window.statusBar().clearMessage()
        self._refusals.clear()
        clear = getattr(self.window.canvas, "clear_refusal", None)
        if clear is not None:
            clear()     # the canvas's banner and status tip about a refused connection

    def run_gone(self, *args) -> None:
        """A reset or another document: what was said about the run is out of date."""
        if self.current() in self._run_texts:
            self.window.statusBar().clearMessage()
        self._run_texts.clear()
        self.succeeded()


def install(window) -> StatusMessages:
    window.status_messages = StatusMessages(window)
    return window.status_messages
