"""How the main window shares its height between the canvas and the plots.

Two rows of plots when the canvas keeps at least 45 % of the room (1920×1080), else one
row with the others a tab away (1280×720); the rule is applied again whenever the
window or the presenter scale changes, until the user drags the separator himself
(View → Reset layout hands it back). The plots panel itself reflows in
:mod:`plot_layout`. A mixin of :class:`designer.main_window.MainWindow`.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, Qt, QTimer

MIN_PLOT_W, MIN_PLOT_H = 230, 205   # a plot's least size at scale 1: its data area stays >= ~100 px tall
CANVAS_SHARE = 0.45                 # two rows of plots only if the canvas keeps this share of the height
PANEL_EXTRA = 18                    # the plots panel's readout line and margins, at scale 1
ROW_GAP = 6                         # between two rows of plots
TABS_EXTRA = 28                     # the page tabs when not every row shows
NOTES_WIDTH, NOTES_MIN_WIDTH = 380, 260   # the lesson notes beside the plots (22 % of the window between)


def least_row_height(scale: float) -> float:
    """A row of plots' least height at presenter ``scale``: it grows with the square root of
    the scale (the text grows fully), so that larger text still leaves the canvas its room."""
    return MIN_PLOT_H * math.sqrt(max(scale, 1.0))


class WindowLayout:
    """The plots dock's height and the notes' width beside it, following the window's size."""

    _plots_by_hand = False      # the user dragged the separator: his height stays
    _press_sizes: tuple[int, int] | None = None

    def _room(self) -> int:
        """The height the canvas and the bottom docks share."""
        used = self.menuBar().height() if self.menuBar().isVisible() else 0
        used += self.statusBar().height() if self.statusBar().isVisible() else 0
        from PySide6.QtWidgets import QToolBar
        used += max((bar.height() for bar in self.findChildren(QToolBar)
                     if bar.isVisible() and not bar.isFloating() and bar.parent() is self), default=0)
        return max(self.height() - used, 1)

    def _plots_height(self) -> int:
        """The plots dock's height: two rows of plots when the canvas keeps its share, else one
        (measured on the panel once it is built: its readout, tabs and margins at this scale)."""
        scale = self.presenter.scale if getattr(self, "presenter", None) is not None else 1.0
        dock, plots = self.docks["plots"], getattr(self, "_plots", None)
        least = least_row_height(scale)
        if plots is not None and plots.isVisible() and not dock.isFloating():
            tabs = plots._page_tabs()
            fixed = dock.height() - plots.scroll.viewport().height() - (0 if tabs.isHidden() else tabs.height())
            tabs_height, total = tabs.sizeHint().height(), max(len(plots._grid_rows), 1)
            margins = 2 * plots.graphics.ci.layout.getContentsMargins()[1]
        else:
            fixed = PANEL_EXTRA * scale + dock.fontMetrics().height() + 4
            tabs_height, total, margins = TABS_EXTRA * scale, 2, 18

        def height(rows: int) -> int:
            paged = rows < total
            return int(rows * least + (rows - 1) * ROW_GAP + margins + fixed + (tabs_height if paged else 0)) + 2

        room = self._room()
        if room - height(2) >= CANVAS_SHARE * room:
            return height(2)
        full = height(1)          # one row; with larger text, no taller than leaves the canvas its share,
        least = MIN_PLOT_H        # down to the row's size at 100 % (height() reads ``least``)
        return max(height(1), min(full, int((1 - CANVAS_SHARE) * room)))

    def fit_plots_dock(self, by_hand_too: bool = False) -> None:
        """Give the plots dock its height for the window's size (not over a height the user chose)."""
        if by_hand_too:
            self._plots_by_hand = False
        dock = self.docks["plots"]
        if self._plots_by_hand or not dock.isVisible() or dock.isFloating() \
                or self.dockWidgetArea(dock) != Qt.DockWidgetArea.BottomDockWidgetArea:
            return
        wanted = self._plots_height()
        if abs(dock.height() - wanted) > 2:
            self.resizeDocks([dock], [wanted], Qt.Orientation.Vertical)
        notes = self.docks["notes"]       # beside the plots: narrower on a narrow screen (three plots a row)
        if notes.isVisible() and not notes.isFloating() \
                and self.dockWidgetArea(notes) == Qt.DockWidgetArea.BottomDockWidgetArea:
            width = int(min(NOTES_WIDTH, max(NOTES_MIN_WIDTH, 0.22 * self.width())))
            if abs(notes.width() - width) > 2:
                self.resizeDocks([notes], [width], Qt.Orientation.Horizontal)

    def fit_plots_soon(self, delay_ms: int = 0) -> None:
        """Fit once the window's layout has settled (after a burst of resizes, or a new text size)."""
        timer = self.__dict__.get("_fit_timer")
        if timer is None:
            timer = self._fit_timer = QTimer(self, singleShot=True)
            timer.timeout.connect(self.fit_plots_dock)
        timer.start(delay_ms)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_plots_soon()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.fit_plots_soon()

    def event(self, event) -> bool:
        """A drag of the separator between the canvas and the plots makes the height the user's."""
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            self._press_sizes = self._dock_sizes()
        handled = super().event(event)
        if kind == QEvent.Type.MouseButtonRelease and self._press_sizes is not None:
            if any(abs(a - b) > 2 for a, b in zip(self._dock_sizes(), self._press_sizes)):
                self._plots_by_hand = True
            self._press_sizes = None
        return handled

    def _dock_sizes(self) -> tuple[int, int]:
        return self.docks["plots"].height(), self.docks["notes"].width()
