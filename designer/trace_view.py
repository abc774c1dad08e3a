"""Follow requests (Packet Tracer's simulation mode): sampled requests drawn as dots
on the canvas where they are at the current simulated time, a "Requests" dock
listing them, and a timeline of the one you click.

The engine records the traces (``Simulation.trace_every``, simulation/tracing.py);
this module only reads them at each frame and draws at most ``MAX_DOTS`` dots.
The dots are not drawn in exported pictures (canvas PNG/SVG, snapshot): a picture
shows the topology and its state, as ``scalelab export`` does.
"""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QPen
from PySide6.QtWidgets import (QCheckBox, QGraphicsEllipseItem, QGraphicsItem, QLabel, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QSpinBox, QSplitter, QToolBar, QVBoxLayout,
                               QWidget)

from simulation.state import CAUSE_LABELS

from .canvas.export import NOT_EXPORTED

MAX_DOTS = 300          # drawing stays cheap whatever the sampling
MAX_LISTED = 200        # rows in the Requests list (the most recent)
SHOW_FAILED_S = 1.0     # a failed request stays visible this long (simulated s): one Step
SHOW_ANSWERED_S = 0.25  # an answered one, more briefly (there are many)
DOT_RADIUS = 5.0
COLOURS = {"queueing": "#e6a700", "in_service": "#1f77d4", "failed": "#d62728", "answered": "#2ca02c"}
STATUS_TEXT = {"queueing": "queueing", "in_service": "in service", "failed": "failed", "answered": "answered"}


# ----- text ---------------------------------------------------------------------------------
def _cause_text(cause: str | None) -> str:
    return CAUSE_LABELS.get(cause or "", cause or "unknown").lower()


def timeline_lines(trace: Any, label_of=lambda node: node) -> list[str]:
    """One line per hop, times in s and ms: what the timeline panel shows."""
    kind = "write" if trace.write else "read"
    lines = [f"Request {trace.key % 100000:05d} · user {trace.user} · item {trace.item} · {kind}"]
    for h in trace.hops:
        where = label_of(h.node)
        head = f"t = {h.arrived_s:.3f} s arrived at {where}"
        if h.start_s is None and not math.isfinite(h.end_s):   # at a blocking server, its turn not known yet
            body = f"{head}; waiting for a worker"
        elif h.start_s is None:
            waited = f"waited {h.wait_ms:.1f} ms" + (" (gave up)" if h.cause == "timeout" else "")
            body = f"{head}; {waited}" if h.end_s > h.arrived_s else head
        else:
            queue = " (queue)" if h.wait_ms > 0.05 else ""
            body = f"{head}; waited {h.wait_ms:.1f} ms{queue}; served {h.service_ms:.1f} ms"
        if h.outcome == "forwarded":
            body += f" → {label_of(h.to)}"
        elif h.outcome == "in_flight":
            body += " (still there)"
        lines.append(body)
    if trace.outcome == "answered":
        lines.append(f"answered at t = {trace.end_s:.3f} s · latency {trace.latency_ms:.1f} ms")
    elif trace.outcome == "failed":
        where = f" at {label_of(trace.hops[-1].node)}" if trace.hops else ""
        lines.append(f"failed: {_cause_text(trace.cause)}{where} (t = {trace.end_s:.3f} s)")
    else:
        lines.append("in flight")
    return lines


def status_at(trace: Any, now: float) -> tuple[str, int] | None:
    """(status, hop index) of a trace at ``now``, or None when it is not shown."""
    if trace.outcome != "in_flight" and trace.end_s is not None and trace.end_s <= now:
        keep = SHOW_FAILED_S if trace.outcome == "failed" else SHOW_ANSWERED_S
        if now - trace.end_s > keep or not trace.hops:
            return None
        return trace.outcome, len(trace.hops) - 1
    for i in range(len(trace.hops) - 1, -1, -1):
        s = trace.hops[i].status_at(now)
        if s is not None:
            return s, i
    return None


# ----- canvas -------------------------------------------------------------------------------
class TraceDot(QGraphicsEllipseItem):
    """One followed request on the canvas; a click shows its timeline."""

    def __init__(self, key: int, status: str) -> None:
        r = DOT_RADIUS
        super().__init__(-r, -r, 2 * r, 2 * r)
        self.key = key
        self.status = status
        self.setBrush(QBrush(QColor(COLOURS[status])))
        self.setPen(QPen(QColor("white"), 1.2))
        self.setZValue(5)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, False)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)   # clicks go through the view's filter
        self.setToolTip(f"Request {key % 100000:05d}: {STATUS_TEXT[status]} (click for its timeline)")
        self.setData(NOT_EXPORTED, True)     # a live overlay: exported pictures show the topology only


def beside_card(key: int) -> QPointF:
    """Where a request's dot sits on its node, from the node's centre: in two columns on
    either side of the card, between the badges above it (queue, replicas) and those at
    its foot (copies up, primaries), never over the node's name below it (before
    2026-12-01 a ring all round the card hid the name and the queue of a saturated server)."""
    h = (key * 2654435761) >> 7 & 0xFFFF   # mixed: the followed keys are every N-th (all even at N = 10)
    side = 1.0 if h & 1 else -1.0
    column = (h >> 1) & 1
    row = (h >> 2) % 7
    return QPointF(side * (38.0 + 9.0 * column), -19.0 + 4.8 * row)   # y from -19 to 9.8


def dot_position(scene, trace: Any, status: str, index: int, now: float) -> QPointF | None:
    """Where a request is: approaching its node along the edge while it queues, on the
    node (spread around its centre) while in service or just ended."""
    hop = trace.hops[index]
    item = scene.nodes.get(hop.node)
    if item is None:
        return None
    centre = item.pos()
    on_node = centre + beside_card(trace.key)
    if status != "queueing" or index == 0:
        return on_node
    prev = scene.nodes.get(trace.hops[index - 1].node)
    if prev is None:
        return on_node
    until = hop.start_s if hop.start_s is not None else hop.end_s
    if not math.isfinite(until):   # waiting for a worker of a blocking server: for how long is not known yet
        f = 0.5
    else:
        f = 1.0 if until <= hop.arrived_s else min(1.0, max(0.0, (now - hop.arrived_s) / (until - hop.arrived_s)))
    # from the middle of the edge to the node's card, as the wait goes by
    a, b = prev.pos(), centre
    d = b - a
    length = math.hypot(d.x(), d.y()) or 1.0
    stop = max(0.5, 1.0 - 34.0 / length)
    t = 0.5 + (stop - 0.5) * f
    return a + d * t


# ----- the controller -----------------------------------------------------------------------
class FollowRequests(QObject):
    """The toggle, the every-N spin, the dots and the Requests dock of one window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.run = window.run
        self.scene = window.canvas.canvas_scene
        self.dots: list[TraceDot] = []
        self.selected: int | None = None
        self.action = QAction("&Follow requests", window, checkable=True)
        self.action.setObjectName("followRequests")
        self.action.setStatusTip("Record every Nth request and show where it is, hop by hop; "
                                 "click a dot for its timeline")
        self.action.toggled.connect(self.set_enabled)
        self.check = QCheckBox("Follow")
        self.check.setObjectName("followCheck")
        self.check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.check.setToolTip("Follow requests: draw every Nth request on the canvas (Step to watch them move)")
        self.check.toggled.connect(self.action.setChecked)
        self.action.toggled.connect(self.check.setChecked)
        self.spin = QSpinBox()
        self.spin.setObjectName("followEvery")
        self.spin.setRange(1, 1_000_000)
        self.spin.setValue(10)
        self.spin.setPrefix("every ")
        self.spin.setToolTip("Follow one request in N (the same requests in every run of this seed)")
        self.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.spin.valueChanged.connect(self._every_changed)
        self.list = QListWidget()
        self.list.setObjectName("requestList")
        self.list.currentItemChanged.connect(self._row_chosen)
        self.timeline = QPlainTextEdit()
        self.timeline.setObjectName("traceTimeline")
        self.timeline.setReadOnly(True)
        self.timeline.setPlaceholderText("Turn on Simulation → Follow requests, Step, then click a dot "
                                         "or a request in the list.")
        self.panel = QWidget()
        box = QVBoxLayout(self.panel)
        box.setContentsMargins(2, 2, 2, 2)
        self.hint = QLabel("Follow requests is off.")
        box.addWidget(self.hint)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.list)
        split.addWidget(self.timeline)
        box.addWidget(split)
        self.run.frame.connect(self.refresh)
        self.run.resetDone.connect(self.clear)
        window.controller.documentReplaced.connect(self._scene_rebuilt)
        window.canvas.viewport().installEventFilter(self)

    # ----- switching --------------------------------------------------------------------
    @property
    def every(self) -> int:
        return int(self.spin.value()) if self.action.isChecked() else 0

    def set_enabled(self, on: bool) -> None:
        self._apply()
        dock = self.window.docks.get("requests")
        if on and dock is not None:
            dock.show()
            dock.raise_()
        self.refresh()

    def _every_changed(self, _value: int) -> None:
        if self.action.isChecked():
            self._apply()
            self.refresh()

    def _apply(self) -> None:
        """Tell the run (and a simulation already running) which requests to record."""
        self.run.trace_every = self.every
        sim = self.run.sim
        if sim is not None and getattr(sim, "tracing", 0) != self.every:
            sim.trace_every(self.every or None)

    # ----- drawing ----------------------------------------------------------------------
    def _forget_dots(self) -> None:
        for d in self.dots:
            try:
                if d.scene() is self.scene:
                    self.scene.removeItem(d)
            except RuntimeError:   # already deleted with the scene's items
                pass
        self.dots = []

    def _scene_rebuilt(self) -> None:
        self.dots = []           # the scene dropped its items
        self.clear()

    def clear(self) -> None:
        self._forget_dots()
        self.list.clear()
        self.selected = None
        self.timeline.clear()
        self.hint.setText("Follow requests is on: Step to see them." if self.every else "Follow requests is off.")

    def traces(self) -> list:
        sim = self.run.sim
        return sim.traces() if sim is not None and self.every else []

    def refresh(self) -> None:
        self._forget_dots()
        traces = self.traces()
        if not self.every:
            self.hint.setText("Follow requests is off.")
            return
        sim = self.run.sim
        now = float(sim.now) if sim is not None else 0.0
        for tr in reversed(traces):            # the most recent first
            if len(self.dots) >= MAX_DOTS:
                break
            st = status_at(tr, now)
            if st is None:
                continue
            pos = dot_position(self.scene, tr, st[0], st[1], now)
            if pos is None:
                continue
            dot = TraceDot(tr.key, st[0])
            dot.setPos(pos)
            self.scene.addItem(dot)
            self.dots.append(dot)
        self._fill_list(traces)
        self.hint.setText(f"Following 1 request in {self.every}: {len(self.dots)} on the canvas at "
                          f"t = {now:.3f} s ({len(traces)} recorded).")
        if self.selected is not None:
            self.show_timeline(self.selected, select_row=False)

    def _fill_list(self, traces: list) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for tr in traces[-MAX_LISTED:][::-1]:
            if tr.outcome == "answered":
                state = f"answered {tr.latency_ms:.1f} ms"
            elif tr.outcome == "failed":
                state = f"failed: {_cause_text(tr.cause)}"
            else:
                state = "in flight"
            item = QListWidgetItem(f"{tr.key % 100000:05d} · t = {tr.birth_s:.3f} s · {state}")
            item.setData(Qt.ItemDataRole.UserRole, str(tr.key))   # keys are uint64
            self.list.addItem(item)
            if tr.key == self.selected:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    # ----- the timeline -----------------------------------------------------------------
    def label_of(self, node: str | None) -> str:
        item = self.scene.nodes.get(node or "")
        return (item.label or node) if item is not None else str(node)

    def show_timeline(self, key: int, select_row: bool = True) -> None:
        sim = self.run.sim
        tr = sim.trace(key) if sim is not None else None
        self.selected = key
        if tr is None:
            self.timeline.setPlainText("This request is no longer recorded (only the most recent are kept).")
            return
        self.timeline.setPlainText("\n".join(timeline_lines(tr, self.label_of)))
        if select_row:
            for i in range(self.list.count()):
                if self.list.item(i).data(Qt.ItemDataRole.UserRole) == str(key):
                    self.list.blockSignals(True)
                    self.list.setCurrentRow(i)
                    self.list.blockSignals(False)
                    break

    def _row_chosen(self, current: QListWidgetItem | None, _previous=None) -> None:
        if current is not None:
            self.show_timeline(int(current.data(Qt.ItemDataRole.UserRole)), select_row=False)

    def dot_at(self, view_pos) -> TraceDot | None:
        pos = self.window.canvas.mapToScene(view_pos)
        for d in self.dots:
            if (d.pos() - pos).manhattanLength() <= DOT_RADIUS * 2:
                return d
        return None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if (self.dots and event.type() == QEvent.Type.MouseButtonPress
                and event.button() == Qt.MouseButton.LeftButton):
            dot = self.dot_at(event.position().toPoint())
            if dot is not None:
                self.show_timeline(dot.key)
                dock = self.window.docks.get("requests")
                if dock is not None:
                    dock.show()
                    dock.raise_()
                return True
        return False


def install(window) -> FollowRequests:
    """Simulation → Follow requests, the Follow / every-N controls after the speed box,
    and the Requests dock (under the inspector, shown when following)."""
    from .compare_menu import menu_named
    follow = FollowRequests(window)
    window.follow = follow
    menu_named(window, "&Simulation").addAction(follow.action)
    bar = window.findChild(QToolBar, "mainToolbar")
    if bar is not None:
        actions = bar.actions()
        speed = next((i for i, a in enumerate(actions) if bar.widgetForAction(a) is window.speed_box), None)
        before = actions[speed + 1] if speed is not None and speed + 1 < len(actions) else None
        if before is not None:
            bar.insertWidget(before, follow.check)
            bar.insertWidget(before, follow.spin)
        else:
            bar.addWidget(follow.check)
            bar.addWidget(follow.spin)
    window._dock("requests", "Requests", follow.panel, Qt.DockWidgetArea.RightDockWidgetArea)
    window.splitDockWidget(window.docks["inspector"], window.docks["requests"], Qt.Orientation.Vertical)
    window.docks["requests"].hide()     # shown when Follow requests is turned on
    return follow
