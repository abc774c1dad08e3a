"""One time axis for the stacked plots: the same time range on every plot, and, for the
plots of one column, the same x for the same time (one left-axis width for all, one
legend-cell width per column, and columns that give every data area the same width when
they fit). Mixed into :class:`designer.plots.PlotsPanel` (before ``AdaptiveLayout``)."""
from __future__ import annotations

import math
from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt

from .plot_layout import IntegerAxis
from .plot_legend import SideLegend


def natural_width(axis: pg.AxisItem) -> float:
    """The width pyqtgraph would give a left axis for its tick labels and title (its own rule)."""
    style = axis.style
    if not style["showValues"]:
        w = 0.0
    else:
        w = float(axis.textWidth if style["autoExpandTextSpace"] else style["tickTextWidth"])
        w += style["tickTextOffset"][0]
    w += max(0, style["tickLength"])
    if axis.label.isVisible():
        w += axis.label.boundingRect().height() * 0.8
    return w


class TimeAlignedAxis(pg.AxisItem):
    """A left axis that says when its tick labels need more (or less) room, so that the
    panel can give every plot the same width (:meth:`PlotsPanel.align_time_axes`)."""

    text_width_changed: Callable[[], None] | None = None

    def _updateMaxTextSize(self, x: int) -> None:  # noqa: N802 - pyqtgraph hook
        before = self.textWidth
        super()._updateMaxTextSize(x)
        if self.textWidth != before and self.text_width_changed is not None:
            self.text_width_changed()


class TimeAlignedIntegerAxis(TimeAlignedAxis, IntegerAxis):
    """Counts (whole ticks) on an aligned axis."""


class TimeAxis:
    """The panel's time range and its alignment (see the module's docstring)."""

    def _x_range_changed(self, source: pg.ViewBox, x_range: tuple) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for plot in self.plots.values():
                if plot.vb is not source:
                    plot.setXRange(*x_range, padding=0)
        finally:
            self._syncing = False

    def set_time_span(self, seconds: float) -> None:
        """Show ``0..seconds`` on the time axis (the whole run fills it from left to right)."""
        for plot in self.plots.values():
            plot.setXRange(0, max(float(seconds), 1.0), padding=0.01)
        self._default_span = tuple(self.plots["throughput"].vb.viewRange()[0])

    def shows_default_span(self) -> bool:
        """The time axis is as :meth:`set_time_span` left it (not zoomed or panned by the user)."""
        if self._default_span is None:
            return True
        lo, hi = self.plots["throughput"].vb.viewRange()[0]
        tol = 1e-6 * max(1.0, abs(self._default_span[1]))
        return abs(lo - self._default_span[0]) <= tol and abs(hi - self._default_span[1]) <= tol

    def _set_x_range(self, lo: float, hi: float, padding: float) -> None:
        for plot in self.plots.values():
            plot.setXRange(lo, hi, padding=padding)

    def _arrange(self) -> None:
        super()._arrange()
        self.align_time_axes()

    def align_time_axes(self) -> None:
        """Plots stacked in a column map a time to the same x: every left axis as wide as the
        widest one needs, every legend cell as wide as the widest legend of its column; and,
        when they fit, columns that give every plot a data area of the same width."""
        axes = [plot.getAxis("left") for plot in self.plots.values()]
        width = int(math.ceil(max(natural_width(a) for a in axes)))
        for axis in axes:
            if axis.fixedWidth != width:
                axis.setWidth(width)
        grid, columns = self.graphics.ci.layout, max(self._columns, 1)
        cells = self._grid_cells()
        stacks: dict[tuple[int, int], list[SideLegend]] = {}    # (first column, span) -> its legends
        for plot, cell in cells.items():
            stacks.setdefault(cell, []).append(plot.legend)
        for legends in stacks.values():
            reserve = max(legend.content_width for legend in legends)
            for legend in legends:
                legend.set_reserve(reserve)
        self._equal_data_widths(grid, columns, cells)

    def _equal_data_widths(self, grid, columns: int, cells: dict) -> None:
        """Columns as wide as one data area plus their own axis and legend: every plot then
        has the same seconds per pixel. A column whose title needs more gets that (the others
        share what is left, alike); where even that does not fit, the layout decides."""
        left, _, right, _ = grid.getContentsMargins()
        room = self.scroll.viewport().width() - left - right - grid.horizontalSpacing() * (columns - 1) - 2
        # What differs between columns is the legend cell (hidden, it still holds its least size).
        extra, least = [0.0] * columns, [0.0] * columns
        for plot, (c, _) in cells.items():
            if c < columns:
                extra[c] = max(extra[c], plot.legend.effectiveSizeHint(Qt.SizeHint.PreferredSize).width())
                least[c] = max(least[c], plot.minimumWidth())
        fixed: dict[int, float] = {}
        data = 0.0
        for _ in range(columns):         # at most one more column fixed per round
            free = [c for c in range(columns) if c not in fixed]
            if not free:
                break
            data = (room - sum(fixed.values()) - sum(extra[c] for c in free)) / len(free)
            over = [c for c in free if least[c] > data + extra[c]]
            if not over:
                break
            fixed.update((c, least[c]) for c in over)
        widths = [fixed.get(c, data + extra[c]) for c in range(columns)]
        fits = all(span == 1 for _, span in cells.values()) and sum(widths) <= room + 0.5 and data > 0
        for c in range(grid.columnCount()):
            grid.setColumnStretchFactor(c, 1 if c < columns else 0)
            if fits and c < columns:
                grid.setColumnFixedWidth(c, widths[c])
            else:
                grid.setColumnMinimumWidth(c, 0)
                grid.setColumnPreferredWidth(c, 0)
                grid.setColumnMaximumWidth(c, 1e6)

    def _grid_cells(self) -> dict[pg.PlotItem, tuple[int, int]]:
        """Each plot's first column in the panel's grid, and how many columns it spans."""
        grid, cells = self.graphics.ci.layout, {}
        plots = set(self.plots.values())
        for r in range(grid.rowCount()):
            for c in range(grid.columnCount()):
                item = grid.itemAt(r, c)
                if item in plots and item not in cells:
                    span = 1
                    while c + span < grid.columnCount() and grid.itemAt(r, c + span) is item:
                        span += 1
                    cells[item] = (c, span)
        return cells

    def time_to_scene_x(self) -> dict[str, tuple[float, float]]:
        """Each plot's scene x of t = 0 and of the end of the time range (for the alignment tests)."""
        end = self.plots["throughput"].vb.viewRange()[0][1]
        return {name: (plot.vb.mapViewToScene(QPointF(0.0, 0.0)).x(),
                       plot.vb.mapViewToScene(QPointF(end, 0.0)).x()) for name, plot in self.plots.items()}
