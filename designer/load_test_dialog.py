"""Tools → Load test…: run the lesson at a range of request rates of one client and plot
throughput and p95 latency against the offered load, with the knee marked.

The sweep (``simulation/sweep.py``) runs its rates in worker processes, one per core
(``simulation/parallel.py``), driven by a thread that only waits on them: the simulations
never share the window's GIL, so the window keeps answering however busy the sweep is
(a simulation on a thread of this process would take the GIL from every repaint). A 10 Hz
timer on the GUI thread moves the progress bar and adds each finished point, in order, to
the plots and the table. Cancel stops the workers within 0.1 s and keeps the points already
shown. With one core, or in the desktop bundle, the rates run one after the other on the
thread itself. The knee rule is the command line's (``sweep.KNEE_RULE``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QApplication, QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from designer.busy import worker_processes
from simulation import sweep as sweeping
from simulation.document import Document
from simulation.outputs import write_bytes
from simulation.params import _fmt as fmt_number
from simulation.variant_run import Cancelled


POLL_MS = 100
KNEE_COLOUR = "#d62728"
QUIT_WAIT_S = 5.0      # at most this long for a cancelled sweep's workers to stop when the app quits
COLUMNS = ("rate_rps", "offered/s", "served/s", "p50 ms", "p95 ms", "p99 ms", "failed", "failed %")


class LoadTestDialog(QDialog):
    """Pick a client and a rate range, run the sweep in the background, see the knee."""

    def __init__(self, document: Document, parent: QWidget | None = None, name: str = "lesson") -> None:
        super().__init__(parent)
        self.setObjectName("loadTestDialog")
        self.setWindowTitle("Load test")
        self.resize(900, 700)
        self.document = document.copy()          # what the sweep reads: the canvas as it was
        self.name = name
        self.vary: sweeping.Vary | None = None
        self.points: list[sweeping.Point] = []
        self.knee: sweeping.Knee | None = None
        self._new: list[sweeping.Point] = []     # finished on the worker, not yet shown
        self._lock = threading.Lock()
        self._done_share = 0.0
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._outcome: dict[str, Any] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.destroyed.connect(self._stop.set)     # closed with its window: the sweep stops too
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._stop_and_wait)   # (else the exit waits for the worker processes)
        self._build()

    # ----- widgets ---------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.client = QComboBox(self)
        self.client.setObjectName("client")
        doc = self.document
        for node_id in doc.node_ids():
            if doc.kind(node_id) == "client":
                self.client.addItem(f"{doc.node(node_id).label or node_id} ({node_id})", node_id)
        self.client.currentIndexChanged.connect(self._client_changed)
        form.addRow("Client", self.client)
        self.start = self._number("start", "Lowest rate of the sweep (req/s)")
        self.stop = self._number("stop", "Highest rate of the sweep (req/s)")
        self.steps = QSpinBox(self)
        self.steps.setObjectName("steps")
        self.steps.setRange(2, sweeping.MAX_VALUES)
        self.steps.setValue(10)
        self.steps.setToolTip("How many rates, evenly spaced from the lowest to the highest")
        rates = QHBoxLayout()
        for text, widget in (("from", self.start), ("to", self.stop), ("in", self.steps)):
            rates.addWidget(QLabel(text))
            rates.addWidget(widget)
        rates.addWidget(QLabel("steps"))
        form.addRow("Request rate", rates)
        self.duration = QDoubleSpinBox(self)
        self.duration.setObjectName("duration")
        self.duration.setRange(1, 86400)
        self.duration.setDecimals(0)
        self.duration.setSuffix(" s")
        self.duration.setValue(min(60.0, float(doc.settings["duration_s"])))
        self.duration.setToolTip("Simulated seconds at each rate (the same seed each time)")
        form.addRow("Each run", self.duration)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run", self)
        self.run_button.setObjectName("runLoadTest")
        self.run_button.clicked.connect(self.start_sweep)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelLoadTest")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setObjectName("exportLoadTest")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_csv)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("loadTestProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        for w in (self.run_button, self.cancel_button, self.progress, self.export_button):
            buttons.addWidget(w, 1 if w is self.progress else 0)
        layout.addLayout(buttons)
        self.status = QLabel(f"Knee: {sweeping.KNEE_RULE}.", self)
        self.status.setObjectName("loadTestStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        split = QSplitter(Qt.Orientation.Vertical, self)
        self.graphics = pg.GraphicsLayoutWidget(split)
        self.graphics.setMinimumHeight(240)
        self.throughput_plot = self._plot(0, "Throughput", "served req/s")
        self.p95_plot = self._plot(1, "p95 latency", "ms")
        self.ideal = self.throughput_plot.plot([], [], pen=pg.mkPen("#999", style=Qt.PenStyle.DotLine))
        self.served_curve = self.throughput_plot.plot([], [], pen=pg.mkPen("#2ca02c", width=2), symbol="o",
                                                      symbolSize=6, symbolBrush="#2ca02c")
        self.p95_curve = self.p95_plot.plot([], [], pen=pg.mkPen("#ff7f0e", width=2), symbol="o",
                                            symbolSize=6, symbolBrush="#ff7f0e")
        self.knee_lines = []
        for plot in (self.throughput_plot, self.p95_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(KNEE_COLOUR, width=1.5,
                                                                         style=Qt.PenStyle.DashLine))
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self.knee_lines.append(line)
        self.knee_label = pg.TextItem("", color=KNEE_COLOUR, anchor=(0, 0))
        self.knee_label.hide()
        self.p95_plot.addItem(self.knee_label, ignoreBounds=True)
        self.table = QTableWidget(0, len(COLUMNS), split)
        self.table.setObjectName("loadTestTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(split, 1)
        self._client_changed()

    def _number(self, name: str, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox(self)
        box.setObjectName(name)
        box.setRange(0, 10_000_000)
        box.setDecimals(1)
        box.setToolTip(tip)
        return box

    def _plot(self, col: int, title: str, unit: str) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=0, col=col)
        plot.setTitle(f"<b>{title}</b>", size="9pt")
        plot.setLabel("left", unit)
        plot.setLabel("bottom", "offered load", units="req/s")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        return plot

    def _client_changed(self, *args: Any) -> None:
        node_id = self.client.currentData()
        if node_id is None:
            self.run_button.setEnabled(False)
            self.status.setText("This lesson has no client: add one to run a load test.")
            return
        rate = float(self.document.param(node_id, "rate_rps")) or 100.0
        self.start.setValue(round(0.1 * rate, 1))
        self.stop.setValue(round(2.0 * rate, 1))

    # ----- running ---------------------------------------------------------------------
    def values(self) -> tuple[float, ...]:
        n = self.steps.value()
        # three significant digits: 74.7 req/s, not 74.6667 (the ends are kept as typed)
        inner = [float(f"{v:.3g}") for v in np.linspace(self.start.value(), self.stop.value(), n)[1:-1]]
        return tuple(dict.fromkeys([self.start.value(), *inner, self.stop.value()]))

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start_sweep(self) -> bool:
        if self.running or self.client.currentData() is None:
            return False
        node_id = self.client.currentData()
        values = self.values()
        text = f"{node_id}.rate_rps={fmt_number(values[0])}…{fmt_number(values[-1])}"
        try:
            vary = sweeping.resolve(self.document, sweeping.Range(text, node_id, "rate_rps", values))
        except sweeping.VaryError as err:
            QMessageBox.warning(self, "Cannot run the load test", str(err))
            return False
        self.vary, self.points, self.knee = vary, [], None
        self._new, self._done_share, self._outcome = [], 0.0, {}
        self._stop.clear()
        self._clear_plots()
        seed, duration = int(self.document.settings["seed"]), float(self.duration.value())
        self._worker = threading.Thread(target=self._work, args=(vary, seed, duration, worker_processes(len(values))),
                                        daemon=True,
                                        name="scalelab: load test")
        self._set_running(True)
        self.status.setText(f"Running {len(values)} rates of {duration:g} s each…")
        self._worker.start()
        self._timer.start()
        return True

    def _work(self, vary: sweeping.Vary, seed: int, duration: float, processes: int) -> None:
        """On the worker thread: no Qt here, only the lock-protected hand-over."""
        def progress(done: float, total: float) -> None:
            self._done_share = done / total if total else 1.0

        def point(p: sweeping.Point) -> None:
            with self._lock:
                self._new.append(p)

        try:
            sweeping.sweep(self.document, vary, seed, duration, progress, self._stop.is_set, point, processes)
        except Cancelled:
            self._outcome["cancelled"] = True
        except Exception as err:  # noqa: BLE001 - handed to the GUI thread, shown in a dialog
            self._outcome["error"] = err

    def cancel(self) -> None:
        self._stop.set()
        self.status.setText("Cancelling…")

    def _stop_and_wait(self) -> None:
        """The app quits: stop the sweep and let it take its worker processes down with it."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(QUIT_WAIT_S)

    def _poll(self) -> None:
        with self._lock:
            new, self._new = self._new, []
        if new:
            self.points.extend(new)
            self._show_points()
        self.progress.setValue(int(1000 * min(self._done_share, 1.0)))
        if self.running:
            return
        self._timer.stop()
        with self._lock:     # the last point may have arrived after the check above
            new, self._new = self._new, []
        if new:
            self.points.extend(new)
            self._show_points()
        self._set_running(False)
        self._finished()

    def _finished(self) -> None:
        done = len(self.points)
        if "error" in self._outcome:
            err = self._outcome["error"]
            self.status.setText(f"The load test stopped: {err}")
            QMessageBox.warning(self, "Load test failed", str(err))
        elif self._outcome.get("cancelled"):
            self.status.setText(f"Cancelled after {done} of {len(self.vary.values)} rates. "
                                + (sweeping.knee_text(self.knee, self.vary, self.points) if self.knee else ""))
        else:
            self.progress.setValue(1000)
            self.status.setText(f"{sweeping.knee_text(self.knee, self.vary, self.points)}.\n"
                                f"Knee: {sweeping.KNEE_RULE}.")
        self.export_button.setEnabled(done > 0)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(not running and bool(self.points))
        for w in (self.client, self.start, self.stop, self.steps, self.duration):
            w.setEnabled(not running)

    # ----- showing ---------------------------------------------------------------------
    def _clear_plots(self) -> None:
        for curve in (self.ideal, self.served_curve, self.p95_curve):
            curve.setData([], [])
        for line in self.knee_lines:
            line.hide()
        self.knee_label.hide()
        self.table.setRowCount(0)

    def _show_points(self) -> None:
        pts = self.points
        offered = np.array([p.offered_rps for p in pts])
        self.served_curve.setData(offered, np.array([p.throughput_rps for p in pts]))
        p95 = np.array([np.nan if p.latency("p95") is None else p.latency("p95") for p in pts])
        self.p95_curve.setData(offered, p95, connect="finite")
        self.ideal.setData([0, float(offered.max())], [0, float(offered.max())])   # served = offered
        self.knee = sweeping.find_knee(pts)
        self.table.setRowCount(len(pts))
        for i, p in enumerate(pts):
            t = p.totals

            def ms(v: float | None) -> str:
                return "—" if v is None else f"{v:,.1f}"

            cells = (fmt_number(p.value), f"{p.offered_rps:,.1f}", f"{p.throughput_rps:,.1f}", ms(p.latency("p50")),
                     ms(p.latency("p95")), ms(p.latency("p99")), f"{t['failed']:,}", f"{p.failed_share * 100:.1f}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if self.knee is not None and i == self.knee.index:
                    item.setBackground(QBrush(QColor("#fde0dc")))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        if self.knee is not None:
            x = pts[self.knee.index].offered_rps
            for line in self.knee_lines:
                line.setPos(x)
                line.show()
            self.knee_label.setText(f"knee: rate_rps = {fmt_number(self.knee.value)}")
            top = np.nanmax(p95) if np.isfinite(p95).any() else 0.0
            right_half = x > 0.5 * (float(offered.min()) + float(offered.max()))
            self.knee_label.setAnchor((1, 0) if right_half else (0, 0))     # the label stays inside the plot
            self.knee_label.setPos(x, float(top))
            self.knee_label.show()

    def knee_x(self) -> float | None:
        """Where the knee line is (offered req/s), or None when there is no knee."""
        return self.knee_lines[0].value() if self.knee_lines[0].isVisible() else None

    # ----- export ----------------------------------------------------------------------
    def export_csv(self) -> bool:
        if not self.points or self.vary is None:
            return False
        start = str(Path.home() / f"{Path(self.name).stem}-load-test.csv")
        filename, _ = QFileDialog.getSaveFileName(self, "Export load test as CSV", start, "CSV files (*.csv)")
        if not filename:
            return False
        path = Path(filename)
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        try:
            write_bytes(path, sweeping.csv_text(self.vary, self.points).encode("utf-8"))
        except OSError as err:
            QMessageBox.critical(self, "Export failed", f"Could not write {path}:\n\n{err}")
            return False
        self.status.setText(f"Exported {path}")
        return True

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: closing stops the sweep
        self._stop.set()
        self._timer.stop()
        super().done(result)

