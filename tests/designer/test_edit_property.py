"""Property: whatever a user does through the edit paths (inspector fields, labels,
paste, scheduled events, moves, undo/redo), Save writes a file that opens again as
exactly the same lesson. Hostile values (over-long or invalid text, out-of-range
numbers, min > max, far-away positions) are thrown at every path; a refusal is fine,
an unreadable file is not."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from designer.canvas.clipboard import nodes_to_clip
from designer.controller import DocumentController
from designer.inspector import Inspector
from designer.validation import writable_text
from simulation.document import ScheduledEvent
from simulation.fileformat import atomic_write_text, dumps, load
from simulation.kinds import EVENT_ACTIONS, KINDS
from simulation.params import FormatError
from tests.designer.main_window_support import LESSONS

KIND_NAMES = list(KINDS)
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.one_of(st.text(max_size=30), st.text(min_size=190, max_size=230),
                 st.lists(st.one_of(st.characters(), SURROGATES), max_size=12).map("".join))
NUMBER = st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0, 1, 2, 3, 5, 8, 12, 100, 1e7, 2e7]))
VALUE = st.one_of(NUMBER, st.booleans(), st.sampled_from(["round_robin", "sticky", "local", "exp", ""]), TEXT)

EDIT = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(KIND_NAMES), NUMBER, NUMBER),
    st.tuples(st.just("param"), st.integers(0, 50), st.integers(0, 60), VALUE),
    st.tuples(st.just("inspector_param"), st.integers(0, 50), st.integers(0, 60), VALUE),
    st.tuples(st.just("label"), st.integers(0, 50), TEXT),
    st.tuples(st.just("inspector_label"), st.integers(0, 50), TEXT),
    st.tuples(st.just("meta"), st.sampled_from(["title", "notes"]), TEXT),
    st.tuples(st.just("event"), st.floats(-5, 2e7), st.sampled_from(list(EVENT_ACTIONS)), st.integers(0, 50),
              st.one_of(st.none(), st.integers(-1, 12))),
    st.tuples(st.just("paste"), st.integers(0, 50), st.sampled_from(["label", "min_replicas", "x", "param"]), VALUE),
    st.tuples(st.just("connect"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("move"), st.integers(0, 50), NUMBER, NUMBER),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


def pick(doc, index: int) -> str | None:
    ids = doc.node_ids()
    return ids[index % len(ids)] if ids else None


def param_of(doc, node_id: str, index: int):
    params = [p for p in KINDS[doc.kind(node_id)].params]
    return params[index % len(params)]


def apply(ctl: DocumentController, inspector: Inspector, edit: tuple) -> None:
    doc = ctl.document
    op = edit[0]
    if op == "add":
        ctl.add_node(edit[1], edit[2], edit[3])
    elif op in ("param", "inspector_param") and (node := pick(doc, edit[1])):
        p = param_of(doc, node, edit[2])
        if op == "param":
            ctl.set_params([node], {p.name: edit[3]})
        else:
            inspector.set_selection([node])
            row = inspector.rows.get(p.name)
            if row is not None:
                row._on_edited(edit[3])               # what the field hands on when a value is committed
            elif inspector.pattern is not None and p.name == inspector.pattern.param.name:
                inspector.pattern._send({"type": "spike", "factor": edit[3]})
    elif op == "label" and (node := pick(doc, edit[1])):
        ctl.set_label(node, edit[2])
    elif op == "inspector_label" and (node := pick(doc, edit[1])):
        inspector.set_selection([node])
        inspector.label_edit.setText(edit[2])
        inspector._commit_label()
    elif op == "meta":
        ctl.set_meta(**{edit[1]: edit[2]})
    elif op == "event" and (node := pick(doc, edit[3])):
        ctl.add_event(ScheduledEvent(edit[1], edit[2], node, edit[4]))
    elif op == "paste" and (node := pick(doc, edit[1])):
        clip = json.loads(nodes_to_clip(doc, [node]))
        raw = clip["nodes"][0]
        if edit[2] == "label":
            raw["label"] = edit[3]
        elif edit[2] == "x":
            raw["x"] = edit[3]
        elif edit[2] == "min_replicas":
            raw["params"]["min_replicas"] = edit[3]
        else:
            raw["params"][param_of(doc, node, 7).name] = edit[3]
        ctl.paste(json.dumps(clip))
    elif op == "connect" and (a := pick(doc, edit[1])) and (b := pick(doc, edit[2])):
        ctl.connect(a, b)
    elif op == "move" and (node := pick(doc, edit[1])):
        x, y = doc.node(node).x, doc.node(node).y
        if all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for v in (edit[2], edit[3])):
            ctl.move_nodes({node: ((x, y), (x + edit[2], y + edit[3]))})
    elif op == "delete" and (node := pick(doc, edit[1])):
        ctl.remove_nodes([node])
    elif op == "undo" and ctl.undo_stack.canUndo():
        ctl.undo_stack.undo()
    elif op == "redo" and ctl.undo_stack.canRedo():
        ctl.undo_stack.redo()


@pytest.fixture(scope="module")
def editors(qapp):
    ctl = DocumentController(load(LESSONS / "starter.scalelab"))
    inspector = Inspector(ctl)
    yield ctl, inspector
    inspector.deleteLater()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(edits=st.lists(EDIT, min_size=1, max_size=25), start=st.sampled_from(sorted(LESSONS.glob("*.scalelab"))))
def test_random_edits_always_save_a_file_that_reopens_equal(editors, tmp_path_factory, edits, start):
    ctl, inspector = editors
    ctl.set_document(load(start))
    inspector.set_selection([])
    for edit in edits:
        try:
            apply(ctl, inspector, edit)
        except FormatError:
            pass                                        # refused, with its reason: nothing changed
        text = writable_text(ctl.document)              # after every step: the loader reads it back
        assert dumps(load_text(text)) == text
    path = tmp_path_factory.mktemp("saved") / "edited.scalelab"
    atomic_write_text(path, writable_text(ctl.document))
    again = load(path)
    assert dumps(again) == dumps(ctl.document)


def load_text(text: str):
    from simulation.fileformat import loads
    return loads(text)
