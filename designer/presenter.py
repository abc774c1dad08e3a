"""Presenter mode: full screen (F11, Esc leaves) and one zoom factor for every text and
line a class reads from the back of the room: the application font (notes, inspector,
menus), the plots' titles, ticks, legends and pen widths, and the canvas labels.

The factor is kept in QSettings (``view/presenter_scale``) and applied at start.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow

SCALES = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
KEY = "view/presenter_scale"


_BASE_FONT: list[QFont] = []     # the application font before any scaling (shared by every window)


def _base_font() -> QFont:
    if not _BASE_FONT:
        app = QApplication.instance()
        font = QFont(app.font()) if app is not None else QFont()
        if font.pointSizeF() <= 0:
            font.setPointSizeF(9.0)
        _BASE_FONT.append(font)
    return QFont(_BASE_FONT[0])


class Presenter(QObject):
    """Full screen and text zoom for one main window."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._base_font = _base_font()
        self.scale = 1.0

        def action(text: str, keys: list[str], slot, tip: str) -> QAction:
            act = QAction(text, window)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setStatusTip(tip)
            act.setToolTip(f"{tip} ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
            act.triggered.connect(lambda checked=False: slot())
            window.addAction(act)
            return act

        self.full_screen_action = action("&Full Screen", ["F11"], self.toggle_full_screen,
                                         "Presenter mode: the window fills the screen (Esc leaves)")
        self.full_screen_action.setCheckable(True)
        self.leave_action = action("Leave Full Screen", ["Esc"], self.leave_full_screen, "Leave full screen")
        self.leave_action.setEnabled(False)     # Esc stays the canvas's until the window is full screen
        self.bigger_action = action("&Larger Text", ["Ctrl+Shift+=", "Ctrl+Shift++"], self.bigger,
                                    "Presenter mode: larger fonts, plot lines and canvas labels")
        self.smaller_action = action("&Smaller Text", ["Ctrl+Shift+-", "Ctrl+Shift+_"], self.smaller,
                                     "Presenter mode: smaller fonts, plot lines and canvas labels")
        self.reset_action = action("&Normal Text Size", ["Ctrl+Shift+0", "Ctrl+Shift+)"], lambda: self.set_scale(1.0),
                                   "Fonts, plot lines and canvas labels at their normal size")

        window.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.window and event.type() == QEvent.Type.WindowStateChange:
            full = self.window.isFullScreen()     # however it changed (F11, the window manager)
            self.full_screen_action.setChecked(full)
            self.leave_action.setEnabled(full)
        return False

    def actions(self) -> list[QAction]:
        return [self.full_screen_action, self.bigger_action, self.smaller_action, self.reset_action]

    # ----- full screen ---------------------------------------------------------------
    def toggle_full_screen(self) -> None:
        if self.window.isFullScreen():
            self.leave_full_screen()
        else:
            self.window.showFullScreen()
            self.full_screen_action.setChecked(True)
            self.leave_action.setEnabled(True)

    def leave_full_screen(self) -> None:
        if self.window.isFullScreen():
            self.window.showNormal()
        self.full_screen_action.setChecked(False)
        self.leave_action.setEnabled(False)

    # ----- text zoom -----------------------------------------------------------------
    def bigger(self) -> None:
        self.set_scale(next((s for s in SCALES if s > self.scale + 1e-6), SCALES[-1]))

    def smaller(self) -> None:
        self.set_scale(next((s for s in reversed(SCALES) if s < self.scale - 1e-6), SCALES[0]))

    def restore(self) -> None:
        try:
            value = float(QSettings().value(KEY, 1.0))
        except (TypeError, ValueError):
            value = 1.0
        if value != 1.0:
            self.set_scale(value)

    def set_scale(self, scale: float) -> None:
        """Apply ``scale`` to the application font, the plots and the canvas labels."""
        self.scale = min(max(float(scale), SCALES[0]), SCALES[-1])
        QSettings().setValue(KEY, self.scale)
        app = QApplication.instance()
        if app is not None:
            font = QFont(self._base_font)
            font.setPointSizeF(self._base_font.pointSizeF() * self.scale)
            app.setFont(font)
        if self.window._plots is not None:
            self.window._plots.set_scale(self.scale)
        self.window.canvas.set_text_scale(self.scale)
        self.window.fit_plots_dock()      # rows of plots for the new size
        self.window.statusBar().showMessage(f"Text size {self.scale:.0%}", 3000)
