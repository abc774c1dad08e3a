"""Annotations in the file: located messages, limits, an exact round trip, the schema agrees
with the loader, and the engine gives the same numbers with and without them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation import annotations as notes
from simulation import fileformat
from simulation.annotations import Arrow, TextNote
from simulation.engine import Simulation
from simulation.params import FormatError
from simulation.schema import build_schema
from tests.simulation.test_schema import validate

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"
TEXT = {"type": "text", "x": 10, "y": -20, "text": "Look here"}
ARROW = {"type": "arrow", "x1": 0, "y1": 0, "x2": 40, "y2": 30}


def doc_with(*annotations) -> dict:
    data = json.loads((LESSONS / "starter.scalelab").read_text(encoding="utf-8"))
    data["annotations"] = list(annotations)
    return data


def error_of(data: dict) -> str:
    with pytest.raises(FormatError) as info:
        fileformat.loads(json.dumps(data))
    return str(info.value)


BAD = {
    "not a list": ({"type": "text"}, "annotations: must be a list of annotations, got an object"),
    "not an object": ([TEXT, ARROW, "hello"],
                      'annotations[2]: must be an object like {"type": "text", "x": 0, "y": 0, "text": "..."}, '
                      "got 'hello'"),
    "text too long": ([TEXT, ARROW, dict(TEXT, text="x" * 2345)],
                      "annotations[2].text: is too long (2,345 characters; at most 2,000)"),
    "empty text": ([dict(TEXT, text="  \n")], "annotations[0].text: must not be empty"),
    "text a number": ([dict(TEXT, text=5)], "annotations[0].text: must be a string, got 5"),
    "no type": ([{"x": 1}], "annotations[0].type: is missing (text or arrow)"),
    "unknown type": ([dict(TEXT, type="circle")],
                     'annotations[0].type: unknown annotation type "circle" (known: text, arrow)'),
    "missing field": ([{"type": "arrow", "x1": 0, "y1": 0, "x2": 5}], "annotations[0].y2: is missing"),
    "field of the other type": ([dict(ARROW, text="hi")],
                                "annotations[0].text: unknown field for an arrow annotation "
                                "(known: type, x1, y1, x2, y2, color)"),
    "bad colour": ([dict(ARROW, color="pink")],
                   "annotations[0].color: must be one of default, blue, red, green, orange, purple, got 'pink'"),
    "coordinate too far": ([dict(TEXT, x=2e7)], "annotations[0].x: must be ≤ 10000000, got 20000000"),
    "coordinate a string": ([dict(ARROW, y1="3")], "annotations[0].y1: must be a number, got '3'"),
    "width too small": ([dict(TEXT, width=10)], "annotations[0].width: must be ≥ 40, got 10"),
    "width too large": ([dict(TEXT, width=5000)], "annotations[0].width: must be ≤ 2000, got 5000"),
    "arrow of no length": ([dict(ARROW, x2=0, y2=0)],
                           "annotations[0]: an arrow's two ends must differ (x1, y1 is x2, y2)"),
    "too many": ([ARROW] * 501, "annotations: too many annotations (501; at most 500)"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_annotations_are_refused_with_their_place(name: str) -> None:
    raw, message = BAD[name]
    data = doc_with()
    data["annotations"] = raw
    assert error_of(data) == message


@pytest.mark.parametrize("name", [n for n in BAD if n not in ("too many", "empty text", "arrow of no length")])
def test_the_schema_refuses_what_the_loader_refuses(name: str) -> None:
    """(A blank text, an arrow of no length and 501 items are loader-only checks, like unique ids.)"""
    data = doc_with()
    data["annotations"] = BAD[name][0]
    schema = build_schema()
    assert validate(data, schema, schema), f"the schema accepts {name}"


def test_the_limits_themselves_are_accepted() -> None:
    longest = dict(TEXT, text="é" * notes.MAX_TEXT, width=notes.MAX_WIDTH, x=-1e7, y=1e7)
    narrow = dict(TEXT, width=notes.MIN_WIDTH)
    data = doc_with(*([longest, narrow] + [ARROW] * (notes.MAX_ANNOTATIONS - 2)))
    doc = fileformat.loads(json.dumps(data))
    assert len(doc.annotations) == 500
    assert doc.annotations[0] == TextNote(-1e7, 1e7, "é" * 2000, 2000.0)
    schema = build_schema()
    assert validate(data, schema, schema) == []


def test_round_trip_is_exact_and_writes_only_what_was_given() -> None:
    given = [TEXT, dict(TEXT, text="Two\nlines, «ünïcode»", width=300, color="blue"),
             ARROW, dict(ARROW, x1=-5.5, color="red")]
    doc = fileformat.loads(json.dumps(doc_with(*given)))
    assert doc.annotations == [TextNote(10.0, -20.0, "Look here"),
                               TextNote(10.0, -20.0, "Two\nlines, «ünïcode»", 300.0, "blue"),
                               Arrow(0.0, 0.0, 40.0, 30.0), Arrow(-5.5, 0.0, 40.0, 30.0, "red")]
    text = fileformat.dumps(doc)
    written = json.loads(text)["annotations"]
    assert written == given                        # same keys, same values (numbers compare equal)
    assert [list(a) for a in written] == [list(a) for a in given]   # and in the same order
    again = fileformat.loads(text)
    assert again.annotations == doc.annotations and fileformat.dumps(again) == text
    assert doc.copy().annotations == doc.annotations


def test_a_version_1_file_without_annotations_is_written_as_before() -> None:
    path = LESSONS / "starter.scalelab"
    doc = fileformat.load(path)
    assert doc.annotations == []
    assert "annotations" not in json.loads(fileformat.dumps(doc))


def test_document_edits_are_invertible_and_announced() -> None:
    doc = fileformat.load(LESSONS / "starter.scalelab")
    seen: list[tuple[str, int]] = []
    doc.annotation_added.connect(lambda i: seen.append(("added", i)))
    doc.annotation_removed.connect(lambda i: seen.append(("removed", i)))
    doc.annotation_changed.connect(lambda i: seen.append(("changed", i)))
    a, b = TextNote(0, 0, "a"), Arrow(0, 0, 1, 1)
    doc.insert_annotation(0, a)
    doc.insert_annotation(0, b)
    assert doc.annotations == [b, a]
    old = doc.replace_annotation(1, a.moved(20, -20))
    assert old == a and doc.annotations[1] == TextNote(20.0, -20.0, "a")
    assert doc.remove_annotation(0) == b and doc.annotations == [TextNote(20.0, -20.0, "a")]
    assert seen == [("added", 0), ("added", 0), ("changed", 1), ("removed", 0)]
    assert b.moved(3, 4) == Arrow(3.0, 4.0, 4.0, 5.0)
    assert TextNote(1e7, 0, "edge").moved(100, 0).x == 1e7     # moves stay inside the file's range


def test_the_engine_gives_identical_numbers_with_and_without_annotations() -> None:
    plain = fileformat.load(LESSONS / "lb_demo.scalelab")
    plain.annotations = []
    noted = fileformat.loads(fileformat.dumps(plain))
    noted.annotations = [TextNote(0, -100, "note")] + [Arrow(i, 0, i + 10, 10) for i in range(300)]
    runs = []
    for doc in (plain, noted):
        sim = Simulation(doc)
        sim.advance(40.0)
        runs.append(sim)
    a, b = runs
    assert a.totals() == b.totals()
    assert a.totals()["arrived"] > 240 * 40 * 0.9        # it did run: ~240 req/s for 40 s
    for name in ("served_rps", "failed_rps", "p95_ms"):
        x, y = getattr(a.metrics, name), getattr(b.metrics, name)
        assert x.shape == y.shape and len(x) >= 39
        np.testing.assert_array_equal(x, y)


def test_the_lb_demo_lesson_carries_sparse_notes() -> None:
    doc = fileformat.load(LESSONS / "lb_demo.scalelab")
    assert 1 <= len(doc.annotations) <= 4
    assert any(isinstance(a, TextNote) and "Web 2" in a.text for a in doc.annotations)
