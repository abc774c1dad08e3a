"""The run controller: timed slices, speed, step, reset, end of run, scheduled events."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from designer.controller import DocumentController
from designer.run_controller import SLICE_BUDGET_S, RunController
from simulation.fileformat import load

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


@pytest.fixture
def run(qtbot):
    controller = DocumentController(load(LESSONS / "lb_demo.scalelab"))
    runner = RunController(controller)
    yield runner
    runner.reset()


def test_real_time_speed_keeps_pace(qtbot, run):
    run.set_speed(2.0)
    start = time.perf_counter()
    run.run()
    qtbot.wait(1000)
    elapsed = time.perf_counter() - start
    run.pause()
    assert run.now == pytest.approx(2.0 * elapsed, abs=0.5)


def test_max_speed_slices_stay_within_budget(qtbot, run):
    run.set_speed(None)
    slices = []
    original = run._run_slice

    def measured():
        t0 = time.perf_counter()
        original()
        slices.append(time.perf_counter() - t0)
    run._slice.timeout.disconnect()
    run._slice.timeout.connect(measured)
    run.run()
    qtbot.waitUntil(lambda: run.now >= 20, timeout=20000)
    run.pause()
    assert max(slices) < max(4 * SLICE_BUDGET_S, 0.1)     # a click waits at most ~100 ms


def test_frames_are_emitted_at_about_10_hz(qtbot, run):
    frames = []
    run.frame.connect(lambda: frames.append(time.perf_counter()))
    run.set_speed(1.0)
    run.run()
    qtbot.wait(1100)
    run.pause()
    assert 8 <= len(frames) <= 14


def test_step_reset_and_scheduled_events(qtbot, run):
    run.step(1.0)
    assert run.state == "paused" and run.now == pytest.approx(1.0, abs=0.05)
    run.step(33.0)                                  # past the scheduled fail of web2 at 30 s
    assert run.sim.node_states()["web2"].failed
    resets = []
    run.resetDone.connect(lambda: resets.append(1))
    run.reset()
    assert run.sim is None and run.state == "stopped" and resets == [1]


def test_the_run_stops_at_its_duration(qtbot, run):
    run.controller.set_settings(duration_s=5.0)
    run.set_speed(None)
    messages = []
    run.message.connect(messages.append)
    run.run()
    qtbot.waitUntil(lambda: run.state == "paused", timeout=10000)
    assert run.now == pytest.approx(5.0, abs=0.05)
    assert any("end of the run" in m for m in messages)
    run.run()                                       # nothing more to do: says so
    assert run.state == "paused" and "Reset" in messages[-1]


def test_edits_during_a_run_reach_the_engine(qtbot, run):
    run.step(2.0)
    run.controller.set_params(["web1"], {"capacity_rps": 400.0})
    messages = []
    run.message.connect(messages.append)
    qtbot.waitUntil(lambda: any("applied" in m for m in messages), timeout=2000)
    run.step(5.0)
    assert run.sim.node_states()["web1"].utilization < 0.6


def test_the_event_loop_answers_within_100_ms_during_a_run(qtbot, run):
    """What a click would wait for: timers posted during a Max-speed run fire promptly."""
    from PySide6.QtCore import QTimer
    run.set_speed(None)
    run.run()
    qtbot.waitUntil(lambda: run.now >= 2, timeout=10000)
    delays = []

    def probe():
        posted = time.perf_counter()
        QTimer.singleShot(0, lambda: delays.append(time.perf_counter() - posted))
    for i in range(20):
        QTimer.singleShot(37 * i, probe)
    qtbot.waitUntil(lambda: len(delays) == 20, timeout=10000)
    run.pause()
    delays.sort()
    assert delays[len(delays) // 2] < 0.05 and delays[-2] < 0.1, delays


def test_plots_waiting_behind_the_clock_are_explained(qtbot):
    # a saturated tier of sync servers (blocking calls) with 30 s of patience and waiting rooms
    # too large to count exactly (10,000 places: estimated from the wait): each second is plotted
    # once the requests that arrived in it are known refused or not, seconds behind the clock
    # (with the default 1,000 places that is known at once: docs/engine.md)
    from simulation.document import Document, NodeData
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 300.0}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "round_robin"}))
    d.add_node(NodeData("web", "server", params={"replicas": 2, "workers": 4, "capacity_rps": 400.0,
                                                 "blocking_calls": True, "queue_limit": 10_000}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 200.0, "connections": 4}))
    for s, t in (("users", "lb"), ("lb", "web"), ("web", "db")):
        d.add_edge(s, t)
    d.set_settings(duration_s=20.0)
    runner = RunController(DocumentController(d))
    messages = []
    runner.message.connect(messages.append)
    runner.set_speed(10.0)   # many slices: the note comes while running, once
    runner.run()
    qtbot.waitUntil(lambda: runner.state == "paused", timeout=30000)
    behind = [m for m in messages if m.startswith("The plots show up to")]
    assert len(behind) == 1 and "blocking calls" in behind[0]   # said once, not every slice
    end = messages[-1]
    assert end.startswith("Reached the end of the run (20 s).")
    assert f"Plots end at {runner.plotted_until()} s" in end and runner.plotted_until() < 20
    runner.reset()
