"""An event-loop responsiveness probe for GUI tests, and big valid lessons to open.

:class:`Heartbeat` is a 10 ms QTimer that records the longest gap between its ticks:
the longest time the window could not answer a click. Work under test is started from
the event loop (``QTimer.singleShot``) so that the probe measures it, not the test.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import QTimer

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


class Heartbeat:
    def __init__(self, interval_ms: int = 10) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)
        self.max_gap = 0.0
        self.beats = 0
        self._last = time.perf_counter()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self._last)
        self._last = now
        self.beats += 1

    def start(self) -> "Heartbeat":
        self.reset()
        self.timer.start()
        return self

    def reset(self) -> None:
        self.max_gap, self.beats, self._last = 0.0, 0, time.perf_counter()

    def stop(self) -> float:
        self._beat()
        self.timer.stop()
        return self.max_gap


def lesson(events: int = 0, notes: str | None = None, rate: float | None = None,
           base: str = "starter.scalelab") -> dict:
    """A valid lesson built from a shipped one: ``events`` alternating fail/recover of web1
    spread over the run, or these notes, or this client rate."""
    data = json.loads((LESSONS / base).read_text(encoding="utf-8"))
    if events:
        duration = data["simulation"]["duration_s"]
        data["events"] = [{"at_s": round(duration * i / events, 6), "action": ("fail", "recover")[i % 2],
                           "node": "web1"} for i in range(events)]
    if notes is not None:
        data["meta"]["notes"] = notes
    if rate is not None:
        data["nodes"][0]["params"]["rate_rps"] = rate
    return data


def write_lesson(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def open_from_loop(qtbot, window, path: Path, timeout_s: float = 120) -> bool:
    """Open ``path`` from the event loop (as a menu click would) and wait until done."""
    result: list[bool] = []
    QTimer.singleShot(0, lambda: result.append(window.files.open_path(path, ask=False)))
    qtbot.waitUntil(lambda: bool(result), timeout=int(timeout_s * 1000))
    qtbot.wait(200)                                  # deferred updates (plot markers, canvas fit)
    return result[0]
