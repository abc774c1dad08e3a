"""The plots panel's size: one presenter scale for titles, ticks, legends and lines, and a
grid that reflows (three columns, two or one) and scrolls rather than squash a plot below
a readable size. Mixed into :class:`designer.plots.PlotsPanel`."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QFont

MIN_PLOT_W, MIN_PLOT_H = 230, 205   # a plot's least size at scale 1: its data area stays >= ~100 px tall


class IntegerAxis(pg.AxisItem):
    """An axis for counts: ticks on whole numbers only (never 2.6, 2.8, …)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802,N803 - pyqtgraph API
        return [(max(float(step), 1.0), offset) for step, offset in super().tickSpacing(minVal, maxVal, size)]


class AdaptiveLayout:
    """Presenter scale and reflow for a panel with ``plots``, ``graphics`` and ``scroll``."""

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
                axis.setLabel(**{**axis.labelStyle, "font-size": f"{8 * self.scale:g}pt"})
            plot.getAxis("left").setWidth(int(46 * self.scale))
            plot.legend.set_text_size(8.0 * self.scale)
        self.event_labels.set_scale(self.scale)
        self._restyle_fixed()
        self._restyle_util()
        self._columns = 0
        self._arrange()

    def _arrange(self) -> None:
        """Two rows of plots when the panel is wide enough, else a column; never below the
        least size (the scroll area scrolls instead)."""
        width = max(self.scroll.viewport().width(), 1)
        titles = max(plot.titleLabel.item.boundingRect().width() for plot in self.plots.values())
        need = max(MIN_PLOT_W * self.scale, titles + 12 * self.scale)     # a title never runs off its plot
        columns = 3 if width >= 3 * need else 2 if width >= 2 * need else 1
        if columns != self._columns:
            self._columns = columns
            # One column per plot (no spans): plots stacked in a column share their time axis's x.
            grid = {name: (k // columns, k % columns, 1) for k, name in enumerate(self.plots)}
            layout = self.graphics.ci.layout
            for plot in self.plots.values():
                layout.removeItem(plot)
            for name, (row, col, span) in grid.items():
                layout.addItem(self.plots[name], row, col, 1, span)
            rows = 1 + max(r for r, _, _ in grid.values())
            for r in range(layout.rowCount()):
                layout.setRowStretchFactor(r, 1 if r < rows else 0)
            self._rows = rows
        self.graphics.setMinimumHeight(int(self._rows * MIN_PLOT_H * self.scale))

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
