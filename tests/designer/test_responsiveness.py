"""Big valid lessons open and run without freezing the window.

Measured with an event-loop heartbeat (the longest time the window could not answer),
with generous limits for a loaded 2-core machine: before the fixes, 5,000 scheduled
events froze the window for 79 s, 100,000 never finished, a million-character note
took minutes. Precise timings are in benchmarks/gui_bench.py.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer

from designer import notes as notes_module
from tests.designer.main_window_support import Dialogs, open_main_window
from tests.designer.responsiveness import Heartbeat, lesson, open_from_loop, write_lesson


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    Dialogs(monkeypatch)
    win = open_main_window(qtbot, tmp_path, monkeypatch)
    win.plots                                     # noqa: B018 - built now, not during the measurement
    yield win
    win.run.reset()
    win.files.remove_recovery()


def test_5000_scheduled_events_open_and_are_marked_by_one_item_per_plot(qtbot, window, tmp_path):
    plot = window.plots.plots["throughput"]
    items_before = len(plot.vb.addedItems)
    path = write_lesson(tmp_path / "events.scalelab", lesson(events=5000))
    beat = Heartbeat().start()
    assert open_from_loop(qtbot, window, path)
    gap = beat.stop()
    assert gap < 2.0, f"the window did not answer for {gap:.2f} s"
    assert len(window.controller.document.events) == 5000
    assert len(plot.vb.addedItems) == items_before              # no item per event
    markers = window.plots.event_markers["throughput"]
    assert markers.count() == 5000
    first, counts = markers.visible_columns()
    assert 0 < len(first) <= plot.vb.width() + 1                # at most one line per pixel column
    assert counts.sum() == 5000                                  # every event is under some line
    window.controller.undo_stack.clear()


def test_100000_scheduled_events_open_and_list(qtbot, window, tmp_path):
    path = write_lesson(tmp_path / "many.scalelab", lesson(events=100_000))
    beat = Heartbeat().start()
    assert open_from_loop(qtbot, window, path)
    gap = beat.stop()
    assert gap < 3.0, f"the window did not answer for {gap:.2f} s"
    window.inspector.set_selection([])
    model = window.inspector.events_editor.model
    assert model.rowCount() == 100_000
    assert model.index(99_999, 2).data() == "Web 1" and model.index(1, 1).data() == "recover"


def test_a_million_character_note_opens_as_plain_text_with_a_note(qtbot, window, tmp_path):
    path = write_lesson(tmp_path / "notes.scalelab", lesson(notes="x" * 1_000_000))   # one huge word
    beat = Heartbeat().start()
    assert open_from_loop(qtbot, window, path)
    gap = beat.stop()
    assert gap < 3.0, f"the window did not answer for {gap:.2f} s"
    panel = window.notes
    assert panel.plain
    shown = panel.toPlainText()
    assert shown.startswith("(These notes are 1,000,000 characters long: the first 50,000 are shown as plain text.")
    assert shown.split("\n\n", 1)[1].count("x") == notes_module.MAX_MARKDOWN
    inspector = window.inspector
    inspector.set_selection([])
    # The inspector shows a short read-only preview until asked for the whole text.
    assert inspector.notes_edit.isReadOnly() and inspector.notes_load.isVisible()
    assert inspector.notes_edit.toPlainText().startswith("(These notes are 1,000,000 characters long.")
    beat = Heartbeat().start()
    QTimer.singleShot(0, lambda: qtbot.mouseClick(inspector.notes_load, Qt.MouseButton.LeftButton))
    qtbot.waitUntil(lambda: not inspector.notes_edit.isReadOnly(), timeout=60_000)
    qtbot.wait(300)
    gap = beat.stop()
    assert gap < 3.0, f"loading the notes into the editor froze the window for {gap:.2f} s"
    assert inspector.notes_edit.toPlainText() == "x" * 1_000_000              # all of it, editable
    assert not inspector.notes_load.isVisible()
    # Short notes with normal words are still Markdown.
    assert not notes_module.needs_plain("# Title\n\n" + "word " * 5000)


@pytest.mark.parametrize("rate", [100_000, 1_000_000])
def test_a_heavy_client_runs_while_the_window_keeps_answering(qtbot, window, tmp_path, rate):
    # Engine calls are sized to ~10 ms and run on a worker thread: even a call that takes
    # seconds (a million requests per second) leaves the event loop answering.
    path = write_lesson(tmp_path / "heavy.scalelab", lesson(rate=rate))
    assert open_from_loop(qtbot, window, path)
    window.run.set_speed(None)                    # Max: as fast as the engine goes
    beat = Heartbeat().start()
    window.run.run()
    qtbot.wait(3000)
    window.run.pause()
    gap = beat.stop()
    assert window.run.now > 0
    assert gap < 0.4, f"the window did not answer for {gap:.2f} s"
    assert beat.beats >= 30                       # on average the loop answered every 100 ms
