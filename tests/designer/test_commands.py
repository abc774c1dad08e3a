"""Undo commands and the controller: every edit is one undo step that restores the document exactly."""
from __future__ import annotations

from pathlib import Path

import pytest

from designer.controller import DocumentController
from tests.designer.main_window_support import assert_undo_redo_replays
from simulation.fileformat import dumps, load
from simulation.params import FormatError

STARTER = Path(__file__).resolve().parents[2] / "resources" / "lessons" / "starter.scalelab"


@pytest.fixture
def ctl(qapp) -> DocumentController:
    return DocumentController(load(STARTER))


def test_add_node_has_a_readable_undo_text_and_default_label(ctl):
    node_id = ctl.add_node("server", 100, 40)
    assert node_id == "server1"
    assert ctl.document.node(node_id).label == "Server 1"
    assert ctl.undo_stack.undoText() == "Add Server"
    assert ctl.is_modified()
    ctl.undo_stack.undo()
    assert node_id not in ctl.document
    assert not ctl.is_modified()


def test_delete_and_undo_restores_the_document_exactly(ctl):
    before = dumps(ctl.document)
    ctl.remove_nodes(["web2", "lb"])
    assert "lb" not in ctl.document and not ctl.document.has_edge("users", "lb")
    assert ctl.undo_stack.undoText() == "Delete 2 nodes"
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before
    ctl.undo_stack.redo()
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before


def test_single_delete_text_names_the_node(ctl):
    ctl.remove_nodes(["web1"])
    assert ctl.undo_stack.undoText() == "Delete web1"


def test_connect_refuses_invalid_edges_with_the_reason(ctl):
    count = ctl.undo_stack.count()
    why = ctl.connect("db", "users")
    assert "cannot send traffic to a client" in why
    assert ctl.undo_stack.count() == count
    assert not ctl.document.has_edge("db", "users")
    srv = ctl.add_node("server", 0, 0)
    assert ctl.connect("lb", srv) == ""
    assert ctl.undo_stack.undoText() == f"Connect lb → {srv}"
    assert ctl.document.has_edge("lb", srv)


def test_sequence_of_edits_undoes_and_redoes_exactly(ctl):
    snapshots = [dumps(ctl.document)]
    srv = ctl.add_node("server", 460, 480)
    snapshots.append(dumps(ctl.document))
    ctl.connect("lb", srv)
    snapshots.append(dumps(ctl.document))
    ctl.move_nodes({srv: ((460, 480), (480, 500)), "db": ((700, 200), (720, 200))})
    assert ctl.undo_stack.undoText() == "Move 2 nodes"
    snapshots.append(dumps(ctl.document))
    ctl.set_params([srv, "web1"], {"capacity_rps": 250})
    assert ctl.undo_stack.undoText() == "Change capacity"
    snapshots.append(dumps(ctl.document))
    ctl.set_label("web1", "Primary web")
    snapshots.append(dumps(ctl.document))
    ctl.remove_edges([("lb", "web2"), ("web2", "db")])
    snapshots.append(dumps(ctl.document))
    ctl.remove_nodes(["lb"])
    snapshots.append(dumps(ctl.document))
    ctl.set_settings(seed=7)
    snapshots.append(dumps(ctl.document))
    ctl.set_meta(title="Changed")
    snapshots.append(dumps(ctl.document))
    assert_undo_redo_replays(ctl, snapshots)


def test_set_params_merges_a_burst_of_edits_to_one_field(ctl):
    before = dumps(ctl.document)
    count = ctl.undo_stack.count()
    for value in (110, 120, 130, 140):
        ctl.set_params(["web1", "web2"], {"capacity_rps": value})
    assert ctl.undo_stack.count() == count + 1
    assert ctl.document.param("web2", "capacity_rps") == 140
    ctl.set_params(["web1", "web2"], {"workers": 8})     # another field: a new step
    assert ctl.undo_stack.count() == count + 2
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before


def test_set_params_refuses_invalid_values_without_pushing(ctl):
    count = ctl.undo_stack.count()
    with pytest.raises(FormatError, match="must be > 0"):
        ctl.set_params(["web1"], {"capacity_rps": -5})
    with pytest.raises(FormatError):
        ctl.set_params(["web1"], {"no_such_param": 1})
    assert ctl.undo_stack.count() == count
    assert ctl.document.param("web1", "capacity_rps") == 100


def test_copy_paste_creates_fresh_ids_and_the_edges_among_them(ctl):
    text = ctl.copy_nodes(["lb", "web1"])
    new_ids = ctl.paste(text)
    assert len(new_ids) == 2 and not {"lb", "web1"} & set(new_ids)
    lb2, web = new_ids
    assert ctl.document.kind(lb2) == "load_balancer"
    assert ctl.document.has_edge(lb2, web)
    assert ctl.document.node(web).x == ctl.document.node("web1").x + 40
    assert ctl.undo_stack.undoText() == "Paste"
    again = ctl.paste()                      # from the system clipboard, shifted further
    assert len(again) == 2 and not set(again) & set(new_ids)
    assert ctl.document.node(again[1]).x == ctl.document.node("web1").x + 80


def test_paste_ignores_foreign_text(ctl):
    count = ctl.undo_stack.count()
    assert ctl.paste("hello") == []
    assert ctl.undo_stack.count() == count


def test_duplicate_and_cut(ctl):
    before = dumps(ctl.document)
    dup = ctl.duplicate(["web3"])
    assert len(dup) == 1 and ctl.document.params(dup[0]) == ctl.document.params("web3")
    ctl.undo_stack.undo()
    ctl.cut(["web3"])
    assert "web3" not in ctl.document
    assert ctl.undo_stack.undoText() == "Cut web3"
    pasted = ctl.paste()
    assert ctl.document.kind(pasted[0]) == "server"
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert dumps(ctl.document) == before


def test_set_document_replaces_and_clears_the_stack(ctl, qtbot):
    ctl.add_node("cache", 0, 0)
    other = load(STARTER)
    seen = []
    ctl.nodeAdded.connect(seen.append)
    with qtbot.waitSignal(ctl.documentReplaced):
        ctl.set_document(other)
    assert ctl.undo_stack.count() == 0 and not ctl.is_modified()
    ctl.add_node("cache", 0, 0)
    assert seen == ["cache1"]


def test_signals_follow_the_document(ctl, qtbot):
    with qtbot.waitSignal(ctl.nodeChanged) as blocker:
        ctl.set_label("web1", "W")
    assert blocker.args == ["web1", "label"]
    with qtbot.waitSignal(ctl.edgeRemoved):
        ctl.remove_edges([("lb", "web1")])


def test_deleting_a_node_takes_its_scheduled_events_along_and_undo_brings_them_back(ctl):
    from simulation.document import ScheduledEvent
    from simulation.fileformat import loads
    doc = ctl.document
    doc.insert_event(0, ScheduledEvent(30.0, "fail", "web2"))
    doc.insert_event(1, ScheduledEvent(40.0, "fail", "web1"))
    doc.insert_event(2, ScheduledEvent(90.0, "recover", "web2"))
    before = dumps(doc)
    ctl.remove_nodes(["web2"])
    assert [e.node for e in doc.events] == ["web1"]
    loads(dumps(doc))                      # the saved file opens again
    ctl.undo_stack.undo()
    assert dumps(doc) == before
