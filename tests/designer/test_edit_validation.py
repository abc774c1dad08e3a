"""Every edit path applies the loader's rules: the designer never holds (or writes) a
lesson it could not open again. Inspector, canvas label editor, paste, events editor,
and Save itself."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from designer.canvas.clipboard import nodes_to_clip
from designer.controller import DocumentController
from designer.inspector import Inspector
from designer.validation import writable_text
from simulation import fileformat
from simulation.document import ScheduledEvent
from simulation.fileformat import dumps, load, loads
from simulation.params import FormatError
from tests.designer.main_window_support import LESSONS, Dialogs, open_main_window

STARTER = LESSONS / "starter.scalelab"


def type_label(qtbot, inspector, text: str) -> None:
    edit = inspector.label_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_inspector_refuses_a_201_character_label_with_the_reason(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1"])
    steps = controller.undo_stack.count()
    type_label(qtbot, inspector, "x" * 201)
    error = inspector.text_errors["label"]
    assert error.isVisible()
    assert error.text() == "Refused: is too long (201 characters; at most 200)"
    assert controller.document.node("web1").label == "Web 1"
    assert inspector.label_edit.text() == "Web 1"              # the field shows what the document holds
    assert controller.undo_stack.count() == steps
    type_label(qtbot, inspector, "y" * 200)                     # the loader's limit itself is fine
    assert controller.document.node("web1").label == "y" * 200
    assert not error.isVisible()
    assert load_text_round_trip(controller) == "y" * 200


def type_into_spin(qtbot, inspector, name: str, text: str) -> None:
    spin = inspector.rows[name].editor.widget
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def load_text_round_trip(controller) -> str:
    return loads(writable_text(controller.document)).node("web1").label


def test_a_lone_surrogate_is_refused_by_the_loader_and_by_every_edit(qtbot, setup, tmp_path):
    controller, inspector = setup
    # A file can spell one (JSON "\ud800"): the loader refuses it, naming the place.
    data = json.loads(STARTER.read_text(encoding="utf-8"))
    data["nodes"][2]["label"] = "Web \ud800"
    bad = tmp_path / "surrogate.scalelab"
    bad.write_text(json.dumps(data), encoding="utf-8")        # ensure_ascii: written as \ud800
    with pytest.raises(FormatError) as err:
        load(bad)
    assert err.value.message == "contains an invalid character (a lone surrogate U+D800 at position 4)"
    assert err.value.where.endswith("label") and ("nodes[2]" in err.value.where or '"web1"' in err.value.where)
    data["nodes"][2]["label"] = "Web 1"
    data["meta"]["notes\udfff"] = "x"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FormatError, match="lone surrogate U\\+DFFF"):
        load(bad)
    # The controller refuses it from any caller (the inspector's line edit cannot even hold one).
    with pytest.raises(FormatError, match="lone surrogate U\\+D800 at position 1"):
        controller.set_label("web1", "a\ud800")
    with pytest.raises(FormatError, match="lone surrogate"):
        controller.set_meta(title="T\udc00")
    inspector.set_selection(["web1"])
    inspector.label_edit.setText("a\ud800b")                   # Qt drops the lone half
    inspector._commit_label()
    assert controller.document.node("web1").label == "ab"
    dumps(controller.document).encode("utf-8")                 # still writable


def test_min_replicas_above_max_is_refused_in_the_inspector_and_nothing_is_pushed(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1"])
    steps = controller.undo_stack.count()
    type_into_spin(qtbot, inspector, "min_replicas", "12")     # max_replicas is 10
    spin = inspector.rows["min_replicas"].editor.widget
    row = inspector.rows["min_replicas"]
    assert row.error.isVisible()
    assert row.error.text() == "Refused: must be ≤ max_replicas (10), got 12"
    assert controller.document.params("web1")["min_replicas"] == 1
    assert controller.undo_stack.count() == steps             # no half-applied command on the stack
    assert spin.value() == 1


def test_a_refusal_beside_a_field_goes_once_another_edit_goes_through(qtbot, setup):
    controller, inspector = setup
    inspector.set_selection(["web1"])
    type_into_spin(qtbot, inspector, "min_replicas", "12")     # refused: max_replicas is 10
    type_label(qtbot, inspector, "x" * 201)                     # refused: too long
    min_error, label_error = inspector.rows["min_replicas"].error, inspector.text_errors["label"]
    assert min_error.isVisible() and label_error.isVisible()
    type_into_spin(qtbot, inspector, "max_replicas", "12")     # another field, accepted
    assert controller.document.params("web1")["max_replicas"] == 12
    assert not min_error.isVisible() and not label_error.isVisible()
    assert inspector.rows["min_replicas"].editor.widget.value() == 1   # the field still shows the value in force
    type_into_spin(qtbot, inspector, "min_replicas", "13")     # refused again: its own error is back
    assert min_error.isVisible() and min_error.text() == "Refused: must be ≤ max_replicas (12), got 13"


def test_fewer_replicas_than_a_scheduled_event_needs_is_refused(setup):
    controller, _ = setup
    controller.set_params(["web1"], {"replicas": 3})
    controller.add_event(ScheduledEvent(10.0, "fail", "web1", 2))
    with pytest.raises(FormatError, match="fail replica 2 at 10 s"):
        controller.set_params(["web1"], {"replicas": 2})
    assert controller.document.params("web1")["replicas"] == 3
    loads(writable_text(controller.document))
    with pytest.raises(FormatError, match="must be ≤ 2, got 3"):   # an event for a replica that does not exist
        controller.add_event(ScheduledEvent(10.0, "fail", "web1", 3))


def clip_of(controller, ids, change) -> str:
    data = json.loads(nodes_to_clip(controller.document, ids))
    change(data)
    return json.dumps(data)


# The reason names the place in the clip (first node or second edge) and the field.
@pytest.mark.parametrize("change, reason", [
    (lambda d: d["nodes"][0]["params"].update(min_replicas=8, max_replicas=3),
     "min_replicas: must be ≤ max_replicas (3), got 8"),
    (lambda d: d["nodes"][0].update(label="L" * 201),
     "label: is too long (201 characters; at most 200)"),
    (lambda d: d["nodes"][0].update(label="bad \udc80"),
     "label: contains an invalid character (a lone surrogate U+DC80 at position 4)"),
    (lambda d: d["nodes"][0].update(x=1e7),
     "x: must be ≤ 10000000, got 10000040"),
    (lambda d: d["edges"].append({"source": "db", "target": "web1"}),
     "edges[1]: a database does not send traffic anywhere: it is the end of a request's path"),
])
def test_paste_of_a_bad_clip_is_refused_with_the_reason(setup, change, reason):
    controller, _ = setup
    refused = []
    controller.editRefused.connect(refused.append)
    before = dumps(controller.document)
    text = clip_of(controller, ["web1", "db"], change)
    assert controller.paste(text) == []
    assert dumps(controller.document) == before and controller.undo_stack.count() == 0
    assert len(refused) == 1
    assert refused[0].startswith("Nothing pasted: clipboard.") and refused[0].endswith(reason), refused[0]
    assert "edges[1]" in refused[0] or "nodes[0]" in refused[0]


def test_label_editor_on_the_canvas_refuses_a_long_label_in_the_status_bar(qtbot, tmp_path, monkeypatch):
    Dialogs(monkeypatch)
    win = open_main_window(qtbot, tmp_path, monkeypatch)
    editor = win.canvas.edit_label("web2")
    editor.setPlainText("z" * 250)
    qtbot.keyClick(win.canvas.viewport(), Qt.Key.Key_Return)     # the editor has the focus: Enter commits
    assert win.controller.document.node("web2").label == "Web 2"
    assert win.statusBar().currentMessage() == "Label not changed: is too long (250 characters; at most 200)"
    win.files.remove_recovery()


def test_notes_longer_than_the_loader_allows_are_refused(setup, monkeypatch):
    controller, inspector = setup
    monkeypatch.setattr(fileformat, "MAX_TEXT", 1000)
    inspector.set_selection([])
    inspector.notes_edit.setPlainText("n" * 1001)
    inspector._commit_notes()
    assert inspector.text_errors["notes"].text() == ("Refused: is too long (1001 characters; at most 1000); "
                                                    "the notes were not changed")
    assert controller.document.meta["notes"] != "n" * 1001


def test_events_editor_refuses_an_event_beyond_the_files_limit(setup, monkeypatch):
    controller, inspector = setup
    monkeypatch.setattr(fileformat, "MAX_EVENTS", 2)
    editor = inspector.events_editor
    editor.add_button.click()
    editor.add_button.click()
    assert len(controller.document.events) == 2
    editor.add_button.click()
    assert len(controller.document.events) == 2
    assert editor.error.text() == "Refused: events: too many events (at most 2)"


def test_save_refuses_to_write_what_it_could_not_read_and_autosave_reports(qtbot, tmp_path, monkeypatch):
    dialogs = Dialogs(monkeypatch)
    win = open_main_window(qtbot, tmp_path, monkeypatch)
    target = tmp_path / "kept.scalelab"
    dialogs.save_path = str(target)
    win.controller.set_params(["web1"], {"capacity_rps": 120.0})
    assert win.file_save()
    good = target.read_text(encoding="utf-8")
    # A document changed behind the controller's back (a bug elsewhere): Save must refuse.
    win.controller.document.node("web1").label = "w" * 300
    win.controller.set_params(["web2"], {"capacity_rps": 130.0})
    assert not win.file_save()
    kind, title, text = dialogs.shown[-1]
    assert (kind, title) == ("critical", "Cannot save")
    assert "label: is too long (300 characters; at most 200)" in text and ("web1" in text or "nodes[2]" in text)
    assert target.read_text(encoding="utf-8") == good          # the old file is untouched
    # A lone surrogate slipped in: Save is a dialog, autosave a status-bar message, neither raises.
    win.controller.document.node("web1").label = "bad \ud800"
    assert not win.file_save()
    assert dialogs.shown[-1][1] == "Cannot save" and "invalid character" in dialogs.shown[-1][2]
    assert not win.files.autosave()
    assert win.statusBar().currentMessage().startswith("Autosave failed, unsaved changes are not protected:")
    win.controller.document.node("web1").label = "Web 1"
    assert win.files.autosave()
    assert load(win.files.recovery_path).params("web2")["capacity_rps"] == 130.0
    win.files.remove_recovery()
