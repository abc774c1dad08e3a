"""The command's progress bar on stderr (``cli.py``): shown only for runs that take a while."""
from __future__ import annotations

import math
import os
import time
from typing import TextIO


class Progress:
    """A carriage-return progress bar on a stream, shown only for runs longer than ``delay`` s."""

    def __init__(self, stream: TextIO, total_s: float, enabled: bool, delay: float | None = None, width: int = 30,
                 unit: str = "s", label: str = "simulating") -> None:
        if delay is None:  # the environment variable lets tests see the bar without a slow run
            delay = float(os.environ.get("SCALELAB_PROGRESS_DELAY", "1.0"))
        self.stream, self.total_s, self.enabled = stream, total_s, enabled
        self.unit, self.label = unit, label
        self.delay, self.width = delay, width
        self.start = time.monotonic()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, done_s: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self.start
        if not force and (elapsed < self.delay or now - self.last_draw < 0.1):
            return
        self.last_draw = now
        frac = min(max(done_s / self.total_s, 0.0), 1.0) if self.total_s > 0 else 1.0
        filled = int(round(frac * self.width))
        eta = elapsed * (1 - frac) / frac if frac > 0 else math.inf
        eta_text = _duration(eta) if math.isfinite(eta) else "?"
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}%  "
                          f"{done_s:,.0f}/{self.total_s:,.0f} {self.unit}  ETA {eta_text}   ")
        self.stream.flush()
        self.drawn = True

    def finish(self, done_s: float) -> None:
        """Draw the final state and end the line (only if a bar was shown at all)."""
        if self.drawn:
            self.update(done_s, force=True)
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"
