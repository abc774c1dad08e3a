"""The Goals panel as a student meets it: a challenge's goals listed before a run, ✓ / ✗ with
the measured values when the run ends or on Check goals, out of date after an edit,
hidden for a lesson without goals; the slow survival goal behind the busy dialog."""
from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QProgressDialog, QPushButton

from designer.goals_panel import MISSED
from simulation.engine import Simulation
from simulation.fileformat import load
from simulation.grading import evaluate
from tests.designer.main_window_support import LESSONS
from tests.pool_workers import pool_workers

CHEAPEST = LESSONS / "challenge_cheapest_5000.scalelab"


def open_lesson(qtbot, window, name: str) -> None:
    window.controller.undo_stack.setClean()          # nothing to save: no dialog
    assert window.open_file(LESSONS / name)
    qtbot.waitUntil(lambda: window.docks["goals"].isVisible() == bool(window.controller.document.goals),
                    timeout=3000)


def test_a_challenge_lists_its_goals_before_a_run(qtbot, window):
    assert not window.docks["goals"].isVisible()               # the starter lesson has no goals
    open_lesson(qtbot, window, CHEAPEST.name)
    panel = window.goals
    assert window.docks["goals"].isVisible() and panel.isVisible()
    assert panel.status.text().startswith("Run the simulation to check the goals")
    assert panel.rows() == [("–", "served share ≥ 99 %", "not measured yet"),
                            ("–", "p95 latency ≤ 100 ms", "not measured yet"),
                            ("–", "cost ≤ 1,620 server-s", "not measured yet")]
    open_lesson(qtbot, window, "starter.scalelab")
    assert not window.docks["goals"].isVisible()


def test_the_end_of_a_run_checks_the_goals_and_an_edit_makes_them_stale(qtbot, window):
    open_lesson(qtbot, window, CHEAPEST.name)
    panel = window.goals
    window.speed_box.setCurrentIndex(window.speed_box.findText("Max"))
    with qtbot.waitSignal(panel.checked, timeout=60000):
        window.actions_["run"].trigger()
    # the same file and seed headless give the same numbers: the panel shows them
    doc = load(CHEAPEST)
    sim = Simulation(doc)
    sim.advance(60)
    expected = evaluate(doc.goals, doc, sim)
    assert [r.met for r in expected] == [True, True, False]
    assert panel.rows() == [(r.mark, f"{r.title} {r.target}", r.measured_text) for r in expected]
    assert panel.rows()[2] == ("✗", "cost ≤ 1,620 server-s", "2,400 server-s")
    assert panel.status.text().startswith("2 of 3 goals met.")
    qtbot.waitUntil(lambda: any(m.isVisible() for m in panel.findChildren(QLabel) if m.text() == "✗"), timeout=3000)
    red = [m for m in panel.findChildren(QLabel) if m.text() == "✗" and m.isVisible()]
    assert len(red) == 1 and f"color: {MISSED.name()}" in red[0].styleSheet()    # a red cross

    window.controller.set_params(["web"], {"replicas": 27})
    assert "changed since these results" in panel.status.text()
    window.controller.set_params(["lb"], {"algorithm": "least_connections"})
    with qtbot.waitSignal(panel.checked, timeout=60000):
        qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    assert [row[0] for row in panel.rows()] == ["✓", "✓", "✓"]
    assert panel.rows()[2] == ("✓", "cost ≤ 1,620 server-s", "1,620 server-s")
    assert panel.status.text().startswith("All goals met")


def test_the_survival_goal_is_measured_behind_the_busy_dialog(qtbot, window, monkeypatch):
    import designer.busy as busy
    open_lesson(qtbot, window, "challenge_single_failure.scalelab")
    panel = window.goals
    calls = []
    real = busy.run_in_background

    def recorded(parent, title, label, fn, *args, **kw):
        calls.append(label)
        return real(parent, title, label, fn, *args, **kw)

    monkeypatch.setattr(busy, "run_in_background", recorded)
    with qtbot.waitSignal(panel.checked, timeout=120000):
        panel.check_button.click()
    assert calls[0].startswith("Simulating 60 s") and calls[1].startswith("Failing each machine in turn (10 runs")
    mark, goal, measured = panel.rows()[0]
    assert (mark, goal) == ("✗", "survives any single machine failure (each failure loses ≤ 1 %)")
    assert measured == "100 % (when Load balancer fails)"
    assert [row[0] for row in panel.rows()[1:]] == ["✓", "✓"]

    # the measurement is remembered for this topology; Cancel of a new one leaves the goal unchecked
    calls.clear()
    with qtbot.waitSignal(panel.checked, timeout=60000):
        panel.check_button.click()
    assert len(calls) == 1
    window.controller.set_params(["web1"], {"capacity_rps": 200})

    def cancel(parent, title, label, fn, *args, **kw):
        if label.startswith("Failing"):
            raise busy.Cancelled("cancelled")
        return real(parent, title, label, fn, *args, **kw)

    monkeypatch.setattr(busy, "run_in_background", cancel)
    with qtbot.waitSignal(panel.checked, timeout=60000):
        panel.check_button.click()
    assert panel.rows()[0][0] == "?" and panel.rows()[0][2] == "not checked (cancelled)"


def test_the_survival_runs_fill_a_progress_bar_on_every_core_and_cancel_stops_them(qtbot, window, monkeypatch):
    """Failing each machine in turn is many independent runs: they go to worker processes (two
    here) behind a progress bar that fills as runs finish, and Cancel stops the processes, not
    only the wait (before, the runs went on in the background, holding this process's GIL)."""
    import designer.busy as busy
    monkeypatch.setattr(busy, "cpu_count", lambda: 2)
    open_lesson(qtbot, window, "challenge_single_failure.scalelab")
    goals = window.controller.document.goals
    goals[0] = dataclasses.replace(goals[0], seconds=1200)     # 10 runs of 1,200 s: minutes
    before = pool_workers()
    seen: dict[str, object] = {}

    def watch() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QProgressDialog) and dialog.labelText().startswith("Failing"):
            seen["workers"] = seen.get("workers", set()) | (pool_workers() - before)
            if dialog.value() > 0:                              # a run has finished: the bar moved
                seen["value"] = dialog.value()
                qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)
                return
        QTimer.singleShot(50, watch)

    QTimer.singleShot(50, watch)
    with qtbot.waitSignal(window.goals.checked, timeout=120_000):
        window.goals.check_button.click()
    assert len(seen["workers"]) == 2                            # one process per core
    assert 0 < seen["value"] < 1000
    assert window.goals.rows()[0][0] == "?" and window.goals.rows()[0][2] == "not checked (cancelled)"
    qtbot.waitUntil(lambda: not (pool_workers() - before), timeout=5000)   # the processes are gone
