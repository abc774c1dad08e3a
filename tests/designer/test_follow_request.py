"""Follow requests: a user turns it on, steps, sees dots on the canvas and clicks
one (or a row of the Requests list) to read its timeline."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from designer.trace_view import MAX_DOTS, TraceDot, timeline_lines
from tests.designer.main_window_support import open_main_window


def _step_button(window):
    bar = window.findChild(QToolBar, "mainToolbar")
    return bar.widgetForAction(window.actions_["step"])


def _turn_on(qtbot, window, every: int) -> None:
    follow = window.follow
    spin = follow.spin
    qtbot.mouseClick(follow.check, Qt.MouseButton.LeftButton)
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, str(every))
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert follow.action.isChecked() and spin.value() == every
    assert window.run.trace_every == every


def _click_dot(qtbot, window, dot: TraceDot) -> None:
    view = window.canvas
    view.centerOn(dot.pos())
    point = view.mapFromScene(dot.pos())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_follow_requests_draws_dots_and_shows_a_timeline(qtbot, tmp_path, monkeypatch):
    window = open_main_window(qtbot, tmp_path, monkeypatch, lesson="lb_demo.scalelab")
    follow = window.follow
    assert window.findChild(QToolBar, "mainToolbar").widgetForAction(window.actions_["step"]) is not None
    assert follow.action in window.menuBar().findChildren(type(follow.action)) or follow.action.text()
    _turn_on(qtbot, window, 3)
    for _ in range(3):
        qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    sim = window.run.sim
    assert sim.tracing == 3 and sim.now >= 2.9
    dots = [d for d in follow.dots if d.scene() is window.canvas.canvas_scene]
    assert 0 < len(dots) <= MAX_DOTS
    assert {d.status for d in dots} <= {"queueing", "in_service", "answered", "failed"}
    assert all(d.key % 3 == 0 for d in dots)
    # each dot is drawn near the node its request is at (or on the edge leading to it)
    scene = window.canvas.canvas_scene
    for d in dots:
        tr = sim.trace(d.key)
        node = scene.nodes[tr.hops[-1].node] if d.status in ("answered", "failed") else None
        if node is not None:   # beside its card (trace_view.beside_card)
            off = d.pos() - node.pos()
            assert (off.x() ** 2 + off.y() ** 2) ** 0.5 < 55
    # a click on a dot shows its timeline, one line per hop with the nodes' labels
    dot = dots[0]
    _click_dot(qtbot, window, dot)
    text = follow.timeline.toPlainText()
    assert follow.selected == dot.key
    tr = sim.trace(dot.key)
    lines = text.splitlines()
    assert len(lines) == len(tr.hops) + 2
    assert "arrived at Load balancer" in lines[1]
    assert re.search(r"served 1\.0 ms|waited", lines[1])
    if len(tr.hops) > 1:
        assert re.search(r"→ Web [123]", lines[1])
        assert re.search(r"arrived at Web [123]; waited \d+\.\d ms", lines[2])
    # choosing a request in the Requests list shows its timeline too
    row = follow.list.item(follow.list.count() - 1)
    rect = follow.list.visualItemRect(row)
    window.docks["requests"].raise_()
    follow.list.scrollToItem(row)
    rect = follow.list.visualItemRect(row)
    qtbot.mouseClick(follow.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    key = int(row.data(Qt.ItemDataRole.UserRole))
    assert follow.selected == key
    assert follow.timeline.toPlainText().splitlines()[0].startswith(f"Request {key % 100000:05d}")


def test_a_request_sent_to_the_dead_server_says_why_it_failed(qtbot, tmp_path, monkeypatch):
    window = open_main_window(qtbot, tmp_path, monkeypatch, lesson="lb_demo.scalelab")
    follow = window.follow
    _turn_on(qtbot, window, 1)
    window.run.step(30.0)                      # Web 2 dies at 30 s (the lesson's event)
    qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    failed = [d for d in follow.dots if d.status == "failed"]
    assert failed, "requests sent to Web 2 after it died are drawn as failed"
    _click_dot(qtbot, window, failed[0])
    text = follow.timeline.toPlainText()
    assert "failed: backend down at Web 2" in text
    assert "→ Web 2" in text


def test_turning_it_off_removes_the_dots(qtbot, tmp_path, monkeypatch):
    window = open_main_window(qtbot, tmp_path, monkeypatch, lesson="lb_demo.scalelab")
    follow = window.follow
    _turn_on(qtbot, window, 2)
    qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    assert follow.dots
    window.menuBar()   # the same switch is Simulation → Follow requests
    follow.action.trigger()
    assert not follow.check.isChecked() and not follow.dots
    assert window.run.sim.tracing == 0
    qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    assert not follow.dots


def test_a_request_waiting_for_a_worker_of_a_blocking_server_is_drawn_queueing_there(qtbot, tmp_path, monkeypatch,
                                                                                   dialogs):
    """A blocking web tier, saturated: a request waiting in its room, whose turn is not
    known yet (the database's answers decide it), is drawn at the web server, and its
    timeline says it waits for a worker (before 2026-12-01 it vanished
    until its turn was known)."""
    from simulation.fileformat import dumps
    from tests.simulation.topologies import saturated_sync_tier
    path = tmp_path / "sync.scalelab"
    path.write_text(dumps(saturated_sync_tier()), encoding="utf-8")
    window = open_main_window(qtbot, tmp_path, monkeypatch)
    assert window.open_file(path)
    follow = window.follow
    _turn_on(qtbot, window, 1)
    window.run.step(5.0)
    qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    sim = window.run.sim
    waiting = [d for d in follow.dots if d.status == "queueing" and sim.trace(d.key).hops[-1].undecided]
    assert waiting, "requests waiting undecided at the web server are drawn"
    web = window.canvas.canvas_scene.nodes["web"].pos()
    dot = waiting[0]
    assert (dot.pos() - web).manhattanLength() < 60   # at the web server (its first hop)
    lines = timeline_lines(sim.trace(dot.key), lambda node: node)
    assert lines[-2].endswith("arrived at web; waiting for a worker (still there)")


def test_the_dots_on_a_node_leave_its_name_and_badges_readable(qtbot, tmp_path, monkeypatch, dialogs):
    """A saturated server holds dozens of followed requests: their dots sit beside its card,
    not over its name below it nor over its queue and replica badges above it (before
    2026-12-01 a ring of dots all round the card hid both)."""
    from designer.canvas import look
    from designer.trace_view import DOT_RADIUS
    from simulation.fileformat import dumps
    from tests.simulation.topologies import saturated_sync_tier
    path = tmp_path / "sync.scalelab"
    path.write_text(dumps(saturated_sync_tier()), encoding="utf-8")
    window = open_main_window(qtbot, tmp_path, monkeypatch)
    assert window.open_file(path)
    _turn_on(qtbot, window, 1)
    window.run.step(3.0)
    qtbot.mouseClick(_step_button(window), Qt.MouseButton.LeftButton)
    node = window.canvas.canvas_scene.nodes["web"]
    _, lines, label = node.label_layout(1.0)
    assert lines
    top_badges = look.TOP_BADGE_EDGE          # they grow upwards from here
    foot_badges = look.BOTTOM_BADGE_EDGE - look.BADGE_H
    on_web = [d for d in window.follow.dots if (d.pos() - node.pos()).manhattanLength() < 80]
    assert len(on_web) > 20
    for dot in on_web:
        p = dot.pos() - node.pos()
        box = dot.rect().translated(p)
        assert not box.intersects(label), (p, label)
        assert box.top() >= top_badges and box.bottom() <= foot_badges, p
        assert abs(p.x()) - DOT_RADIUS >= look.CARD.right() - 1, p   # beside the card, not on it
