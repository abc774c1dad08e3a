"""The plots' event markers: the lesson's scheduled events and the nodes failed or
recovered by hand during the run, drawn alike (a dashed line on every plot, a label in
the band above Throughput). An export shows only those that happened before the time
the run reached. Mixed into :class:`designer.plots.PlotsPanel`."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


class PlotEvents:
    """Scheduled and manual markers of the panel (``event_markers``, ``event_labels``)."""

    def _init_events(self) -> None:
        self._scheduled: tuple[np.ndarray, Callable[[int], str]] = (np.empty(0), str)
        self._manual: list[tuple[float, Callable[[], str]]] = []
        self._markers_until: float | None = None     # an export shows only what happened before
        self._run: Any = None
        self._reached: float | None = None

    def set_events(self, times: Sequence[float], text: Callable[[int], str]) -> None:
        """Mark the lesson's scheduled events on every plot (one item per plot): their times,
        and ``text(i)`` describing event ``i`` (asked only for the labels drawn)."""
        self._scheduled = (np.asarray(times, dtype=float), text)
        self._update_markers()

    def set_manual_events(self, events: Sequence[tuple[float, Callable[[], str]]]) -> None:
        """Mark the nodes failed or recovered by hand during the run, like scheduled events:
        ``(time, text())`` each (the text is asked when drawn, so renames show)."""
        self._manual = list(events)
        self._update_markers()

    def attach_run(self, run: Any) -> None:
        """Follow a :class:`~designer.run_controller.RunController`: its manual fail/recover
        clicks are marked, and exports end at the time it reached."""
        from .events_editor import describe
        self._run = run

        def manual_changed() -> None:
            doc = run.controller.document
            self.set_manual_events([(ev.at_s, lambda ev=ev: describe(doc, ev)) for ev in run.manual_events])

        run.manualEventsChanged.connect(manual_changed)
        manual_changed()

    def set_reached(self, seconds: float | None) -> None:
        """The simulated time the run reached (headless exports, without a run controller)."""
        self._reached = None if seconds is None else float(seconds)

    def reached(self) -> float:
        """Where the run is: the run controller's time, else what :meth:`set_reached` said,
        else the last row of the metrics."""
        if self._run is not None and self._run.sim is not None:
            return float(self._run.now)
        if self._reached is not None:
            return self._reached
        return float(self._metrics.time_s[self._n - 1]) if self._metrics is not None and self._n else 0.0

    def marker_texts(self, name: str = "throughput") -> list[tuple[float, str]]:
        """The markers a plot holds, in time order: (time, label) each (what the tests read)."""
        markers = self.event_markers[name]
        return [(float(markers.times[k]), markers._text(int(markers._order[k]))) for k in range(markers.count())]

    def _update_markers(self) -> None:
        sched_t, sched_text = self._scheduled
        manual = self._manual
        times = np.concatenate([sched_t, np.asarray([t for t, _ in manual], dtype=float)])
        n_sched = len(sched_t)

        def text(i: int) -> str:
            return sched_text(i) if i < n_sched else manual[i - n_sched][1]()

        index = np.arange(len(times))
        if self._markers_until is not None:
            index = index[times < self._markers_until - 1e-9]      # not yet happened: not in the picture
        order = index[np.argsort(times[index], kind="stable")]
        for markers in self.event_markers.values():
            markers.set_events(times[order], order, text)
        self.event_labels.update()

    def set_scale(self, scale: float) -> None:
        super().set_scale(scale)
        for markers in self.event_markers.values():
            markers.set_scale(self.scale)
