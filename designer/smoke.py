"""``scalelab --smoke-test OUT.png [FILE]``: start the app, open FILE (else the starter
lesson), run it for ``--smoke-seconds`` simulated seconds (default 10), export the lesson
snapshot (title, canvas, plots) to OUT.png and quit.

It checks that an install (a PyInstaller bundle above all) has everything the app needs:
Qt's plugins, pyqtgraph, the engine, the lessons and icons. It takes the path a user takes
(the main window, Open, the run controller, File → Export → Lesson snapshot), offscreen
when ``QT_QPA_PLATFORM=offscreen``; crashed sessions' recovery is not offered, and a
problem ends it with a one-line message and exit code 1 instead of a dialog.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QTimer, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

WATCHDOG_S = 300.0     # wall-clock bound: a smoke test that hangs fails instead


def run(app: QApplication, out: str, file: str | None, seconds: float = 10.0) -> int:
    """The smoke test in ``app`` (made by ``designer.app.make_app``); returns the exit code."""
    from simulation.fileformat import FormatError, load
    from simulation.outputs import plan_all

    from . import export
    from .lessons import starter_path
    from .main_window import MainWindow

    started = time.perf_counter()
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        qInstallMessageHandler(export._quiet_offscreen)
    lesson = Path(file) if file else starter_path()
    try:
        load(lesson)                    # a broken file: one line here, not the window's dialog
    except (FormatError, OSError) as err:
        print(f"scalelab: smoke test: cannot open {lesson}: {err}", file=sys.stderr)
        return 1
    try:
        plan_all([str(lesson)], {"OUT.png": out})   # writable, and not the lesson: before the run
    except OSError as err:
        print(f"scalelab: smoke test: {err}", file=sys.stderr)
        return 1
    if not seconds > 0:
        print(f"scalelab: smoke test: --smoke-seconds must be > 0, got {seconds}", file=sys.stderr)
        return 2
    problems: list[str] = []
    window = MainWindow()
    window.run.errorOccurred.disconnect(window._run_error)   # no modal dialog: say it and quit
    window.run.errorOccurred.connect(lambda text: (problems.append(" ".join(text.split())), app.exit(1)))
    window.show()
    try:
        return _exec(app, window, lesson, out, seconds, started, problems)
    finally:
        window.files.remove_recovery()
        window.close()
        window.deleteLater()       # now, while the application lives (else a crash at exit)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _exec(app: QApplication, window, lesson: Path, out: str, seconds: float, started: float,
          problems: list[str]) -> int:
    from . import export
    if not window.open_file(lesson):
        print(f"scalelab: smoke test: could not open {lesson}", file=sys.stderr)
        return 1

    def go() -> None:
        try:
            window.run.step(seconds)
            if abs(window.run.now - seconds) > 1e-6:
                raise RuntimeError(f"the run stopped at t = {window.run.now:.1f} s")
            title = window.controller.document.meta.get("title") or lesson.stem
            export.export_snapshot_png(title, window.canvas, window.plots, out, with_plots=window.plots.has_data())
        except (OSError, RuntimeError) as err:
            problems.append(str(err))
            app.exit(1)
            return
        totals = window.run.sim.totals()
        print(f"smoke test: {lesson.name}: ran {window.run.now:.1f} s, served {totals['served']:,} of "
              f"{totals['arrived']:,} requests; wrote {out} in {time.perf_counter() - started:.1f} s")
        app.exit(0)

    def watchdog() -> None:
        problems.append(f"no picture after {WATCHDOG_S:.0f} s")
        app.exit(1)

    QTimer.singleShot(0, go)
    QTimer.singleShot(int(WATCHDOG_S * 1000), watchdog)
    code = app.exec()
    for text in problems:
        print(f"scalelab: smoke test: {text}", file=sys.stderr)
    return code
