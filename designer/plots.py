"""Live plots (pyqtgraph): throughput, latency, failures by cause, utilization
per node and active servers, on one linked time axis, with a crosshair readout.

The plots read the engine's metric arrays (``sim.metrics``) and never recompute
them. They are refreshed on a timer by the run controller, not per engine slice:
``refresh`` calls ``setData`` on existing curves.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from simulation.state import CAUSE_LABELS, FAILURE_CAUSES

from .plot_layout import AdaptiveLayout
from .plot_legend import EventLabels, SideLegend
from .plot_events import PlotEvents
from .plot_markers import EventMarkers
from .plot_time_axis import TimeAlignedAxis, TimeAlignedIntegerAxis, TimeAxis

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

SERIES = {   # name -> (label, colour)
    "offered": ("Offered", "#1f77b4"),
    "served": ("Served", "#2ca02c"),
    "failed": ("Failed", "#d62728"),
    "p50": ("p50", "#17becf"),
    "p95": ("p95", "#ff7f0e"),
    "p99": ("p99", "#9467bd"),
    "active": ("Servers up", "#2ca02c"),
    "page_view": ("page view mean", "#333333"),
    "cost": ("Spent", "#8c564b"),
}
CAUSE_COLOURS = ("#d62728", "#ff7f0e", "#1f77b4", "#e377c2", "#7f7f7f", "#bcbd22")   # queue full red, backend down blue
NODE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")
MAX_UTIL_CURVES = 40
LINE_WIDTH = 1.2
HINT = "Press Run (Space) to fill the plots; hover a plot to read its values."


def node_labels(document: Any) -> dict[str, str]:
    """The utilization curves' labels, in order: servers, databases (each shard of a sharded
    one too, as ``<id>#<shard>``, the engine's series), caches, load balancers."""
    order = {"server": 0, "database": 1, "cache": 2, "load_balancer": 3}
    ids = sorted((i for i in document.node_ids() if document.kind(i) in order), key=lambda i: order[document.kind(i)])
    labels: dict[str, str] = {}
    for i in ids:
        labels[i] = document.node(i).label or i
        shards = int(document.params(i).get("shards", 1)) if document.kind(i) == "database" else 1
        for s in range(shards if shards > 1 else 0):
            labels[f"{i}#{s}"] = f"{labels[i]} #{s}"
    return labels


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _column(metrics: Any, name: str, n: int, missing: float = math.nan) -> np.ndarray:
    """The first ``n`` values of a metric column (``missing`` where the metrics have no such column)."""
    values = getattr(metrics, name, None)
    if values is None or len(values) < n:
        return np.full(n, missing)
    return np.asarray(values[:n], dtype=float)


def totals_text(metrics: Any, n: int) -> str:
    """The run so far in one line: money, server-hours and page views (read from the metric rows)."""
    if not n:
        return ""
    span = _column(metrics, "span_s", n, 1.0)
    usd = float(np.sum(np.nan_to_num(_column(metrics, "cost_usd", n)) * span))
    hours = float(np.sum(np.nan_to_num(_column(metrics, "cost_server_s", n)) * span)) / 3600.0
    text = f"${usd:,.2f} · {hours:,.2f} server-hours" if usd >= 0.995 else f"${usd:,.4f} · {hours:,.3f} server-hours"
    views = float(np.sum(np.nan_to_num(_column(metrics, "page_views", n)) * span))
    hits = float(np.sum(np.nan_to_num(_column(metrics, "browser_hits", n)) * span))
    if hits > 0 and views > 0:
        served = np.nan_to_num(_column(metrics, "served_rps", n)) * span
        lat = float(np.sum(np.nan_to_num(_column(metrics, "mean_ms", n)) * served))
        mean = lat / (float(served.sum()) + hits) if served.sum() + hits > 0 else math.nan
        text += (f"  |  {views:,.0f} page views · {100 * hits / views:.0f}% from the browser cache · "
                 f"page view mean {_fmt(mean)} ms")
    return text


class PlotsPanel(PlotEvents, TimeAxis, AdaptiveLayout, QWidget):
    """The plots dock's content."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plots")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.readout = QLabel(HINT, self)
        self.readout.setObjectName("plotReadout")
        self.readout.setStyleSheet("color: #333; padding: 0 4px;")
        top = QHBoxLayout()
        top.addWidget(self.readout, 1)
        self.totals_label = QLabel("", self)   # cost and page views since the start of the run
        self.totals_label.setObjectName("plotTotals")
        self.totals_label.setStyleSheet("color: #333; padding: 0 4px;")
        self.totals_label.setToolTip("Since the start of the run: dollars spent on server replicas (every replica "
                                     "that exists, booting ones included) and server-hours; page views (requests "
                                     "plus views the browser answered from its cache), the share from the browser "
                                     "cache, and their mean latency (browser hits count as 0 ms).")
        top.addWidget(self.totals_label)
        layout.addLayout(top)
        self.graphics = pg.GraphicsLayoutWidget(self)
        # Too little room for every plot at its least size: the plots scroll (never squashed).
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("plotsScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.graphics)
        self.scroll.setMinimumHeight(120)
        self.scroll.viewport().installEventFilter(self)
        layout.addWidget(self.scroll, 1)
        self.scale = 1.0
        self._columns = 0

        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.cause_curves: dict[str, pg.PlotDataItem] = {}
        self.util_curves: dict[str, pg.PlotDataItem] = {}
        self._cause_in_legend: set[str] = set()
        self._highlight: set[str] = set()
        self._node_labels: dict[str, str] = {}
        self._metrics: Any = None
        self._n = 0
        self._init_events()     # the lesson's scheduled events, and the fail/recover clicks of the run
        self._default_span: tuple[float, float] | None = None
        self._align_timer = QTimer(self, singleShot=True, interval=0)
        self._align_timer.timeout.connect(self.align_time_axes)

        self._add_plot("throughput", 0, 0, "Throughput", "req/s", ("offered", "served", "failed"))
        self._add_plot("latency", 0, 1, "Latency", "ms", ("p50", "p95", "p99", "page_view"))
        self._add_plot("failures", 0, 2, "Failures by cause", "req/s", (), colspan=2)
        self._add_plot("utilization", 1, 0, "Utilization", "%", (), colspan=2)
        self._add_plot("active", 1, 2, "Active servers", "", ("active",), axis=TimeAlignedIntegerAxis("left"))
        self._add_plot("cost", 1, 3, "Cost", "$", ("cost",))
        self._restyle_fixed()
        self.plots["utilization"].setYRange(0, 105, padding=0)
        self.plots["utilization"].enableAutoRange(axis="y", enable=False)
        self.plots["utilization"].getAxis("left").setTicks([[(v, str(v)) for v in (0, 25, 50, 75, 100)]])
        for cause, colour in zip(FAILURE_CAUSES, CAUSE_COLOURS):
            self.cause_curves[cause] = self._curve(self.plots["failures"], colour, None)
            self.cause_curves[cause].hide()        # shown (and named) once that cause happens
        # One time axis: every plot shows the same time range. (pyqtgraph's setXLink aligns
        # by screen position, which is wrong for plots of different widths.)
        self._syncing = False
        for plot in self.plots.values():
            plot.sigXRangeChanged.connect(self._x_range_changed)
        self._vlines = {}
        for name, plot in self.plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888", style=pg.QtCore.Qt.PenStyle.DashLine))
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self._vlines[name] = line
        # All scheduled events of a plot are one item (see plot_markers).
        self.event_markers: dict[str, EventMarkers] = {}
        for name, plot in self.plots.items():
            markers = EventMarkers()
            plot.addItem(markers, ignoreBounds=True)
            self.event_markers[name] = markers
        self.event_labels = EventLabels(self.plots["throughput"], self.event_markers["throughput"])
        self._arrange()
        self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)

    # ----- building --------------------------------------------------------------------
    def _add_plot(self, name: str, row: int, col: int, title: str, unit: str, series: tuple[str, ...],
                  colspan: int = 1, axis: pg.AxisItem | None = None) -> None:
        axis = axis if axis is not None else TimeAlignedAxis("left")
        axis.text_width_changed = self._align_timer.start
        plot = self.graphics.addPlot(row=row, col=col, colspan=colspan, axisItems={"left": axis})
        # Fixed series are named in the title, in their colours (a legend that hides no data).
        if series:
            keys = " ".join(f'<span style="color:{SERIES[k][1]}">■ {SERIES[k][0]}</span>' for k in series)
            plot.title_html = f"<b>{title}</b>&nbsp;&nbsp;{keys}"
        else:
            plot.title_html = f"<b>{title}</b>"
        plot.setTitle(plot.title_html, size="9pt", justify="left")
        # The title spans the data and the legend cell: a long title does not widen the data
        # area of its column beyond the others'.
        plot.layout.removeItem(plot.titleLabel)
        plot.layout.addItem(plot.titleLabel, 0, 1, 1, 3)
        plot.setLabel("left", unit)
        plot.setLabel("bottom", "simulated time", units="s")
        # No grid: it is drawn with the axes on every frame and costs ~5 ms a frame
        # (the crosshair readout gives exact values instead).
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=True, y=False)
        SideLegend(plot).content_changed = self._align_timer.start    # beside the data area, never over it
        self.plots[name] = plot
        for key in series:
            label, colour = SERIES[key]
            self.curves[key] = self._curve(plot, colour, None)

    def _curve(self, plot: pg.PlotItem, colour: str, name: str | None, width: float = LINE_WIDTH) -> pg.PlotDataItem:
        # Live curves are drawn without antialiasing (about half the cost of a frame);
        # exports switch it on (see for_export).
        curve = plot.plot([], [], pen=pg.mkPen(colour, width=width * self.scale), name=name, connect="finite",
                          autoDownsampleFactor=1.0, antialias=False)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        return curve

    # ----- data ------------------------------------------------------------------------
    def set_node_labels(self, labels: dict[str, str]) -> None:
        """Names shown in the utilization legend (node id -> label), servers first."""
        self._node_labels = dict(labels)
        for node_id in list(self.util_curves):
            if node_id not in labels:
                self._remove_util_curve(node_id)
        self._relabel_util()
        self._restyle_util()

    def _remove_util_curve(self, node_id: str) -> None:
        curve = self.util_curves.pop(node_id)
        self.plots["utilization"].legend.removeItem(curve)
        self.plots["utilization"].removeItem(curve)

    def _relabel_util(self) -> None:
        """The legend names each curve by its node's current label (renames show at once)."""
        legend = self.plots["utilization"].legend
        for sample, label in legend.items:
            node_id = next((i for i, c in self.util_curves.items() if c is sample.item), None)
            if node_id is not None and label.text != self._node_labels.get(node_id, node_id):
                label.setText(self._node_labels.get(node_id, node_id), size=legend.opts["labelTextSize"])
        legend.updateSize()

    def utilization_legend(self) -> list[str]:
        return self.plots["utilization"].legend.texts()

    def clear(self) -> None:
        """Empty every curve and forget the last run's view: no crosshair, no old y ranges,
        no utilization curves (New, Open, Reset)."""
        for curve in [*self.curves.values(), *self.cause_curves.values()]:
            curve.setData([], [])
        for node_id in list(self.util_curves):
            self._remove_util_curve(node_id)
        for line in self._vlines.values():
            line.hide()
        for name, plot in self.plots.items():
            if name == "utilization":
                continue
            plot.setYRange(0, 1, padding=0)
            plot.enableAutoRange(axis="y", enable=name != "active")
        for cause in list(self._cause_in_legend):
            self.plots["failures"].legend.removeItem(self.cause_curves[cause])
            self.cause_curves[cause].hide()
        self._cause_in_legend.clear()
        self._metrics, self._n = None, 0
        self._reached = None
        self.readout.setText(HINT)
        self.totals_label.setText("")

    def refresh(self, metrics: Any) -> None:
        """Show the engine's metric arrays (only the first ``metrics.n`` rows are valid)."""
        n = int(getattr(metrics, "n", 0) or 0)
        self._metrics = metrics
        if n == self._n and n:
            return
        self._n = n
        if n and self.readout.text() == HINT:
            self.readout.setText("Hover a plot to read its values.")
        t = np.asarray(metrics.time_s[:n], dtype=float)
        self.curves["offered"].setData(t, np.asarray(metrics.offered_rps[:n], dtype=float))
        self.curves["served"].setData(t, np.asarray(metrics.served_rps[:n], dtype=float))
        self.curves["failed"].setData(t, np.asarray(metrics.failed_rps[:n], dtype=float))
        self.curves["p50"].setData(t, np.asarray(metrics.p50_ms[:n], dtype=float))
        self.curves["p95"].setData(t, np.asarray(metrics.p95_ms[:n], dtype=float))
        self.curves["p99"].setData(t, np.asarray(metrics.p99_ms[:n], dtype=float))
        active = np.asarray(metrics.active_servers[:n], dtype=float)
        self.curves["active"].setData(t, active)
        top = float(np.nanmax(active, initial=0.0)) if n else 0.0
        self.plots["active"].setYRange(0, max(1.0, math.ceil(top)) + 0.5, padding=0)   # counts start at 0
        self.curves["page_view"].setData(t, _column(metrics, "page_view_mean_ms", n))
        spent = np.cumsum(np.nan_to_num(_column(metrics, "cost_usd", n)) * _column(metrics, "span_s", n, 1.0))
        self.curves["cost"].setData(t, spent)
        self.totals_label.setText(totals_text(metrics, n))
        legend = self.plots["failures"].legend
        for cause, curve in self.cause_curves.items():
            values = np.asarray(metrics.failed_by_cause.get(cause, np.zeros(n))[:n], dtype=float)
            curve.setData(t, values)
            if cause not in self._cause_in_legend and n and np.nanmax(values, initial=0) > 0:
                legend.addItem(curve, CAUSE_LABELS.get(cause, cause))
                self._cause_in_legend.add(cause)
                curve.show()
        util = getattr(metrics, "util", {}) or {}
        ids = [i for i in self._node_labels if i in util][:MAX_UTIL_CURVES] if self._node_labels else list(util)[:MAX_UTIL_CURVES]
        for node_id in ids:
            curve = self.util_curves.get(node_id)
            if curve is None:
                colour = NODE_COLOURS[len(self.util_curves) % len(NODE_COLOURS)]
                curve = self._curve(self.plots["utilization"], colour, self._node_labels.get(node_id, node_id))
                self.util_curves[node_id] = curve
                self._restyle_util()
            curve.setData(t, 100.0 * np.asarray(util[node_id][:n], dtype=float))

    def all_curves(self) -> list[pg.PlotDataItem]:
        return [*self.curves.values(), *self.cause_curves.values(), *self.util_curves.values()]

    def for_export(self, on: bool) -> None:
        """Ready for a picture, or back: smooth curves, a summary instead of the hover readout,
        no crosshair, and a time axis from 0 to the time the run reached (the whole duration
        is for watching a run; a picture shows what happened). A time range the user zoomed
        or panned to is kept. Markers show only what happened before that time."""
        for curve in self.all_curves():
            curve.opts["antialias"] = on
            curve.updateItems(styleUpdate=True)
        # The picture shows every plot: no scroll bar over the legends.
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if on
                                               else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        if on:
            self._size_before = self.size()
            hidden = self.graphics.minimumHeight() - self.scroll.viewport().height()
            if hidden > 0:      # scrolled plots: the picture shows all of them
                self.resize(self.width(), self.height() + hidden)
            self._readout_text = self.readout.text()
            end = self.reached() if self._n else 0.0
            self.readout.setText(f"Simulated {end:.0f} s")
            self._range_before = self.plots["throughput"].vb.viewRange()[0] if self._n else None
            if self._n and self.shows_default_span():
                self._set_x_range(0.0, max(end, 1.0), padding=0.01)
                self._markers_until = end
                self._update_markers()
        else:
            self.readout.setText(getattr(self, "_readout_text", ""))
            if getattr(self, "_size_before", None) is not None and self.size() != self._size_before:
                self.resize(self._size_before)
            self._size_before = None
            if self._markers_until is not None:
                self._markers_until = None
                self._update_markers()
            if getattr(self, "_range_before", None) is not None:
                self._set_x_range(*self._range_before, padding=0)
                self._range_before = None
        for line in self._vlines.values():
            line.setVisible(False)
        self.align_time_axes()
        # The layouts take the new widths now (the event loop could also resize the panel back).
        self.graphics.ci.layout.activate()
        for plot in self.plots.values():
            plot.layout.activate()

    def has_data(self) -> bool:
        return self._n > 0

    # ----- selection highlight ---------------------------------------------------------
    def highlight(self, ids: list[str]) -> None:
        """Emphasise the utilization curves of the selected nodes; fade the rest."""
        self._highlight = set(ids)
        self._restyle_util()

    def _restyle_util(self) -> None:
        any_selected = bool(self._highlight & set(self.util_curves))
        for i, (node_id, curve) in enumerate(self.util_curves.items()):
            colour = pg.mkColor(NODE_COLOURS[i % len(NODE_COLOURS)])
            if node_id in self._highlight:
                curve.setPen(pg.mkPen(colour, width=3.0 * self.scale))
                curve.setZValue(10)
            elif any_selected:
                colour.setAlpha(70)
                curve.setPen(pg.mkPen(colour, width=1.0 * self.scale))
                curve.setZValue(0)
            else:
                curve.setPen(pg.mkPen(colour, width=LINE_WIDTH * self.scale))
                curve.setZValue(0)

    def _restyle_fixed(self) -> None:
        for key, curve in self.curves.items():
            style = pg.QtCore.Qt.PenStyle.DashLine if key == "page_view" else pg.QtCore.Qt.PenStyle.SolidLine
            curve.setPen(pg.mkPen(SERIES[key][1], width=LINE_WIDTH * self.scale, style=style))
        for cause, colour in zip(self.cause_curves, CAUSE_COLOURS):
            self.cause_curves[cause].setPen(pg.mkPen(colour, width=LINE_WIDTH * self.scale))

    # ----- crosshair -------------------------------------------------------------------
    def _mouse_moved(self, event: tuple) -> None:
        pos = event[0]
        for name, plot in self.plots.items():
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                self.show_readout(x, name)
                return

    def show_readout(self, x: float, plot_name: str) -> None:
        """Move the crosshair to simulated time ``x`` and describe the hovered plot there."""
        for line in self._vlines.values():
            line.setPos(x)
            line.show()
        m, n = self._metrics, self._n
        if m is None or n == 0:
            self.readout.setText(f"t = {x:.1f} s")
            return
        times = np.asarray(m.time_s[:n], dtype=float)
        if x < times[0] - 1.0 or x > times[-1] + 1.0:
            self.readout.setText(f"t = {x:.0f} s · no data there yet")
            return
        i = int(np.clip(np.searchsorted(times, x), 0, n - 1))
        t = float(times[i])
        if plot_name == "latency" and n and not math.isnan(_column(m, "page_view_mean_ms", n)[i]):
            parts = [f"p50 {_fmt(m.p50_ms[i])}", f"p95 {_fmt(m.p95_ms[i])}", f"p99 {_fmt(m.p99_ms[i])} ms",
                     f"page view mean {_fmt(_column(m, 'page_view_mean_ms', n)[i])} ms"]
            self.readout.setText(f"t = {t:.0f} s · " + " · ".join(parts))
            return
        if plot_name == "throughput":
            parts = [f"offered {_fmt(m.offered_rps[i])}", f"served {_fmt(m.served_rps[i])}",
                     f"failed {_fmt(m.failed_rps[i])} req/s"]
        elif plot_name == "latency":
            parts = [f"p50 {_fmt(m.p50_ms[i])}", f"p95 {_fmt(m.p95_ms[i])}", f"p99 {_fmt(m.p99_ms[i])} ms"]
        elif plot_name == "failures":
            parts = [f"{CAUSE_LABELS.get(c, c)} {_fmt(m.failed_by_cause[c][i])} req/s" for c in FAILURE_CAUSES
                     if c in m.failed_by_cause and m.failed_by_cause[c][i] > 0] or ["no failures"]
        elif plot_name == "cost":
            spent = float(np.sum(np.nan_to_num(_column(m, "cost_usd", i + 1)) * _column(m, "span_s", i + 1, 1.0)))
            parts = [f"spent ${spent:,.4f}", f"{_fmt(_column(m, 'cost_usd', n)[i] * 3600)} $/h now"]
        elif plot_name == "utilization":
            parts = [f"{self._node_labels.get(k, k)} {100 * m.util[k][i]:.0f}%" for k in self.util_curves]
        else:
            parts = [f"servers up {_fmt(m.active_servers[i])}"]
        self.readout.setText(f"t = {t:.0f} s · " + " · ".join(parts))
