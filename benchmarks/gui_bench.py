"""GUI figures, run by hand: ``.venv/bin/python benchmarks/gui_bench.py``.

1. Startup: from launching a process to a shown main window with the starter lesson
   (a fresh interpreter each time, so imports count). Target ≤ 1.2 s.
2. Live plots' cost on engine throughput: simulated seconds per wall second of the
   bare engine vs. the same engine driven by the window at Max speed with the plots
   and the canvas refreshed at 10 Hz. Target: the window costs ≤ 20%.
3. Responsiveness on big valid files (``gui_bench.py responsiveness`` runs only this):
   the longest time the event loop did not answer (a 10 ms heartbeat) while opening
   5,000 / 100,000 scheduled events, a million-character note, heavy clients, and while
   running each at Max for 3 s; the slowest single engine call. Target ≤ 100 ms running.
Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STARTUP_CHILD = r"""
import sys, time
t0 = float(sys.argv[1])
sys.path.insert(0, sys.argv[2])
from designer.app import make_app
app = make_app([])
from designer.main_window import MainWindow
from designer.lessons import starter_path
w = MainWindow()
w.open_file(starter_path())
w.show()
while not w.windowHandle().isExposed():
    app.processEvents()
app.processEvents()
print(time.time() - t0)
"""


BASELINE_CHILD = r"""
import sys, time
t0 = float(sys.argv[1])
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph as pg
app = QApplication([])
w = QMainWindow()
w.setCentralWidget(pg.PlotWidget())
w.show()
while not w.windowHandle().isExposed():
    app.processEvents()
app.processEvents()
print(time.time() - t0)
"""


def startup_seconds(runs: int = 5, child: str = STARTUP_CHILD) -> list[float]:
    times = []
    env = dict(os.environ)
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", child, repr(t0), str(ROOT)], env=env,
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def bare_engine_rate(lesson: Path, wall: float) -> float:
    from simulation.engine import Simulation
    from simulation.fileformat import load
    sim = Simulation(load(lesson))
    sim.advance(1.0)                      # warm up
    start_sim, start, cpu = sim.now, time.perf_counter(), time.thread_time()
    while time.perf_counter() - start < wall:
        sim.advance(1.0)
    return (sim.now - start_sim) / (time.thread_time() - cpu)


def window_rate(lesson: Path, wall: float, live: bool = True) -> tuple[float, int, float]:
    """Engine speed inside the window at Max speed (simulated s per CPU s of the GUI thread);
    frames drawn; mean CPU cost of a frame (s). CPU time, not wall time, so that other
    processes on a shared machine do not skew the figures.

    ``live=False`` runs the same window and slices but draws no live state or plots."""
    from PySide6.QtWidgets import QApplication
    from designer.app import make_app
    from designer.main_window import MainWindow
    app = make_app([])
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    w.open_file(lesson)
    w.controller.set_settings(duration_s=3600.0)    # the time axis shows a one-hour run
    frames: list[float] = []
    original = w._frame

    def timed_frame() -> None:
        if not live:
            return
        t = time.thread_time()
        original()                        # painting follows in the event loop (counted in the rate)
        frames.append(time.thread_time() - t)
    w.run.frame.disconnect()
    w.run.frame.connect(timed_frame)
    w.speed_box.setCurrentIndex(w.speed_box.findText("Max"))
    w.run.step(1.0)
    start_sim, start, cpu = w.run.now, time.perf_counter(), time.thread_time()
    w.run.run()
    while time.perf_counter() - start < wall:
        app.processEvents()
    w.run.pause()
    rate = (w.run.now - start_sim) / (time.thread_time() - cpu)
    w.files.remove_recovery()
    w.controller.undo_stack.setClean()
    w.close()
    return rate, len(frames), statistics.mean(frames) if frames else 0.0


def frame_cost(lesson: Path, simulated: float = 600.0, frames: int = 30) -> float:
    """CPU seconds of one live frame (update + paint of canvas and plots) after ``simulated`` s."""
    from designer.app import make_app
    from designer.main_window import MainWindow
    app = make_app([])
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    w.open_file(lesson)
    w.controller.set_settings(duration_s=3600.0)
    w.run.step(simulated)
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:      # let the window lay out and build its plots
        app.processEvents()
    assert w.plots.graphics.width() > 500
    costs = []
    for _ in range(frames):
        w.plots._n = -1                   # force a full refresh, as when a new second arrived
        t = time.thread_time()
        w._frame()
        w.canvas.viewport().repaint()
        w.plots.graphics.viewport().repaint()
        costs.append(time.thread_time() - t)
    w.run.reset()
    w.controller.undo_stack.setClean()
    w.close()
    return statistics.median(costs)


def responsiveness() -> None:
    import tempfile
    from PySide6.QtCore import QTimer
    from designer.app import make_app
    from designer.main_window import MainWindow
    from tests.designer.responsiveness import Heartbeat, lesson, write_lesson
    app = make_app([])
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    w.plots  # noqa: B018

    def spin(seconds: float, until=lambda: False) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not until():
            app.processEvents()
            time.sleep(0.001)

    cases = [("5,000 events", lesson(events=5000)), ("100,000 events", lesson(events=100_000)),
             ("1,000,000-character note (one word)", lesson(notes="x" * 1_000_000)),
             ("1,000,000-character note (words)", lesson(notes="Some **words** here.\n" * 47_619)),
             ("client 1e5 req/s", lesson(rate=1e5)), ("client 1e6 req/s", lesson(rate=1e6)),
             ("client 1e7 req/s", lesson(rate=1e7))]
    with tempfile.TemporaryDirectory() as folder:
        for name, data in cases:
            path = write_lesson(Path(folder) / "case.scalelab", data)
            beat = Heartbeat().start()
            done: list[bool] = []
            t0 = time.perf_counter()
            QTimer.singleShot(0, lambda: done.append(w.files.open_path(path, ask=False)))
            spin(300, lambda: bool(done))
            opened = time.perf_counter() - t0
            spin(0.3)
            open_gap = beat.max_gap
            beat.reset()
            w.run.set_speed(None)
            w.run.run()
            spin(3.0)
            w.run.pause()
            spin(0.1)
            run_gap = beat.stop()
            print(f"{name}: opened in {opened:.2f} s, longest unanswered {1000 * open_gap:.0f} ms; "
                  f"running 3 s at Max: longest unanswered {1000 * run_gap:.0f} ms, slowest engine call "
                  f"{1000 * w.run.max_call_s:.0f} ms, {w.run.now:.2f} simulated s")
            w.run.reset()
    w.files.remove_recovery()
    w.controller.undo_stack.setClean()
    w.close()


def main() -> None:
    if sys.argv[1:] == ["responsiveness"]:
        responsiveness()
        return
    times = startup_seconds()
    base = startup_seconds(child=BASELINE_CHILD)
    print(f"startup to a shown window: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs; target ≤ 1.2 s); "
          f"a bare QMainWindow + pyqtgraph PlotWidget: median {statistics.median(base):.2f} s")
    for name in ("lb_demo", "starter"):
        lesson = ROOT / "resources" / "lessons" / f"{name}.scalelab"
        bare = bare_engine_rate(lesson, 3.0)
        quiet_runs, live_runs = [], []
        for _ in range(3):                       # interleaved, so that load changes hit both alike
            quiet_runs.append(window_rate(lesson, 4.0, live=False)[0])
            live_runs.append(window_rate(lesson, 4.0, live=True))
        quiet = statistics.median(quiet_runs)
        rate = statistics.median(r[0] for r in live_runs)
        frames = live_runs[-1][1]
        one_frame = frame_cost(lesson)
        cost = 1.0 - rate / quiet
        print(f"{name}: simulated s per CPU s: engine alone {bare:.0f}; in the window at Max without live "
              f"drawing {quiet:.0f}, with live plots and canvas {rate:.0f} -> live drawing costs {100 * cost:.0f}% "
              f"(target ≤ 20%); {frames} frames in 4 s; one frame after 600 simulated s: {1000 * one_frame:.1f} ms CPU "
              f"= {one_frame * 10 * 100:.0f}% of one core at 10 Hz")
    responsiveness()


if __name__ == "__main__":
    main()
