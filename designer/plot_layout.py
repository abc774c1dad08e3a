"""The plots panel's size: one presenter scale for titles, ticks, legends and lines, and a
grid that reflows to the panel. Columns follow the width (three, two or one: one plot per
cell, so the plots stacked in a column share their time axis's x, plot_time_axis.py); when
the height holds fewer rows than the grid has, the rows become pages behind tabs
("Throughput · Latency · Failures" | "Utilization · Servers up · Cost"), each row at least
its readable height, never squashed. Mixed into :class:`designer.plots.PlotsPanel`."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QTabBar

from simulation.state import CAUSE_LABELS

from .window_layout import MIN_PLOT_H, MIN_PLOT_W, least_row_height

ORDER = ("throughput", "latency", "failures", "utilization", "active", "cost")
SHORT = {"throughput": "Throughput", "latency": "Latency", "failures": "Failures",
         "utilization": "Utilization", "active": "Servers up", "cost": "Cost"}
GRIDS = {   # columns -> rows of (plot, column span)
    # three columns: the two plots with a legend beside them share the widest, last column
    3: [[("throughput", 1), ("latency", 1), ("failures", 1)], [("active", 1), ("cost", 1), ("utilization", 1)]],
    2: [[("throughput", 1), ("latency", 1)], [("failures", 1), ("utilization", 1)], [("active", 1), ("cost", 1)]],
    1: [[(name, 1)] for name in ORDER],
}


class IntegerAxis(pg.AxisItem):
    """An axis for counts: ticks on whole numbers only (never 2.6, 2.8, …)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802,N803 - pyqtgraph API
        return [(max(float(step), 1.0), offset) for step, offset in super().tickSpacing(minVal, maxVal, size)]


class AdaptiveLayout:
    """Presenter scale and reflow for a panel with ``plots``, ``graphics`` and ``scroll``."""

    _page = 0                   # the page (of rows) shown when the rows do not all fit
    _rows_per_page = 0
    _row_step = 0.0             # a row and the gap below it, in pixels
    _grid_rows: list = []

    def set_scale(self, scale: float) -> None:
        """Presenter mode: titles, tick labels, legends, event labels and lines ``scale`` × larger."""
        self.scale = float(scale)
        font = QFont()
        font.setPointSizeF(8.0 * self.scale)
        for plot in self.plots.values():
            plot.setTitle(plot.title_html, size=f"{9 * self.scale:g}pt")
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setStyle(tickFont=font)
                axis.label.setFont(font)
                axis.setLabel(axis.labelText or None, axis.labelUnits or None, axis.labelUnitPrefix or None,
                              **{**axis.labelStyle, "font-size": f"{8 * self.scale:g}pt"})   # (its text too:
                # pyqtgraph's setLabel with a style alone empties and hides the label)
            plot.getAxis("left").setWidth(int(46 * self.scale))
            plot.legend.set_text_size(8.0 * self.scale)
        self.event_labels.set_scale(self.scale)
        self._restyle_fixed()
        self._restyle_util()
        self._columns = 0
        self._arrange()

    # ----- reflow ----------------------------------------------------------------------
    def _page_tabs(self) -> QTabBar:
        tabs = getattr(self, "_tabs", None)
        if tabs is None:
            tabs = self._tabs = QTabBar(self)
            tabs.setObjectName("plotPages")
            tabs.setDocumentMode(True)
            tabs.setExpanding(False)
            tabs.setToolTip("Too little height for every plot: pick the row to show "
                            "(a taller window, or a taller plots panel, shows them all)")
            tabs.currentChanged.connect(self.show_page)
            self.scroll.verticalScrollBar().rangeChanged.connect(self._scroll_to_page)
            tabs.hide()
            self.layout().insertWidget(1, tabs)
        return tabs

    def _arrange(self) -> None:
        """Columns for the width; all rows if they fit the height at their least size, else
        pages of as many rows as fit, behind tabs (the scroll area scrolls only when not
        even one row fits)."""
        tabs = self._page_tabs()
        width = max(self.scroll.viewport().width(), 1)
        layout = self.graphics.ci.layout
        columns = next((c for c in (3, 2) if self._grid_width(GRIDS[c]) <= width), 1)
        if columns != self._columns:
            self._columns = columns
            self._grid_rows = GRIDS[columns]
            for plot in self.plots.values():
                layout.removeItem(plot)
            for row, cells in enumerate(self._grid_rows):
                col = 0
                for name, span in cells:
                    layout.addItem(self.plots[name], row, col, 1, span)
                    col += span
            for r in range(layout.rowCount()):
                layout.setRowStretchFactor(r, 1 if r < len(self._grid_rows) else 0)
            window = self.window()          # another number of rows: the window may give them another height
            if hasattr(window, "fit_plots_soon"):
                window.fit_plots_soon()
        margin, gap = layout.getContentsMargins()[1], layout.verticalSpacing()
        rows, least = len(self._grid_rows), least_row_height(self.scale)

        def fill(n: int, row: float) -> float:     # the height of n rows with their gaps and margins
            return n * row + (n - 1) * gap + 2 * margin

        height = self.scroll.viewport().height() + (tabs.height() if not tabs.isHidden() else 0)
        if height >= fill(rows, least):
            per_page, row_height = rows, least
        else:
            height -= tabs.sizeHint().height()
            per_page = max(1, min(rows - 1, int((height - 2 * margin + gap) // (least + gap))))
            # a single row may give up its presenter allowance (down to the size at 100 %) for the canvas
            row_height = max(least if per_page > 1 else MIN_PLOT_H, (height - 2 * margin - (per_page - 1) * gap) / per_page)
        self._rows_per_page, self._row_step = per_page, row_height + gap
        for r in range(rows):       # equal rows (a long legend must not squeeze its neighbours' row)
            layout.setRowMinimumHeight(r, row_height)
            layout.setRowMaximumHeight(r, row_height if per_page < rows else 1e6)
        self.graphics.setMinimumHeight(int(fill(rows, row_height) + 1))
        paged = per_page < rows
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if paged and row_height
                                               <= height + 0.5 else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        names = [" · ".join(SHORT[name] for row in self._grid_rows[k:k + per_page] for name, _ in row)
                 for k in range(0, rows, per_page)] if paged else []
        blocked = tabs.blockSignals(True)
        while tabs.count() > len(names):
            tabs.removeTab(tabs.count() - 1)
        for k, name in enumerate(names):
            if k < tabs.count():
                tabs.setTabText(k, name)
            else:
                tabs.addTab(name)
        tabs.blockSignals(blocked)
        tabs.setVisible(paged)
        if paged:
            self.show_page(min(self._page, len(names) - 1))
        else:                   # every row shows (the page is remembered for when they no longer do)
            self._scroll_to_page()

    def _least_width(self, name: str) -> float:
        """The narrowest a plot can be with all its text whole: its title, axis, data area and
        side legend (a hidden legend counts at the width of the longest name it may list)."""
        plot = self.plots[name]
        least = plot.effectiveSizeHint(Qt.SizeHint.MinimumSize).width()
        if name in ("failures", "utilization") and not plot.legend.isVisible():
            font = QFont()
            font.setPointSizeF(8.0 * self.scale)
            names = CAUSE_LABELS.values() if name == "failures" else getattr(self, "_node_labels", {}).values()
            longest = max((QFontMetricsF(font).horizontalAdvance(text[:24]) for text in names), default=0.0)
            least += longest + 40 * self.scale if longest else 0.0
        return max(least, MIN_PLOT_W * self.scale)

    def _grid_width(self, grid: list) -> float:
        """How wide the graphics must be for ``grid`` (columns are shared by the rows)."""
        layout = self.graphics.ci.layout
        margin, gap = layout.getContentsMargins()[0], layout.horizontalSpacing()
        columns = [0.0] * max(sum(span for _, span in row) for row in grid)
        for row in grid:
            col = 0
            for name, span in row:
                share = (self._least_width(name) - gap * (span - 1)) / span
                for c in range(col, col + span):
                    columns[c] = max(columns[c], share)
                col += span
        return sum(columns) + gap * (len(columns) - 1) + 2 * margin

    def show_page(self, page: int) -> None:
        """Show the ``page``-th group of rows (when they do not all fit)."""
        self._page = max(int(page), 0)
        tabs = self._page_tabs()
        if tabs.count() and tabs.currentIndex() != self._page:
            blocked = tabs.blockSignals(True)
            tabs.setCurrentIndex(self._page)
            tabs.blockSignals(blocked)
        self._scroll_to_page()

    def _scroll_to_page(self, *_args) -> None:
        """Scroll to the page's first row (again whenever the scroll range changes: the rows
        settle after the tabs and the panel do)."""
        paged = not self._page_tabs().isHidden()
        first = self._page * self._rows_per_page if paged else 0
        top = int(round(first * self._row_step + (5 if first else 0)))    # not a pixel of the row above
        self.scroll.verticalScrollBar().setValue(top)

    def page_names(self) -> list[str]:
        """The page tabs' texts (none while every plot shows)."""
        tabs = self._page_tabs()
        return [tabs.tabText(k) for k in range(tabs.count())] if not tabs.isHidden() else []

    def visible_plots(self) -> list[str]:
        """The plots whose whole data area is in view (for the layout tests)."""
        view = self.scroll.viewport()
        top = self.scroll.verticalScrollBar().value()
        shown = []
        for name, plot in self.plots.items():
            rect = plot.vb.sceneBoundingRect()
            if rect.top() >= top - 0.5 and rect.bottom() <= top + view.height() + 0.5:
                shown.append(name)
        return shown

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        QTimer.singleShot(0, self, self._arrange)     # once the scroll area has its new size too

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.scroll.viewport() and event.type() == QEvent.Type.Resize:
            self._arrange()
        return super().eventFilter(watched, event)

    def data_heights(self) -> dict[str, float]:
        """Each plot's data area height in pixels (for the layout tests)."""
        return {name: plot.vb.sceneBoundingRect().height() for name, plot in self.plots.items()}

    def highlighted_width(self, node_id: str) -> float:
        curve = self.util_curves.get(node_id)
        return curve.opts["pen"].widthF() if curve is not None else 0.0
