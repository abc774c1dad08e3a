"""Presenter mode: full screen (F11, Esc leaves) and one zoom factor for every text and
line a class reads from the back of the room: the application font (notes, inspector,
menus), the plots' titles, ticks, legends and pen widths, and the canvas labels.

The factor is kept in QSettings (``view/presenter_scale``) and applied at start.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtGui import QAction, QFont, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

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

        self._was_maximized = False
        window.installEventFilter(self)    # also the text-size keys that no widget in it took

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if watched is self.window and kind == QEvent.Type.WindowStateChange:
            full = self.window.isFullScreen()     # however it changed (F11, the window manager)
            self.full_screen_action.setChecked(full)
            self.leave_action.setEnabled(full)
        elif kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and isinstance(event, QKeyEvent):
            return self._text_size_key(watched, event)
        return False

    def _text_size_key(self, watched, event: QKeyEvent) -> bool:
        """Ctrl+Shift+= / − / 0 change the text size wherever the focus is in this window.

        Handled here, not as plain shortcuts: on a real keyboard Shift+= arrives as "+", so
        Ctrl+Shift+= is also Ctrl++ (the canvas's Zoom In) and the shortcut map, finding
        two actions, runs neither ("ambiguous shortcut"). The override event and then the
        key press come up from the focus widget to the window, where this filter takes them."""
        mods = event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
                                    | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier)
        action = {Qt.Key.Key_Plus: self.bigger_action, Qt.Key.Key_Equal: self.bigger_action,
                  Qt.Key.Key_Minus: self.smaller_action, Qt.Key.Key_Underscore: self.smaller_action,
                  Qt.Key.Key_0: self.reset_action, Qt.Key.Key_ParenRight: self.reset_action}.get(event.key())
        if action is None or mods != Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier:
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self.window:
            return False
        event.accept()       # an accepted override: no shortcut; the key press comes to us next
        if event.type() == QEvent.Type.KeyPress:
            action.trigger()
        return True

    def actions(self) -> list[QAction]:
        return [self.full_screen_action, self.bigger_action, self.smaller_action, self.reset_action]

    # ----- full screen ---------------------------------------------------------------
    def toggle_full_screen(self) -> None:
        if self.window.isFullScreen():
            self.leave_full_screen()
        else:
            self._was_maximized = self.window.isMaximized()
            self.window.showFullScreen()
            self.full_screen_action.setChecked(True)
            self.leave_action.setEnabled(True)

    def leave_full_screen(self) -> None:
        if self.window.isFullScreen():    # back to how it was: a maximized window stays maximized
            self.window.showMaximized() if self._was_maximized else self.window.showNormal()
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
        self.window.fit_plots_soon(60)    # rows of plots for the new size, once the fonts are laid out
        self.window.statusBar().showMessage(f"Text size {self.scale:.0%}", 3000)
