"""The ScaleLab main window: palette, canvas, inspector, plots and lesson notes."""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

import simulation
from simulation.document import Document
from simulation.fileformat import FILE_SUFFIX

from . import actions as acts
from . import export
from .controller import DocumentController
from .file_actions import FileManager
from .goals_panel import GoalsPanel
from .inspector import Inspector
from .notes import NotesPanel
from .run_controller import RunController
from .window_layout import WindowLayout


class MainWindow(WindowLayout, QMainWindow):
    """One window, one document."""

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from .canvas import CanvasView
        from .palette import PaletteWidget
        self.setObjectName("mainWindow")
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and screen.width() > 800 and (screen.width() <= 1440 or screen.height() <= 900):
            self.resize(screen.size())      # a projector or a small laptop: every pixel (maximized below)
            self.setWindowState(Qt.WindowState.WindowMaximized)
        elif screen is not None and screen.width() > 800:
            self.resize(min(1600, int(screen.width() * 0.92)), min(1000, int(screen.height() * 0.92)))
        else:
            self.resize(1400, 900)
        self.controller = DocumentController(document or Document(), self)
        self.run = RunController(self.controller, self)
        self.files = FileManager(self, self.controller)

        self.canvas = CanvasView(self.controller)
        self.canvas.setObjectName("canvas")
        self.canvas.setMinimumSize(320, 200)     # usable on a small screen (the docks give way)
        self.setCentralWidget(self.canvas)
        self.palette = PaletteWidget()
        self.inspector = Inspector(self.controller)
        self._plots = None                     # built just after the window shows (pyqtgraph is slow to import)
        self._selected: list[str] = []
        self.other_windows: list[MainWindow] = []      # restored sessions beyond the first
        self._events_timer = QTimer(self, singleShot=True, interval=0)
        self._events_timer.timeout.connect(self._update_event_markers)
        placeholder = QLabel("Loading plots…")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notes = NotesPanel(self.controller)
        self.docks: dict[str, QDockWidget] = {}
        self._dock("palette", "Components", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("inspector", "Inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("plots", "Plots", placeholder, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("notes", "Lesson notes", self.notes, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.docks["plots"], self.docks["notes"], Qt.Orientation.Horizontal)
        self.goals = GoalsPanel(self.controller, self.run)     # a graded challenge's goals, beside the notes
        self._dock("goals", "Goals", self.goals, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["notes"], self.docks["goals"])
        self.resizeDocks([self.docks["plots"], self.docks["notes"]], [1000, 380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["plots"]], [self._plots_height()], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["palette"], self.docks["inspector"]], [150, 320], Qt.Orientation.Horizontal)
        self._default_state = self.saveState()

        acts.build(self)
        from .presenter import Presenter     # F11, Ctrl+Shift+= / −: View menu
        self.presenter = Presenter(self)
        self.view_menu.addSeparator()
        self.view_menu.addActions(self.presenter.actions())
        from . import compare_menu   # File → Compare, Tools → Load test…
        compare_menu.install(self)
        from . import trace_view   # Simulation → Follow requests, the Requests dock
        trace_view.install(self)
        for dock in self.docks.values():
            self.panels_menu.addAction(dock.toggleViewAction())
        self.time_label = QLabel("t = 0.0 s · stopped")
        self.time_label.setObjectName("simTime")
        self.statusBar().addPermanentWidget(self.time_label)
        self.setAcceptDrops(True)

        self.palette.addRequested.connect(self._add_from_palette)
        self.canvas.selectionChangedIds.connect(self._selection_changed)
        self.canvas.failRequested.connect(self.run.fail)
        self.canvas.recoverRequested.connect(self.run.recover)
        self.canvas.failReplicaRequested.connect(lambda n, k: self.run.fail(n, k))
        self.canvas.recoverReplicaRequested.connect(lambda n, k: self.run.recover(n, k))
        self.canvas.shardFailRequested.connect(self.run.fail)
        self.canvas.shardRecoverRequested.connect(self.run.recover)
        self.canvas.propertiesRequested.connect(self._show_properties)
        self.canvas.connectionRefused.connect(lambda why: self.statusBar().showMessage(f"Not connected: {why}", 6000))
        self.run.frame.connect(self._frame)
        self.run.stateChanged.connect(self._run_state)
        self.run.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.run.errorOccurred.connect(self._run_error)
        self.run.resetDone.connect(self._reset_done)
        self.files.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.controller.editRefused.connect(lambda text: self.statusBar().showMessage(text, 10000))
        from . import status_messages   # refusals go once something succeeds
        status_messages.install(self)
        self.files.pathChanged.connect(self._update_title)
        self.files.dirtyChanged.connect(self._update_modified)
        self.controller.undo_stack.cleanChanged.connect(self._update_modified)
        self.controller.documentReplaced.connect(self._document_replaced)
        self.controller.settingsChanged.connect(self._time_span)
        self.controller.eventsChanged.connect(self._events_changed)
        for sig in (self.controller.nodeAdded, self.controller.nodeRemoved):
            sig.connect(self._labels_changed)
        self.controller.nodeChanged.connect(   # a database's shards are curves of their own
            lambda i, what: (what == "label" or (what == "params" and self.controller.document.kind(i) == "database"))
            and self._labels_changed())
        self._labels_changed()
        self._update_title()
        self.restore_settings()
        self.presenter.restore()
        self.goals.visibilityWanted.connect(self._show_goals)
        self._show_goals(bool(self.controller.document.goals))

    @property
    def plots(self):
        """The plots panel (created on first use)."""
        if self._plots is None:
            from .plots import PlotsPanel
            self._plots = PlotsPanel()
            self.docks["plots"].setWidget(self._plots)
            self._plots.attach_run(self.run)     # manual fail/recover markers, exports to the time reached
            self._labels_changed()
            self._time_span()
            self._plots.highlight(self._selected)
            self._events_changed()
            if self.presenter.scale != 1.0:
                self._plots.set_scale(self.presenter.scale)
        return self._plots

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._plots is None:
            QTimer.singleShot(80, self, self._build_plots)   # after the first frame is on screen

    def _build_plots(self) -> None:
        self.plots  # noqa: B018 - the property builds the panel

    def _events_changed(self, *args) -> None:
        """Update the plots' event markers once after a burst of changes."""
        self._events_timer.start()

    def _update_event_markers(self) -> None:
        if self._plots is not None:
            from .events_editor import describe
            doc = self.controller.document
            events = doc.events
            self._plots.set_events([ev.at_s for ev in events],
                                   lambda i: describe(doc, events[i]) if i < len(events) else "")

    def _time_span(self) -> None:
        if self._plots is not None:
            self._plots.set_time_span(self.controller.document.settings["duration_s"])

    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{name}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    # ----- settings --------------------------------------------------------------------
    def restore_settings(self) -> None:
        s = QSettings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def save_settings(self) -> None:
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())

    def reset_layout(self) -> None:
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.show()
        self._show_goals(bool(self.controller.document.goals))
        self.fit_plots_dock(by_hand_too=True)

    def _show_goals(self, wanted: bool) -> None:
        """The Goals panel is there only for a document with goals (raised over the notes)."""
        self.docks["goals"].setVisible(wanted)
        if wanted:
            self.docks["goals"].raise_()

    # ----- files -----------------------------------------------------------------------
    def file_new(self) -> None:
        self.files.new()

    def file_open(self) -> None:
        self.files.open_dialog()

    def open_file(self, path: str | Path) -> bool:
        return self.files.open_path(path)

    def restore_sessions(self, into_this_window: bool = True) -> bool:
        """Offer crashed sessions' work; lessons beyond the first open in windows of their own.
        True if one was restored into this window."""
        return self.files.offer_recovery(into_this_window, self._restore_in_new_window)

    def _restore_in_new_window(self, entry) -> bool:
        window = MainWindow()
        self.other_windows.append(window)
        window.show()
        return window.files.restore(entry)

    def file_save(self) -> bool:
        return self.files.save()

    def file_save_as(self) -> bool:
        return self.files.save_as()

    def fill_recent_menu(self) -> None:
        acts.fill_recent(self.recent_menu, self.files.recent_files(), self.open_file, self.files.clear_recent)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.files.name}[*]")     # the desktop adds the application's name
        self._update_modified()

    def _update_modified(self, *args) -> None:
        self.setWindowModified(self.files.is_modified())

    def _document_replaced(self) -> None:
        if self._plots is not None:
            self._plots.clear()     # no curve, crosshair or y range of the previous document
        self._labels_changed()
        self._events_changed()
        self._time_span()
        QTimer.singleShot(0, self.canvas, self.canvas.fit_to_view)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.files.maybe_save():
            event.ignore()
            return
        self.run.reset()
        self.save_settings()
        self.files.remove_recovery()
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self._dropped_file(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        path = self._dropped_file(event)
        if path:
            event.acceptProposedAction()
            QTimer.singleShot(0, self, lambda: self.open_file(path))

    @staticmethod
    def _dropped_file(event) -> str:
        mime = event.mimeData()
        for url in (mime.urls() if mime.hasUrls() else []):
            if url.isLocalFile() and url.toLocalFile().lower().endswith((FILE_SUFFIX, ".png")):  # PNG: its lesson
                return url.toLocalFile()
        return ""

    # ----- canvas, inspector, plots ----------------------------------------------------
    def _add_from_palette(self, kind: str) -> None:
        centre = self.canvas.mapToScene(self.canvas.viewport().rect().center())
        node_id = self.controller.add_node(kind, round(centre.x() / 20) * 20, round(centre.y() / 20) * 20)
        self.canvas.select_ids([node_id])

    def _selection_changed(self, ids: list) -> None:
        self.inspector.set_selection(list(ids))
        self._selected = list(ids)
        if self._plots is not None:
            self._plots.highlight(self._selected)

    def _show_properties(self, node_id: str) -> None:
        self.canvas.select_ids([node_id])
        self.inspector.set_selection([node_id])
        self.docks["inspector"].show()
        self.docks["inspector"].raise_()

    def _labels_changed(self, *args) -> None:
        if self._plots is not None:
            from .plots import node_labels
            self._plots.set_node_labels(node_labels(self.controller.document))
            self._events_changed()

    # ----- running ---------------------------------------------------------------------
    def _frame(self) -> None:
        sim = self.run.sim
        if sim is not None:
            try:
                self.canvas.set_live_state(sim.node_states(), sim.edge_flows())
                self.plots.refresh(sim.metrics)
                self._totals = sim.totals()
            except Exception as err:  # noqa: BLE001 - a drawing problem must not stop the run
                self.statusBar().showMessage(f"Could not draw the live state: {type(err).__name__}: {err}", 8000)
        else:
            self._totals = None
        self._update_time()

    def _update_time(self) -> None:
        speed = self.speed_box.currentText()
        state = {"running": f"running {speed}", "paused": "paused", "stopped": "stopped"}[self.run.state]
        text = f"t = {self.run.now:.1f} s · {state}"
        totals = getattr(self, "_totals", None) if self.run.sim is not None else None
        if totals and totals.get("arrived"):
            done = totals["served"] + totals["failed"]
            share = 100.0 * totals["served"] / done if done else 100.0
            p95 = totals.get("p95_ms")
            p95_text = f"{p95:.0f} ms" if isinstance(p95, (int, float)) and math.isfinite(p95) else "–"
            extra = "".join(f" · {label} {totals[key]:,}" for key, label in
                            (("sessions_lost", "sessions lost"), ("forged_accepted", "forged cookies accepted"),
                             ("forged_rejected", "forged cookies refused"), ("stale_reads", "stale reads"),
                             ("write_conflicts", "write conflicts"), ("id_collisions", "id collisions"))
                            if totals.get(key))
            text = f"served {share:.1f}% · failed {totals['failed']:,} · p95 {p95_text}{extra}   |   " + text
        self.time_label.setText(text)
        self.time_label.setToolTip("Since the start of the run: share of finished requests that were served, "
                                   "failed requests, 95th percentile latency of served requests.")

    def _run_state(self, state: str) -> None:
        acts.set_running(self, state == "running")
        self._update_time()

    def _reset_done(self) -> None:
        self.canvas.set_live_state(None, None)
        if self._plots is not None:
            self._plots.clear()
        self._time_span()
        self._update_time()

    def _run_error(self, text: str) -> None:
        QMessageBox.warning(self, "Cannot run", text)

    # ----- export ----------------------------------------------------------------------
    def _ask_path(self, title: str, suffix: str, what: str) -> Path | None:
        stem = Path(self.files.name).stem
        start = str((self.files.path.parent if self.files.path else Path.home()) / f"{stem}{suffix}")
        filename, _ = QFileDialog.getSaveFileName(self, title, start, f"{what} (*{suffix})")
        if not filename:
            return None
        path = Path(filename)
        return path if path.suffix.lower() == suffix else path.with_name(path.name + suffix)

    def _exported(self, func, path: Path | None, *args) -> None:
        if path is None:
            return
        try:
            func(*args, path)
        except OSError as err:
            QMessageBox.critical(self, "Export failed", f"Could not write {path}:\n\n{err}")
            return
        self.statusBar().showMessage(f"Exported {path}", 6000)

    def export_canvas(self, transparent: bool = False) -> None:
        path = self._ask_path("Export canvas as PNG", ".png", "PNG images")
        self._exported(lambda p: export.export_canvas_png(self.canvas, p, transparent=transparent,
                                                          document=self.controller.document), path)

    def export_svg(self) -> None:
        self._exported(lambda p: export.export_canvas_svg(self.canvas, p),
                       self._ask_path("Export canvas as SVG", ".svg", "SVG images"))

    def export_plots(self) -> None:
        self._exported(lambda p: export.export_plots_png(self.plots, p, document=self.controller.document),
                       self._ask_path("Export plots as PNG", ".png", "PNG images"))

    def export_snapshot(self) -> None:
        title = self.controller.document.meta.get("title") or Path(self.files.name).stem
        self._exported(lambda p: export.export_snapshot_png(title, self.canvas, self.plots, p,
                                                            with_plots=self.plots.has_data(),
                                                            document=self.controller.document),
                       self._ask_path("Export lesson snapshot", ".png", "PNG images"))

    def about(self) -> None:
        QMessageBox.about(
            self, "About ScaleLab",
            f"<h3>ScaleLab {simulation.__version__}</h3>"
            "<p>Learn and teach how web applications scale: build a topology of clients, load balancers, "
            "servers, databases and caches, run it, break it, and watch the plots.</p>"
            "<p>Python, PySide6, pyqtgraph, numpy and networkx. MIT licence.</p>")
