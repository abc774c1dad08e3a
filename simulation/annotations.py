"""Annotations: text boxes and arrows drawn on the canvas for slides.

A file may list them (``"annotations": [{"type": "text", "x": 0, "y": -120, "text": "..."},
{"type": "arrow", "x1": .., "y1": .., "x2": .., "y2": ..}]``). They are part of the
picture only: the engine never reads them. This module declares their fields and
limits once (the loader, the schema and the docs read them), validates them with
located messages (``annotations[2].text: is too long (2,345 characters; at most 2,000)``)
and writes them back exactly as given (optional fields only when they were set).
Annotations are immutable values: an edit replaces one by another.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Union

from .file_input import quoted
from .params import FormatError, _describe, check_number

MAX_ANNOTATIONS = 500
MAX_TEXT = 2_000
COORD_LIMIT = 1e7
MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 40.0, 2_000.0, 220.0
# The small palette a teacher picks from (name -> colour drawn); absent means "default".
COLORS: dict[str, str] = {
    "default": "#343a40", "blue": "#1971c2", "red": "#e03131", "green": "#2f9e44",
    "orange": "#e8590c", "purple": "#7048e8",
}
TYPES = ("text", "arrow")
FIELD_HELP = {
    "type": "`text` (a text box) or `arrow`.",
    "x, y": "text: the top-left corner of the box, in canvas units (like node positions).",
    "text": f"text: what the box says (1 to {MAX_TEXT:,} characters; line breaks kept).",
    "width": f"text: the box's width ({MIN_WIDTH:g} to {MAX_WIDTH:,g}; default {DEFAULT_WIDTH:g}); "
             "long lines wrap.",
    "x1, y1, x2, y2": "arrow: where it starts and where its head points (the two ends must differ).",
    "color": "Optional: one of " + ", ".join(f"`{c}`" for c in COLORS) + " (default `default`, dark grey).",
}


@dataclass(frozen=True)
class TextNote:
    """A text box; ``width``/``color`` stay None when the file did not set them."""
    x: float
    y: float
    text: str
    width: float | None = None
    color: str | None = None
    type: ClassVar[str] = "text"

    @property
    def box_width(self) -> float:
        return DEFAULT_WIDTH if self.width is None else float(self.width)

    def moved(self, dx: float, dy: float) -> "TextNote":
        return replace(self, x=_clamp(self.x + dx), y=_clamp(self.y + dy))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "text", "x": self.x, "y": self.y, "text": self.text}
        if self.width is not None:
            out["width"] = self.width
        if self.color is not None:
            out["color"] = self.color
        return out


@dataclass(frozen=True)
class Arrow:
    """An arrow from (x1, y1) to its head at (x2, y2)."""
    x1: float
    y1: float
    x2: float
    y2: float
    color: str | None = None
    type: ClassVar[str] = "arrow"

    def moved(self, dx: float, dy: float) -> "Arrow":
        return replace(self, x1=_clamp(self.x1 + dx), y1=_clamp(self.y1 + dy),
                       x2=_clamp(self.x2 + dx), y2=_clamp(self.y2 + dy))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "arrow", "x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2}
        if self.color is not None:
            out["color"] = self.color
        return out


Annotation = Union[TextNote, Arrow]


def _clamp(v: float) -> float:
    return max(-COORD_LIMIT, min(COORD_LIMIT, float(v)))


def color_of(annotation: Annotation) -> str:
    """The colour to draw (``#rrggbb``)."""
    return COLORS[annotation.color or "default"]


# ----- reading ------------------------------------------------------------------------------------
def parse_annotations(raw: Any, where: str = "annotations") -> list[Annotation]:
    """Validate the file's ``annotations`` list; every problem names its place (``annotations[2].text``)."""
    if not isinstance(raw, list):
        raise FormatError(where, f"must be a list of annotations, got {_describe(raw)}")
    if len(raw) > MAX_ANNOTATIONS:
        raise FormatError(where, f"too many annotations ({len(raw):,}; at most {MAX_ANNOTATIONS})")
    return [parse_annotation(item, f"{where}[{i}]") for i, item in enumerate(raw)]


FIELDS = {"text": ("type", "x", "y", "text", "width", "color"),
          "arrow": ("type", "x1", "y1", "x2", "y2", "color")}
REQUIRED = {"text": ("x", "y", "text"), "arrow": ("x1", "y1", "x2", "y2")}


def parse_annotation(raw: Any, where: str) -> Annotation:
    if not isinstance(raw, dict):
        raise FormatError(where, f'must be an object like {{"type": "text", "x": 0, "y": 0, "text": "..."}}, '
                          f"got {_describe(raw)}")
    if "type" not in raw:
        raise FormatError(f"{where}.type", "is missing (text or arrow)")
    kind = raw["type"]
    if not isinstance(kind, str):
        raise FormatError(f"{where}.type", f"must be a string, got {_describe(kind)}")
    if kind not in TYPES:
        raise FormatError(f"{where}.type", f"unknown annotation type {quoted(kind)} (known: text, arrow)")
    allowed = FIELDS[kind]
    for key in raw:
        if key not in allowed:
            shown = key if key.replace("_", "").isalnum() and len(key) <= 40 else quoted(key)
            raise FormatError(f"{where}.{shown}", f"unknown field for {'an' if kind == 'arrow' else 'a'} {kind} annotation (known: {', '.join(allowed)})")
    for key in REQUIRED[kind]:
        if key not in raw:
            raise FormatError(f"{where}.{key}", "is missing")
    nums = {k: float(check_number(raw[k], f"{where}.{k}", integer=False, minimum=-COORD_LIMIT, maximum=COORD_LIMIT))
            for k in REQUIRED[kind] if k != "text"}
    color = None
    if "color" in raw:
        color = raw["color"]
        if not isinstance(color, str) or color not in COLORS:
            raise FormatError(f"{where}.color", f"must be one of {', '.join(COLORS)}, got {_describe(color)}")
    if kind == "arrow":
        if (nums["x1"], nums["y1"]) == (nums["x2"], nums["y2"]):
            raise FormatError(where, "an arrow's two ends must differ (x1, y1 is x2, y2)")
        return Arrow(nums["x1"], nums["y1"], nums["x2"], nums["y2"], color)
    text = check_text(raw["text"], f"{where}.text")
    width = None
    if "width" in raw:
        width = float(check_number(raw["width"], f"{where}.width", integer=False, minimum=MIN_WIDTH,
                                   maximum=MAX_WIDTH))
    return TextNote(nums["x"], nums["y"], text, width, color)


def check_text(text: Any, where: str) -> str:
    """A text box's text: a non-empty string of at most :data:`MAX_TEXT` valid characters."""
    if not isinstance(text, str):
        raise FormatError(where, f"must be a string, got {_describe(text)}")
    if not text.strip():
        raise FormatError(where, "must not be empty")
    if len(text) > MAX_TEXT:
        raise FormatError(where, f"is too long ({len(text):,} characters; at most {MAX_TEXT:,})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise FormatError(where, f"contains an invalid character (a lone surrogate at position {e.start})") from None
    return text


def annotations_to_list(annotations: list[Annotation]) -> list[dict[str, Any]]:
    return [a.to_dict() for a in annotations]


def check_annotation(annotation: Annotation, where: str = "annotation") -> Annotation:
    """An annotation made in the designer, checked by the loader's rules (the same object back)."""
    parse_annotation(annotation.to_dict(), where)
    return annotation
