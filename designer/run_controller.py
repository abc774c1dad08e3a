"""Runs the engine in slices on a QTimer so that the window never freezes.

Each slice advances the simulation for at most ``SLICE_BUDGET_S`` of wall time, in
engine calls of about ``CALL_TARGET_S`` each: the simulated time per call is measured
and adapted (halved at once when a call is slow, doubled at most when fast), starting
from :data:`MIN_CHUNK_S`, so that even a client of 10 million requests/s answers the
event loop between short calls. Each call itself runs on a worker thread (``busy.py``)
while the event loop keeps turning, so a call that cannot be made short (an engine
window that must reach its boundary) does not freeze the window either; frames are
not drawn while a call runs. A separate ``frame`` timer (10 Hz) tells the plots and
the canvas to redraw: the GUI refreshes less often than the engine steps. Compiling
a big topology runs off the GUI thread behind a progress dialog (``busy.py``).
"""
from __future__ import annotations

import math
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from simulation.document import ScheduledEvent

SLICE_BUDGET_S = 0.025      # wall time per engine slice; a click waits at most about this long
CALL_TARGET_S = 0.010       # wall time aimed at per engine call
MIN_CHUNK_S = 1e-4          # smallest simulated time per call (the engine's windows may be shorter than a tick)
MAX_CHUNK_S = 10.0
HEAVY_CALL_S = 0.1          # a call this slow even at the smallest chunk: the file is too heavy to run live
HEAVY_CALL_DIALOG_S = 1.0   # an engine call longer than this shows a dialog (Cancel stops the run)
FRAME_MS = 100              # plots and canvas refresh (10 Hz)
PLOTS_BEHIND_S = 3.0        # the plots this far behind the clock: the status bar says why
SPEEDS: tuple[tuple[str, float | None], ...] = (
    ("1×", 1.0), ("2×", 2.0), ("5×", 5.0), ("10×", 10.0), ("50×", 50.0), ("Max", None))


def engine() -> Any:
    """The engine module, imported on first use (keeps startup fast)."""
    from simulation import engine as module
    return module


class RunController(QObject):
    """Run / Pause / Step / Reset and the speed of a simulation of the controller's document."""

    stateChanged = Signal(str)     # "stopped" | "running" | "paused"
    frame = Signal()               # time to redraw live state and plots
    message = Signal(str)          # status-bar text
    errorOccurred = Signal(str)    # the document cannot be simulated (compile error)
    resetDone = Signal()
    finished = Signal()            # the run reached its duration (the goals panel checks the goals)
    refused = Signal(str)          # a command that could not be done now (also sent as ``message``)
    manualEventsChanged = Signal()  # a node failed or recovered by hand (``manual_events``), or a reset

    def __init__(self, controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.sim: Any = None
        self.state = "stopped"
        self.speed: float | None = 1.0
        self._chunk_s = MIN_CHUNK_S     # simulated seconds per advance() call, adapted
        self.max_call_s = 0.0           # the slowest engine call of this run (for tests and benchmarks)
        self._said_behind = False       # said that the plots wait behind the clock (_say_if_plots_wait)
        self._warned_heavy = False
        self._anchor_wall = 0.0
        self._anchor_sim = 0.0
        self.last_slice_s = 0.0
        self._slice = QTimer(self)
        self._slice.timeout.connect(self._run_slice)
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._frame_due)
        self._busy = False              # an engine call is running on the worker thread
        self._pending: list[tuple[str, str, int | None]] = []   # fail/recover asked during that call
        self.trace_every = 0            # follow every Nth request (trace_view.py); 0: off
        self.manual_events: list[ScheduledEvent] = []   # fail/recover clicks of this run, at their times
        self._update_pending = False
        for sig in (controller.nodeAdded, controller.nodeRemoved, controller.edgeAdded,
                    controller.edgeRemoved, controller.settingsChanged, controller.eventsChanged):
            sig.connect(self._document_edited)
        controller.nodeChanged.connect(self._node_changed)
        controller.documentReplaced.connect(self.reset)

    # ----- properties ------------------------------------------------------------------
    @property
    def now(self) -> float:
        return float(self.sim.now) if self.sim is not None else 0.0

    @property
    def running(self) -> bool:
        return self.state == "running"

    def end_time(self) -> float:
        return float(self.controller.document.settings.get("duration_s", 300.0))

    # ----- commands --------------------------------------------------------------------
    def _ensure_sim(self) -> bool:
        if self.sim is not None:
            return True
        from .busy import Cancelled, run_in_background
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        try:
            module = engine()
            self.sim = run_in_background(parent, "Preparing the run", "Compiling the topology…",
                                         module.Simulation, self.controller.document)
            if self.trace_every:
                self.sim.trace_every(self.trace_every)
            self._chunk_s = MIN_CHUNK_S
            self.max_call_s = 0.0
            self._warned_heavy = False
        except Cancelled:
            self.sim = None
            self.message.emit("Preparing the run was cancelled.")
            return False
        except ImportError as err:
            self._fail(f"The simulation engine is not available ({err}).")
            return False
        except ValueError as err:    # SimulationError is a ValueError
            self._fail(f"Cannot run this topology: {err}")
            return False
        except Exception as err:  # noqa: BLE001 - a bug in the engine must not kill the window
            self._fail(f"The simulation failed to start: {type(err).__name__}: {err}")
            return False
        return True

    def _fail(self, text: str) -> None:
        self.sim = None
        self._set_state("stopped")
        self.message.emit(text)
        self.errorOccurred.emit(text)

    def run(self) -> None:
        if self.running or not self._ensure_sim():
            return
        if self.now >= self.end_time() - 1e-9:
            self._refuse(f"The run reached its duration ({self.end_time():g} s). "
                         "Reset to start again, or raise the duration.")
            return
        self._reanchor()
        self._slice.start(0 if self.speed is None else 10)
        self._frame.start()
        self._set_state("running")

    def pause(self) -> None:
        if not self.running:
            return
        self._slice.stop()
        self._frame.stop()
        self._set_state("paused")
        self.frame.emit()

    def toggle(self) -> None:
        self.pause() if self.running else self.run()

    def step(self, seconds: float = 1.0) -> None:
        """Advance one simulated second (metrics are per second), then stay paused."""
        if self.running:
            self.pause()
        if not self._ensure_sim():
            return
        sim, target = self.sim, self.now + seconds
        answered = time.perf_counter()
        while self.now < target - 1e-9:
            chunk = min(self._chunk_s, target - self.now)
            t0 = time.perf_counter()
            if not self._advance(chunk):
                return
            self._adapt(chunk, time.perf_counter() - t0)
            if time.perf_counter() - answered > SLICE_BUDGET_S:
                # A long step (a heavy topology): let timers and painting run between calls.
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 10)
                answered = time.perf_counter()
                if self.sim is not sim:
                    return               # reset (or a new document) meanwhile
        if self.state == "stopped":
            self._set_state("paused")
        self.frame.emit()

    def reset(self, *args: Any) -> None:
        self._slice.stop()
        self._frame.stop()
        self.sim = None
        self._pending = []
        self._said_behind = False
        self._set_state("stopped")
        had_manual, self.manual_events = bool(self.manual_events), []
        if had_manual:
            self.manualEventsChanged.emit()
        self.resetDone.emit()

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed
        self._reanchor()
        if self.running:
            self._slice.start(0 if speed is None else 10)

    def fail(self, node_id: str, replica: int | None = None) -> None:
        self._failure_action("fail", node_id, replica)

    def recover(self, node_id: str, replica: int | None = None) -> None:
        self._failure_action("recover", node_id, replica)

    def _failure_action(self, action: str, node_id: str, replica: int | None) -> None:
        doc = self.controller.document
        name = (doc.node(node_id).label or node_id) if node_id in doc else node_id
        if self._busy:      # asked from a timer or a signal while an engine call runs: right after it
            self._pending.append((action, node_id, replica))
            return
        fresh = self.sim is None
        if not self._ensure_sim():
            return
        try:
            if replica is None:
                getattr(self.sim, action)(node_id)
            else:
                getattr(self.sim, action)(node_id, replica=replica)
        except (KeyError, ValueError) as err:
            self._refuse(f"Cannot {action} {name}: {err}")
            return
        # Marked on the plots like a scheduled event (plot_events.py reads ``manual_events``).
        self.manual_events.append(ScheduledEvent(self.now, action, node_id, replica))
        self.manualEventsChanged.emit()
        verb = "failed" if action == "fail" else "recovered"
        if replica is not None:
            name = f"replica {replica} of {name}"
        if fresh:
            self._set_state("paused")
            self.message.emit(f"{name} {verb} at t = 0 s. Press Run (Space) to see what happens.")
        else:
            self.message.emit(f"{name} {verb} at t = {self.now:.1f} s.")
        self.frame.emit()

    def _refuse(self, text: str) -> None:
        """Say why a command was not done; the status bar drops it once something succeeds."""
        self.message.emit(text)
        self.refused.emit(text)

    # ----- slices ----------------------------------------------------------------------
    def _reanchor(self) -> None:
        self._anchor_wall = time.perf_counter()
        self._anchor_sim = self.now

    def _run_slice(self) -> None:
        if self.sim is None or self._busy:
            return
        start = time.perf_counter()
        end = self.end_time()
        if self.speed is None:
            target = end
        else:
            target = min(end, self._anchor_sim + (start - self._anchor_wall) * self.speed)
            if target - self.now > 2.0 * self.speed:
                # Too slow for this speed: do not try to catch up forever.
                self._reanchor()
                target = min(end, self.now + self._chunk_s * 4)
        while self.now < target - 1e-9 and time.perf_counter() - start < SLICE_BUDGET_S:
            chunk = min(self._chunk_s, target - self.now)
            t0 = time.perf_counter()
            if not self._advance(chunk):
                return
            spent = time.perf_counter() - t0
            self._adapt(chunk, spent)
        self.last_slice_s = time.perf_counter() - start
        if self.now >= end - 1e-9:
            self._slice.stop()
            self._frame.stop()
            self._set_state("paused")
            self.frame.emit()
            shown = self.plotted_until()
            self.message.emit(f"Reached the end of the run ({end:g} s). Reset to start again." + (
                "" if shown >= math.floor(end + 1e-9) else
                f" Plots end at {shown:g} s: requests still wait at servers with blocking calls."))
            self.finished.emit()
        else:
            self._say_if_plots_wait()

    def plotted_until(self) -> int:
        """The last whole second the plots show (each second is shown once it is closed)."""
        return int(self.sim.metrics.seconds) if self.sim is not None else 0

    def _say_if_plots_wait(self) -> None:
        """Once per stretch: the plots stay more than ``PLOTS_BEHIND_S`` behind the clock."""
        behind = self.now - self.plotted_until()
        if behind > PLOTS_BEHIND_S and not self._said_behind:
            self._said_behind = True
            self.message.emit(f"The plots show up to {self.plotted_until()} s: servers with blocking calls and "
                              "waiting rooms over 4,096 places learn late which requests they refused.")
        elif behind <= PLOTS_BEHIND_S / 2:
            self._said_behind = False

    def _adapt(self, chunk: float, spent: float) -> None:
        """Simulated time for the next call: about CALL_TARGET_S of wall time."""
        self.max_call_s = max(self.max_call_s, spent)
        if chunk < self._chunk_s * 0.5 and spent < CALL_TARGET_S:
            return                       # a short remainder says little about the speed
        if spent > 0:
            wanted = chunk * CALL_TARGET_S / spent
            self._chunk_s = min(max(wanted, MIN_CHUNK_S), MAX_CHUNK_S, self._chunk_s * 2)
        else:
            self._chunk_s = min(MAX_CHUNK_S, self._chunk_s * 2)
        if spent > HEAVY_CALL_S and chunk <= MIN_CHUNK_S * 1.01 and not self._warned_heavy:
            self._warned_heavy = True
            self.message.emit(f"This topology is very heavy to simulate: {MIN_CHUNK_S * 1000:g} ms of simulated "
                              f"time took {spent * 1000:.0f} ms; the window may answer slowly while it runs.")

    def _frame_due(self) -> None:
        if not self._busy:              # never read the engine's state while it is changing
            self.frame.emit()

    def _advance(self, seconds: float) -> bool:
        """One engine call, on a worker thread: the event loop keeps answering however long
        the call takes (a call beyond ``HEAVY_CALL_DIALOG_S`` shows a dialog whose Cancel
        stops the run)."""
        from .busy import Cancelled, run_in_background
        if self._busy:
            return False                # re-entered from the event loop during a call
        sim = self.sim
        self._busy = True
        try:
            parent = self.parent() if isinstance(self.parent(), QWidget) else None
            run_in_background(parent, "Simulating", "This topology is heavy to simulate…\n"
                              "(Cancel stops the run.)", sim.advance, seconds, show_after_s=HEAVY_CALL_DIALOG_S)
        except Cancelled:
            self._busy = False
            self.reset()                # the abandoned call still runs: that simulation is dropped
            self.message.emit("The run was stopped: this topology is too heavy to simulate live.")
            return False
        except Exception as err:  # noqa: BLE001 - keep the window alive, say what happened
            self._slice.stop()
            self._frame.stop()
            self._set_state("paused")
            self.message.emit(f"The simulation stopped: {type(err).__name__}: {err}")
            self.errorOccurred.emit(f"The simulation stopped at t = {self.now:.1f} s:\n\n{err}")
            return False
        finally:
            self._busy = False
        if self.sim is sim and self._pending:
            pending, self._pending = self._pending, []
            for action in pending:
                self._failure_action(*action)
        return self.sim is sim          # False when a reset came while the call ran

    # ----- edits during a run ----------------------------------------------------------
    def _node_changed(self, node_id: str, what: str) -> None:
        if what != "position":
            self._document_edited()

    def _document_edited(self, *args: Any) -> None:
        if self.sim is not None and not self._update_pending:
            self._update_pending = True
            QTimer.singleShot(0, self, self._apply_edits)

    def _apply_edits(self) -> None:
        if self._busy:                  # after the engine call in progress
            QTimer.singleShot(20, self, self._apply_edits)
            return
        self._update_pending = False
        if self.sim is None:
            return
        try:
            self.sim.update_document(self.controller.document)
        except ValueError as err:
            self.message.emit(f"This edit cannot be simulated yet, the run goes on without it: {err}")
            return
        except Exception as err:  # noqa: BLE001
            self.message.emit(f"The running simulation could not take this edit: {type(err).__name__}: {err}")
            return
        moved = "".join(f" {db}: {a} → {b} shards, {share:.0%} of its keys move to another shard."
                        for db, (a, b, share) in getattr(self.sim, "resharded", {}).items())
        self.message.emit(f"Edit applied to the running simulation at t = {self.now:.1f} s.{moved}")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)
