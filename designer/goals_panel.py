"""The Goals panel of a graded challenge: each goal of the file with ✓ / ✗, target and measured value.

Goals are authored in the file (``simulation/goals.py``); this panel only shows them.
Before a run it lists them unchecked ("Run the simulation to check the goals"). When
a run reaches its end they are measured on it (``simulation/grading.py``); **Check
goals** grades the document now with a run of its own from the start, like
``scalelab grade``, leaving a live run alone. Measuring
``survives_any_single_failure`` runs the engine twice per machine: those runs go to
worker processes, one per core (``busy.worker_processes``), and Check goals' own run to a
worker thread, behind ``busy.py``'s progress dialog, so the window never freezes; Cancel
stops the runs and leaves the goal "not checked". An edit of the document
marks the results as out of date; a document without goals hides the panel
(``visibilityWanted``).
"""
from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from simulation.fileformat import dumps
from simulation.grading import GoalResult, evaluate, not_checked, survival, survival_runs

MET = QColor(30, 130, 50)
MISSED = QColor(190, 30, 30)
PENDING = QColor(120, 120, 120)
BEFORE_RUN = "Run the simulation to check the goals (or press Check goals)."


class GoalsPanel(QWidget):
    """Lists the controller's document's goals; measures them when ``run`` reaches its end."""

    visibilityWanted = Signal(bool)     # the document has goals (show the panel) or not (hide it)
    checked = Signal()                  # new results are shown

    def __init__(self, controller, run, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("goalsPanel")
        self.controller, self.run = controller, run
        self.results: list[GoalResult] = []
        self.stale = False
        self._losses: dict[tuple[str, int, float], Any] = {}   # (document text, seed, seconds) -> survival()
        self.status = QLabel(BEFORE_RUN)
        self.status.setObjectName("goalsStatus")
        self.status.setWordWrap(True)
        self.list = QWidget()                 # one row per goal: a mark and a wrapped text
        self.list.setObjectName("goalsList")
        self._rows = QVBoxLayout(self.list)
        self._rows.setContentsMargins(2, 2, 2, 2)
        self._rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list)
        self.check_button = QPushButton("Check goals")
        self.check_button.setObjectName("checkGoals")
        self.check_button.setToolTip("Run this topology from the start, without a display, and check every goal "
                                     "(like `scalelab grade`)")
        self.check_button.clicked.connect(self.check_now)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.check_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(scroll, 1)

        controller.documentReplaced.connect(self._document_replaced)
        for sig in (controller.nodeAdded, controller.nodeRemoved, controller.edgeAdded, controller.edgeRemoved,
                    controller.settingsChanged, controller.eventsChanged):
            sig.connect(self._edited)
        controller.nodeChanged.connect(lambda node_id, what: what != "position" and self._edited())
        run.finished.connect(lambda: QTimer.singleShot(0, self, self.check_finished_run))
        self._document_replaced()

    # ----- what is shown -------------------------------------------------------------------
    @property
    def goals(self) -> list:
        return self.controller.document.goals

    def rows(self) -> list[tuple[str, str, str]]:
        """(mark, goal, measured) of every row, as a user reads them."""
        return [(mark.text(), goal.text(), measured.text()) for mark, goal, measured in self._labels]

    def _show(self, results: list[GoalResult] | None) -> None:
        while self._rows.count() > 1:           # all but the final stretch
            item = self._rows.takeAt(0)
            row = item.widget()
            if row is not None:
                row.hide()                          # gone at once, not at the next turn of the event loop
                row.deleteLater()
        self._labels: list[tuple[QLabel, QLabel, QLabel]] = []
        shown = results if results is not None else not_checked(self.goals, "—")
        for i, r in enumerate(shown):
            colour = PENDING if results is None or r.met is None else MET if r.met else MISSED
            mark = QLabel("–" if results is None else r.mark)
            mark.setStyleSheet(f"color: {colour.name()}; font-weight: bold; font-size: 14pt;")
            mark.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            mark.setFixedWidth(22)
            goal = QLabel(f"{r.title} {r.target}".strip())
            goal.setWordWrap(True)
            goal.setToolTip(r.goal.spec.help)
            measured = QLabel(r.measured_text if results is not None else "not measured yet")
            measured.setWordWrap(True)
            measured.setStyleSheet(f"color: {colour.name()};")
            measured.setToolTip(r.text if results is not None else BEFORE_RUN)
            text = QVBoxLayout()
            text.setSpacing(0)
            text.addWidget(goal)
            text.addWidget(measured)
            row = QWidget()
            row.setObjectName(f"goal{i}")
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 2, 0, 2)
            line.addWidget(mark)
            line.addLayout(text, 1)
            self._rows.insertWidget(self._rows.count() - 1, row)
            self._labels.append((mark, goal, measured))

    def _document_replaced(self) -> None:
        self.results, self.stale = [], False
        self.status.setText(BEFORE_RUN)
        self._show(None)
        self.visibilityWanted.emit(bool(self.goals))

    def _edited(self, *args: Any) -> None:
        if self.results and not self.stale:
            self.stale = True
            self.status.setText("The topology changed since these results: run it again (or press Check goals).")

    def _set_results(self, results: list[GoalResult], how: str) -> None:
        self.results, self.stale = results, False
        met = sum(bool(r.met) for r in results)
        verdict = ("All goals met — well done!" if met == len(results)
                   else f"{met} of {len(results)} goals met.")
        self.status.setText(f"{verdict} ({how})")
        self._show(results)
        self.checked.emit()

    # ----- measuring -----------------------------------------------------------------------
    def check_finished_run(self) -> None:
        """Measure the goals on the live run that just reached its end."""
        sim = self.run.sim
        if not self.goals or sim is None:
            return
        doc = self.controller.document
        losses = self._survival(doc, int(sim.seed))
        results = evaluate(self.goals, doc, sim, losses=losses)
        self._set_results(results, f"measured on the run that ended at t = {sim.now:.0f} s")

    def check_now(self) -> None:
        """Grade the document with a run of its own, from the start to its duration."""
        from designer.busy import Cancelled, prepare_workers, run_in_background
        if not self.goals:
            return
        if any(g.metric == "survives_any_single_failure" for g in self.goals):
            prepare_workers()            # the failure runs' workers start while this run goes on
        if self.run.running:
            self.run.pause()
        doc = self.controller.document.copy()
        duration = float(doc.settings["duration_s"])

        def simulate() -> Any:
            from simulation.engine import Simulation
            sim = Simulation(doc, duration_s=duration)
            sim.advance(duration)
            return sim

        try:
            sim = run_in_background(self.window(), "Checking the goals",
                                    f"Simulating {duration:g} s of this topology…", simulate)
        except Cancelled:
            self.status.setText("Checking the goals was cancelled.")
            return
        except ValueError as err:       # the engine refuses the topology (SimulationError)
            self.status.setText(f"Cannot run this topology: {err}")
            return
        losses = self._survival(doc, int(sim.seed))
        results = evaluate(self.goals, doc, sim, losses=losses)
        self._set_results(results, f"a run of its own: {duration:g} s, seed {sim.seed}")

    def _survival(self, doc, seed: int) -> dict[float, Any]:
        """What failing each machine loses, per ``seconds`` of the goals that need it: measured in
        worker processes (one per core) behind a progress dialog, remembered per document text.
        A cancelled one is None."""
        from designer.busy import Cancelled, prepare_workers, run_in_background, worker_processes
        from simulation.parallel import Cancelled as RunsCancelled
        wanted = sorted({g.run_seconds for g in self.goals if g.metric == "survives_any_single_failure"})
        if not wanted:
            return {}
        prepare_workers()
        text = dumps(doc)
        out: dict[float, Any] = {}
        for seconds in wanted:
            key = (text, seed, seconds)
            if key not in self._losses:
                copy = doc.copy()
                runs = survival_runs(copy)
                share, stop = [0.0], threading.Event()

                def progress(done: int, total: int) -> None:
                    share[0] = done / total if total else 1.0

                try:
                    self._losses[key] = run_in_background(
                        self.window(), "Checking the goals",
                        f"Failing each machine in turn ({runs} runs of {seconds:g} s)…",
                        survival, copy, seconds, seed, progress, worker_processes(runs), stop.is_set,
                        show_after_s=0.2, progress=lambda: share[0], on_cancel=stop.set)
                except (Cancelled, RunsCancelled):
                    stop.set()                   # the worker processes stop within 0.1 s
                    out[seconds] = None
                    continue
            out[seconds] = self._losses[key]
        return out
