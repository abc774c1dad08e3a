"""The JSON Schema and the format page are generated from the declarations and kept up to date.

The venv has no jsonschema on purpose (not a dependency), so the lessons are validated
with a small validator of exactly the keywords the generator uses; the validator itself
is checked against the loader on bad documents, so a schema that accepts what the
loader refuses fails here. When jsonschema happens to be importable, it checks too.
"""
from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from simulation import fileformat
from simulation.formatdoc import docs_text
from simulation.kinds import KINDS, SIMULATION_PARAMS
from simulation.params import FormatError
from simulation.schema import DOCS_PATH, SCHEMA_PATH, build_schema, main, schema_text

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "resources" / "lessons").glob("*.scalelab"))
KNOWN_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "default", "x-unit", "type", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems", "items", "properties", "required",
    "additionalProperties", "pattern", "maxLength", "allOf", "if", "then",
    "minLength", "uniqueItems", "maxProperties",
}


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "integer":
        return _is_type(value, "number") and float(value).is_integer()
    raise AssertionError(name)


def validate(value: Any, schema: Any, root: dict, where: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` (the subset of 2020-12 the generator emits)."""
    if schema is True:
        return []
    unknown = set(schema) - KNOWN_KEYWORDS
    assert not unknown, f"validator does not know {unknown}"
    errors: list[str] = []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        errors += validate(value, target, root, where)
    if "type" in schema and not _is_type(value, schema["type"]):
        return errors + [f"{where}: not {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not in enum")
    if _is_type(value, "number"):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{where}: not finite")
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: < minimum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: <= exclusiveMinimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: > maximum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: pattern")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: too long")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: too short")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            errors.append(f"{where}: length")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
            errors.append(f"{where}: not unique")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate(item, schema["items"], root, f"{where}[{i}]")
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", math.inf):
            errors.append(f"{where}: too many properties")
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}.{key}: missing")
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}.{key}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(item, schema["additionalProperties"], root, f"{where}.{key}")
    for sub in schema.get("allOf", []):
        if "if" in sub:
            if not validate(value, sub["if"], root, where):
                errors += validate(value, sub["then"], root, where)
        else:
            errors += validate(value, sub, root, where)
    return errors


def _lesson(name: str = "starter.scalelab") -> dict:
    return json.loads((ROOT / "resources" / "lessons" / name).read_text(encoding="utf-8"))


def test_committed_schema_is_generated_from_the_declarations() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), \
        "resources/scalelab.schema.json is stale: run python -m simulation.schema"


def test_committed_format_page_is_up_to_date() -> None:
    assert DOCS_PATH.read_text(encoding="utf-8") == docs_text(), \
        "docs/file-format.md is stale: run python -m simulation.schema"


def test_check_mode_reports_up_to_date() -> None:
    assert main(["--check"]) == 0


def test_schema_declares_every_kind_and_parameter() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["version"] == {"const": fileformat.FORMAT_VERSION}
    for name, kind in KINDS.items():
        props = schema["$defs"][f"params_{name}"]["properties"]
        assert list(props) == list(kind.param_names)
        for p in kind.params:
            assert props[p.name]["default"] == p.default
            assert props[p.name]["description"].startswith(p.help)
    sim = schema["properties"]["simulation"]["properties"]
    assert list(sim) == [p.name for p in SIMULATION_PARAMS]
    server = schema["$defs"]["params_server"]["properties"]
    assert server["capacity_rps"]["exclusiveMinimum"] == 0
    assert server["replicas"]["type"] == "integer"
    assert server["sessions"]["enum"] == ["local", "database", "cookie"]
    pattern = schema["$defs"]["params_client"]["properties"]["pattern"]
    steps = next(b["then"]["properties"] for b in pattern["allOf"] if b["if"]["properties"]["type"]["const"] == "steps")
    assert steps["times_s"]["type"] == "array" and steps["times_s"]["items"]["type"] == "number"


def test_format_page_has_a_table_row_for_every_parameter() -> None:
    text = docs_text()
    for kind in KINDS.values():
        assert f"### `{kind.name}`" in text
        for p in kind.params:
            assert f"| `{p.name}` |" in text, p.name
    assert 'node "web1", capacity_rps: must be > 0, got -5' in text


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_lesson_validates_against_the_schema(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert validate(data, schema, schema) == []
    fileformat.loads(path.read_text(encoding="utf-8"))  # and the loader agrees
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def test_there_are_lessons() -> None:
    assert any(p.name == "starter.scalelab" for p in LESSONS)


BAD_EDITS = {
    "negative capacity": lambda d: d["nodes"][2]["params"].update(capacity_rps=-5),
    "zero capacity": lambda d: d["nodes"][2]["params"].update(capacity_rps=0),
    "unknown param": lambda d: d["nodes"][2]["params"].update(capacity=5),
    "string workers": lambda d: d["nodes"][2]["params"].update(workers="4"),
    "fractional workers": lambda d: d["nodes"][2]["params"].update(workers=2.5),
    "bool rate": lambda d: d["nodes"][0]["params"].update(rate_rps=True),
    "bad choice": lambda d: d["nodes"][1]["params"].update(algorithm="fastest"),
    "unknown kind": lambda d: d["nodes"][5].update(kind="queue"),
    "bad id": lambda d: d["nodes"][5].update(id="has space"),
    "unknown node field": lambda d: d["nodes"][5].update(colour="red"),
    "unknown top field": lambda d: d.update(extra=1),
    "wrong format": lambda d: d.update(format="drawio"),
    "newer version": lambda d: d.update(version=fileformat.FORMAT_VERSION + 1),
    "meta not object": lambda d: d.update(meta="hello"),
    "meta number": lambda d: d["meta"].update(title=3),
    "simulation unknown": lambda d: d["simulation"].update(speed=2),
    "tick too small": lambda d: d["simulation"].update(tick_ms=0.01),
    "pattern unknown type": lambda d: d["nodes"][0]["params"].update(pattern={"type": "wave"}),
    "pattern wrong field": lambda d: d["nodes"][0]["params"].update(pattern={"type": "ramp", "at_s": 3}),
    "pattern field range": lambda d: d["nodes"][0]["params"].update(pattern={"type": "diurnal", "amplitude": 2}),
    "steps not list": lambda d: d["nodes"][0]["params"].update(pattern={"type": "steps", "times_s": 5}),
    "steps empty": lambda d: d["nodes"][0]["params"].update(pattern={"type": "steps", "times_s": [],
                                                                      "factors": []}),
    "edge missing target": lambda d: d["edges"][0].pop("target"),
    "event unknown action": lambda d: d.update(events=[{"at_s": 1, "action": "explode", "node": "db"}]),
    "event negative time": lambda d: d.update(events=[{"at_s": -1, "action": "fail", "node": "db"}]),
    "x out of range": lambda d: d["nodes"][0].update(x=1e9),
}


@pytest.mark.parametrize("name", list(BAD_EDITS))
def test_schema_refuses_what_the_loader_refuses(name: str) -> None:
    data = _lesson()
    BAD_EDITS[name](data)
    with pytest.raises(FormatError):
        fileformat.loads(json.dumps(data))
    schema = build_schema()
    assert validate(data, schema, schema), f"the schema accepts a file the loader refuses ({name})"


def test_schema_accepts_every_pattern_variant_with_all_fields() -> None:
    schema = build_schema()
    pattern = KINDS["client"].param("pattern")
    for variant, fields in pattern.variants.items():
        data = _lesson()
        data["nodes"][0]["params"]["pattern"] = {"type": variant, **{f.name: copy.deepcopy(f.default) for f in fields}}
        fileformat.loads(json.dumps(data))
        assert validate(data, schema, schema) == [], variant
