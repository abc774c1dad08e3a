"""The JSON Schema (draft 2020-12) of the ``.scalelab`` format, generated from the declarations.

Nothing here is written by hand: kinds, parameters (with their ranges, defaults,
units and help), pattern variants, simulation settings, events and the loader's
limits all come from ``kinds.py``, ``params.py`` and ``fileformat.py``. So the
schema cannot drift from what the loader accepts; a test compares the committed
``resources/scalelab.schema.json`` with a fresh generation.

What a schema cannot say (the loader still checks it): ids must be unique, edges
must name existing nodes and allowed kinds without making a loop, events must
name existing nodes and replicas, a ramp must end after it starts, a steps
pattern needs as many factors as times, a goal on a number needs a target.

``python -m simulation.schema`` rewrites the schema and ``docs/file-format.md``;
``python -m simulation.schema --check`` exits with 1 if either is out of date.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import annotations as notes_mod
from . import fileformat
from . import goals as goals_mod
from .kinds import EVENT_ACTIONS, KINDS, SIMULATION_PARAMS
from .params import Param

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "resources" / "scalelab.schema.json"
DOCS_PATH = ROOT / "docs" / "file-format.md"
SCHEMA_ID = "https://scalelab.invalid/scalelab.schema.json"

# Bounds the loader applies to positions and event times (fileformat.py).
COORD_LIMIT = 1e7
MAX_ID_TEXT = 64
MAX_LABEL = 200


def _number(p: Param, integer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer" if integer else "number"}
    if p.minimum is not None:
        out["exclusiveMinimum" if p.exclusive_minimum else "minimum"] = p.minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
    return out


def _describe(p: Param) -> str:
    text = p.help
    if p.unit:
        text += f" Unit: {p.unit}."
    return text


def param_schema(p: Param) -> dict[str, Any]:
    """The schema of one declared parameter."""
    t = p.type
    if t in ("float", "int"):
        out = _number(p, t == "int")
    elif t == "bool":
        out = {"type": "boolean"}
    elif t == "choice":
        out = {"type": "string", "enum": list(p.choices)}
    elif t == "floats":
        item = {"type": "number"}
        if p.minimum is not None:
            item["minimum"] = p.minimum
        if p.maximum is not None:
            item["maximum"] = p.maximum
        out = {"type": "array", "items": item, "minItems": 1, "maxItems": 1000}
    elif t == "names":
        out = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64},
               "uniqueItems": True, "maxItems": int(p.maximum or 1000)}
    elif t == "weights":
        out = {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1e9},
               "maxProperties": 1000}
    elif t == "object":
        out = _object_schema(p)
    else:  # pragma: no cover - params.check_value refuses unknown types too
        raise AssertionError(f"unknown param type {t}")
    head: dict[str, Any] = {"title": p.title, "description": _describe(p)}
    if p.unit:
        head["x-unit"] = p.unit
    head.update(out)
    head["default"] = p.default
    return head


def _object_schema(p: Param) -> dict[str, Any]:
    """An object selected by its ``type`` member: one ``if``/``then`` per variant."""
    branches = []
    for variant, fields in p.variants.items():
        props: dict[str, Any] = {"type": {"const": variant}}
        for f in fields:
            props[f.name] = param_schema(f)
        branches.append({
            "if": {"properties": {"type": {"const": variant}}, "required": ["type"]},
            "then": {"properties": props, "additionalProperties": False},
        })
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(p.variants)}},
        "allOf": branches,
    }


def _params_object(params: tuple[Param, ...], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {p.name: param_schema(p) for p in params},
        "additionalProperties": False,
    }


def build_schema() -> dict[str, Any]:
    """The whole schema as a plain dict (deterministic: same declarations, same text)."""
    defs: dict[str, Any] = {
        "id": {
            "type": "string",
            "pattern": fileformat.ID_RE.pattern,
            "description": "A node id: 1–64 letters, digits, '_', '.' or '-'; unique in the file.",
        },
        "coordinate": {"type": "number", "minimum": -COORD_LIMIT, "maximum": COORD_LIMIT},
    }
    for name, kind in KINDS.items():
        defs[f"params_{name}"] = _params_object(
            kind.params, f"Parameters of a {kind.label.lower()}: {kind.description} Omitted ones take their defaults.")
    kind_branches = [
        {"if": {"properties": {"kind": {"const": name}}, "required": ["kind"]},
         "then": {"properties": {"params": {"$ref": f"#/$defs/params_{name}"}}}}
        for name in KINDS
    ]
    defs["node"] = {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
            "id": {"$ref": "#/$defs/id"},
            "kind": {"enum": list(KINDS), "description": "What the node is."},
            "label": {"type": "string", "maxLength": MAX_LABEL, "default": "",
                      "description": "Name shown on the canvas."},
            "x": {"$ref": "#/$defs/coordinate", "default": 0.0,
                  "description": "Position on the canvas (scene units)."},
            "y": {"$ref": "#/$defs/coordinate", "default": 0.0},
            "params": {"type": "object", "default": {},
                       "description": "Only the parameters that differ from the defaults need to be written."},
        },
        "additionalProperties": False,
        "allOf": kind_branches,
    }
    defs["edge"] = {
        "type": "object",
        "description": "Traffic flows from source to target.",
        "required": ["source", "target"],
        "properties": {"source": {"$ref": "#/$defs/id"}, "target": {"$ref": "#/$defs/id"}},
        "additionalProperties": False,
    }
    defs["event"] = {
        "type": "object",
        "description": "Something that happens to a node at a given simulated time.",
        "required": ["at_s", "action", "node"],
        "properties": {
            "at_s": {"type": "number", "minimum": 0, "maximum": 1e7, "x-unit": "s",
                     "description": "Simulated time at which it happens."},
            "action": {"enum": list(EVENT_ACTIONS)},
            "node": {"$ref": "#/$defs/id"},
            "replica": {"type": "integer", "minimum": 0,
                        "description": "Only this replica (0-based); omitted: every replica of the node."},
        },
        "additionalProperties": False,
    }
    defs["goal"] = goal_schema()
    defs["annotation"] = annotation_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"ScaleLab topology file (.scalelab), format version {fileformat.FORMAT_VERSION}",
        "description": "Generated from simulation/kinds.py by `python -m simulation.schema`; do not edit by hand.",
        "type": "object",
        "required": ["format", "version"],
        "properties": {
            "format": {"const": fileformat.FORMAT_NAME},
            "version": {"const": fileformat.FORMAT_VERSION},
            "meta": {
                "type": "object",
                "description": "Lesson text: a title and markdown notes; other string fields are kept as they are.",
                "properties": {"title": {"type": "string"}, "notes": {"type": "string"}},
                "additionalProperties": {"type": "string", "maxLength": fileformat.MAX_TEXT},
            },
            "simulation": _params_object(SIMULATION_PARAMS, "Run settings."),
            "nodes": {"type": "array", "maxItems": fileformat.MAX_NODES, "items": {"$ref": "#/$defs/node"}},
            "edges": {"type": "array", "maxItems": fileformat.MAX_EDGES, "items": {"$ref": "#/$defs/edge"}},
            "events": {"type": "array", "maxItems": fileformat.MAX_EVENTS, "items": {"$ref": "#/$defs/event"}},
            "goals": {"type": "array", "maxItems": goals_mod.MAX_GOALS, "items": {"$ref": "#/$defs/goal"},
                      "description": "A graded challenge: what a run must achieve (`scalelab grade`)."},
            "annotations": {"type": "array", "maxItems": notes_mod.MAX_ANNOTATIONS,
                            "items": {"$ref": "#/$defs/annotation"},
                            "description": "Text boxes and arrows drawn on the canvas (the engine ignores them)."},
        },
        "additionalProperties": False,
        "$defs": defs,
    }


def goal_schema() -> dict[str, Any]:
    """One goal: a metric of ``goals.METRICS`` and the fields that metric takes."""
    g = goals_mod
    number = {"type": "number", "minimum": 0, "maximum": g.MAX_TARGET}
    fields: dict[str, Any] = {
        "metric": {"enum": list(g.METRICS)},
        "label": {"type": "string", "maxLength": g.MAX_LABEL},
        "at_least": dict(number), "at_most": dict(number),
        "from_s": {"type": "number", "minimum": 0, "maximum": 1e7, "x-unit": "s"},
        "to_s": {"type": "number", "minimum": 0, "maximum": 1e7, "x-unit": "s"},
        "max_loss": {"type": "number", "minimum": 0, "maximum": 1, "default": g.DEFAULT_MAX_LOSS},
        "seconds": {"type": "number", "minimum": 2, "maximum": 3600, "x-unit": "s", "default": g.DEFAULT_SECONDS},
    }
    for name, schema in fields.items():
        schema["description"] = g.FIELD_HELP[name]
    branches = []
    for name, metric in g.METRICS.items():   # the fields each metric takes (the loader also wants a target)
        props: dict[str, Any] = {f: True for f in g.allowed_fields(name)}
        if metric.kind == "share":
            props.update(at_least={"maximum": 1}, at_most={"maximum": 1})
        then = {"properties": props, "additionalProperties": False}
        branches.append({"if": {"properties": {"metric": {"const": name}}, "required": ["metric"]}, "then": then})
    return {
        "type": "object",
        "description": "What a run must achieve: a metric and a target (at_least / at_most), optionally over a "
                       "window of the run (from_s / to_s).",
        "required": ["metric"],
        "properties": fields,
        "additionalProperties": False,
        "allOf": branches,
    }


def annotation_schema() -> dict[str, Any]:
    """A text box or an arrow (``annotations.py``); the loader also wants an arrow's ends to differ."""
    n = notes_mod
    coord = {"$ref": "#/$defs/coordinate"}
    fields: dict[str, Any] = {
        "type": {"enum": list(n.TYPES), "description": n.FIELD_HELP["type"]},
        "x": dict(coord), "y": dict(coord),
        "text": {"type": "string", "minLength": 1, "maxLength": n.MAX_TEXT, "description": n.FIELD_HELP["text"]},
        "width": {"type": "number", "minimum": n.MIN_WIDTH, "maximum": n.MAX_WIDTH, "default": n.DEFAULT_WIDTH,
                  "description": n.FIELD_HELP["width"]},
        "x1": dict(coord), "y1": dict(coord), "x2": dict(coord), "y2": dict(coord),
        "color": {"enum": list(n.COLORS), "description": n.FIELD_HELP["color"]},
    }
    branches = [{"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                 "then": {"required": list(n.REQUIRED[kind]),
                          "properties": {f: True for f in n.FIELDS[kind]}, "additionalProperties": False}}
                for kind in n.TYPES]
    return {
        "type": "object",
        "description": "A text box (type text) or an arrow (type arrow) on the canvas, for slides.",
        "required": ["type"],
        "properties": fields,
        "additionalProperties": False,
        "allOf": branches,
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the schema and the format page."""
    from .formatdoc import docs_text

    parser = argparse.ArgumentParser(prog="python -m simulation.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args(argv)
    outputs = {SCHEMA_PATH: schema_text(), DOCS_PATH: docs_text()}
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"out of date: {p.relative_to(ROOT)} (run python -m simulation.schema)", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        fileformat.atomic_write_text(p, outputs[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
