"""Compare the lesson on the canvas (A) with another one (B), in the main window.

The flow, in a teacher's words: **File → Compare → Compare with…** picks a second
``.scalelab`` file as B (or **Keep a copy as B** freezes the canvas as it is now, so that
you can change the canvas and see what the change does). **Run comparison** runs A and B
on the same seed for the same duration (the longer of the two), each in a worker process
(one per core; their fork server starts when B is chosen), behind a progress dialog
(``busy.py``, Cancel stops the runs); then the throughput and latency plots show
A's curves as usual and B's dashed over them (legend "A: <title>", "B: <title>"), and the
*Comparison* panel lists both totals with B − A. Pressing Run afterwards replays A live
over B's dashed curves; Reset or **Stop comparing** removes them.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from simulation import compare as comparing
from simulation.document import Document
from simulation.fileformat import load
from simulation.params import FormatError
from simulation.variant_run import Cancelled as RunCancelled
from simulation.variant_run import VariantResult

from .busy import Cancelled, prepare_workers, run_in_background, worker_processes

FILE_FILTER = "ScaleLab lessons (*.scalelab);;All files (*)"
OVERLAID = {"throughput": ("offered", "served", "failed"), "latency": ("p50", "p95", "p99")}
COLUMN = {"offered": "offered_rps", "served": "served_rps", "failed": "failed_rps",
          "p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms"}


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _title(doc: Document, fallback: str) -> str:
    return str(doc.meta.get("title") or "") or fallback


class TotalsTable(QWidget):
    """The comparison's totals side by side: A, B, B − A and the relative difference."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.heading = QLabel("Compare with… (File menu) picks a second lesson; Run comparison runs both.")
        self.heading.setObjectName("compareHeading")
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.table = QTableWidget(0, 5, self)
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(["", "A", "B", "B − A", "%"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)

    def show_rows(self, heading: str, rows: list[comparing.Row]) -> None:
        self.heading.setText(heading)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            cells = (row.label.strip(), comparing.value_text(row.a, row.unit), comparing.value_text(row.b, row.unit),
                     comparing.diff_text(row), comparing.relative_text(row))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def value(self, label: str, column: int) -> str:
        """The text in the row whose first cell is ``label`` (for tests and screen readers)."""
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text() == label:
                return self.table.item(i, column).text()
        raise KeyError(label)


class CompareView(QObject):
    """Variant B, the comparison runs, B's dashed curves and the totals panel of one window."""

    def __init__(self, window: Any, actions: dict[str, QAction]) -> None:
        super().__init__(window)
        self.window = window
        self.other: Document | None = None       # B
        self.other_name = ""
        self.results: tuple[VariantResult, VariantResult] | None = None
        self.overlay: dict[str, Any] = {}        # "throughput:served" -> B's dashed curve
        self._legend: list[tuple[Any, Any]] = []  # (legend, sample item)
        self.totals = TotalsTable()
        self.dock = QDockWidget("Comparison", window)
        self.dock.setObjectName("compareDock")
        self.dock.setWidget(self.totals)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        if "notes" in getattr(window, "docks", {}):
            window.tabifyDockWidget(window.docks["notes"], self.dock)   # beside the plots, as wide as the notes
        self.dock.hide()
        self.actions = actions
        self._enable()
        window.run.resetDone.connect(self.remove_overlay)

    # ----- choosing B ------------------------------------------------------------------
    def compare_with(self, path: str | Path | None = None) -> bool:
        if path is None:
            files = self.window.files
            start = str(files.path.parent) if files.path else str(Path.home())
            path, _ = QFileDialog.getOpenFileName(self.window, "Compare with", start, FILE_FILTER)
            if not path:
                return False
        path = Path(path)
        try:
            doc = run_in_background(self.window, "Opening", f"Reading {path.name}…", load, path)
        except Cancelled:
            return False
        except (FormatError, OSError) as err:
            QMessageBox.critical(self.window, "Cannot compare", f"ScaleLab cannot open {path.name}:\n\n{err}")
            return False
        self.set_other(doc, _title(doc, path.stem))
        return True

    def keep_copy(self) -> None:
        doc = self.window.controller.document.copy()
        self.set_other(doc, f"copy of {_title(doc, Path(self.window.files.name).stem)}")

    def set_other(self, doc: Document, name: str) -> None:
        self.other, self.other_name = doc, name
        prepare_workers()                   # A and B run in two processes: their server starts now
        self.results = None
        self.remove_overlay()
        self.totals.table.setRowCount(0)
        self.totals.heading.setText(f"B: {name}. Run comparison (Ctrl+Shift+R) runs A (the canvas) and B on the "
                                    "same seed.")
        self.dock.show()
        self._enable()
        self.window.statusBar().showMessage(f"B is {name}: Run comparison runs the canvas (A) and B", 10000)

    def stop(self) -> None:
        self.other, self.other_name, self.results = None, "", None
        self.remove_overlay()
        self.dock.hide()
        self._enable()

    def _enable(self) -> None:
        for key in ("compare_run", "compare_stop"):
            self.actions[key].setEnabled(self.other is not None)

    # ----- running ---------------------------------------------------------------------
    def run_comparison(self) -> bool:
        if self.other is None:
            return False
        w = self.window
        w.run.reset()                                   # the live run and its plots make room
        doc_a = w.controller.document.copy()            # the worker reads copies, never the canvas
        doc_b = self.other.copy()
        duration = comparing.default_duration(doc_a, doc_b)
        seed = int(doc_a.settings["seed"])
        names = (f"A ({self.name_a()})", f"B ({self.other_name})")
        share = [0.0]
        stop = threading.Event()

        def progress(done: float, total: float) -> None:
            share[0] = done / total if total else 1.0

        try:
            a, b = run_in_background(w, "Comparing", f"Running A and B for {duration:g} simulated seconds…",
                                     comparing.compare, doc_a, doc_b, seed, duration, names, progress, stop.is_set,
                                     worker_processes(2), progress=lambda: share[0], on_cancel=stop.set)
        except (Cancelled, RunCancelled):
            stop.set()
            w.statusBar().showMessage("The comparison was cancelled.", 8000)
            return False
        except ValueError as err:                        # a variant the engine refuses, named
            QMessageBox.warning(w, "Cannot compare", str(err))
            return False
        self.results = (a, b)
        self.show_results(duration, seed)
        return True

    def name_a(self) -> str:
        return _title(self.window.controller.document, Path(self.window.files.name).stem)

    def show_results(self, duration: float, seed: int) -> None:
        a, b = self.results
        plots = self.window.plots
        plots.refresh(a)
        plots.set_time_span(duration)
        self.remove_overlay()
        for plot_name, keys in OVERLAID.items():
            plot = plots.plots[plot_name]
            for key in keys:
                colour = QColor(plots.curves[key].opts["pen"].color())
                pen = pg.mkPen(colour, width=1.6, style=Qt.PenStyle.DashLine)
                curve = plot.plot(b.columns["time_s"], b.columns[COLUMN[key]], pen=pen, connect="finite")
                self.overlay[f"{plot_name}:{key}"] = curve
        legend = plots.plots["throughput"].legend
        for text, style in ((f"A: {_short(self.name_a())}", Qt.PenStyle.SolidLine),
                            (f"B: {_short(self.other_name)}", Qt.PenStyle.DashLine)):
            sample = pg.PlotDataItem(pen=pg.mkPen("#333", width=1.6, style=style))
            legend.addItem(sample, text)
            self._legend.append((legend, sample))
        heading = (f"A: {self.name_a()}<br>B: {self.other_name} (dashed)<br>{duration:g} s simulated each, "
                   f"seed {seed}")
        self.totals.show_rows(heading, comparing.rows(a.totals, b.totals))
        self.dock.show()
        self.dock.raise_()
        self.window.statusBar().showMessage("Comparison done: B's curves are dashed; totals in the Comparison panel",
                                            10000)

    def remove_overlay(self) -> None:
        plots = self.window._plots
        for key, curve in self.overlay.items():
            if plots is not None:
                plots.plots[key.split(":")[0]].removeItem(curve)
        self.overlay.clear()
        for legend, sample in self._legend:
            legend.removeItem(sample)
        self._legend.clear()
