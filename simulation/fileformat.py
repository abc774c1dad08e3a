"""The ``.scalelab`` file format (version 1): read, validate, migrate, write.

Reading happens in two phases: the text is read safely and parsed
(``file_input``), then validated into plain objects (every problem reported
with its place, e.g. ``node "web1", capacity_rps: must be > 0, got -5``),
older versions are migrated through an ordered chain, and only then is the
graph built. Writing is atomic (``outputs``): a temporary file beside the
target is renamed over it.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from .annotations import annotations_to_list, parse_annotations
from .document import Document, NodeData, ScheduledEvent
from .file_input import (ID_RE, MAX_DEPTH, MAX_FILE_BYTES, JsonHooks, field_name, lesson_text, max_depth,
                         node_place, quoted, refuse_oddities)
from .goals import goals_to_list, parse_goals
from .kinds import EVENT_ACTIONS, KINDS, SIMULATION_PARAMS, cross_check
from .machines import explicit_problem
from .outputs import write_bytes
from .params import FormatError, check_number, check_value
from .params import _fmt as fmt_number
from .patterns import check_pattern

FORMAT_NAME = "scalelab"
FORMAT_VERSION = 1
FILE_SUFFIX = ".scalelab"

MAX_NODES = 20_000
MAX_EDGES = 100_000
MAX_EVENTS = 100_000
MAX_TEXT = 1_000_000

# Migrations: version -> function turning a dict of that version into version+1.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


# ----- reading -------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Document:
    """Read a ``.scalelab`` file (or a PNG that carries one). Raises :class:`FormatError` with a clear message."""
    text, picture = lesson_text(path)
    if not picture:
        return loads(text)
    try:
        return loads(text)
    except FormatError as e:
        raise FormatError(os.fspath(path), f"the ScaleLab topology in this picture is not valid: {e}") from None


def _nonfinite(name: str) -> float:
    """Parse NaN/Infinity as floats so that validation refuses them with their place
    (``node "web1", capacity_rps: must be a finite number, got nan``)."""
    return float(name)


def loads(text: str) -> Document:
    """Parse and validate the text of a ``.scalelab`` file."""
    if len(text) > MAX_FILE_BYTES:
        raise FormatError("", "file is too large")
    depth = max_depth(text)
    if depth > MAX_DEPTH:
        raise FormatError("", f"nested too deeply ({depth} levels; at most {MAX_DEPTH})")
    hooks = JsonHooks()
    try:
        data = json.loads(text, parse_constant=_nonfinite, parse_int=hooks.parse_int,
                          parse_float=hooks.parse_float, object_pairs_hook=hooks.pairs)
    except json.JSONDecodeError as e:
        raise FormatError(f"line {e.lineno}, column {e.colno}", f"not valid JSON: {e.msg}") from None
    except RecursionError:
        raise FormatError("", "nested too deeply") from None
    if hooks.suspect:
        refuse_oddities(data)
    return document_from_dict(data)


def _field(where: str, key: str) -> str:
    """``where`` plus a field: ``node "web1", x``; ``node "users", pattern.type``; ``meta.title``."""
    if not where:
        return field_name(key)
    if where.startswith(("node ", "edge ", "event ")) and "," not in where:
        return f"{where}, {field_name(key)}"
    return f"{where}.{field_name(key)}"


def _type_name(v: Any) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if v is None:
        return "null"
    return "a number"


def _expect(value: Any, typ: type, where: str, what: str) -> Any:
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool) and typ in (int, float)):
        raise FormatError(where, f"must be {what}, got {_type_name(value)}")
    return value


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    _expect(value, str, where, "a string")
    if len(value) > limit:
        raise FormatError(where, f"is too long ({len(value)} characters; at most {limit})")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:   # a lone surrogate ("\\ud800"): it could never be written back
            raise FormatError(where, f"contains an invalid character (a lone surrogate U+{ord(value[e.start]):04X} "
                              f"at position {e.start})") from None
    return value


def _only_keys(obj: dict, allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise FormatError(_field(where, key), f"unknown field (known: {', '.join(sorted(allowed))})")


def _relative(where: str, check: Callable[[], Any]) -> Any:
    """Run a check that names places relative to a node (``capacity_rps``, ``pattern.type``)
    and put the node in front of them."""
    try:
        return check()
    except FormatError as e:
        raise FormatError(f"{where}, {e.where}" if e.where else where, e.message) from None


def migrate(data: dict) -> dict:
    """Bring a validated-header dict up to :data:`FORMAT_VERSION`."""
    version = data["version"]
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise FormatError("version", f"version {version} is not a known ScaleLab format version")
        data = step(data)
        version = data["version"]
    return data


def document_from_dict(data: Any) -> Document:
    """Validate a parsed file and build the :class:`Document`."""
    if not isinstance(data, dict):
        raise FormatError("", f"the file must contain a JSON object, got {_type_name(data)}")
    if data.get("format") != FORMAT_NAME:
        got = data.get("format")
        shown = "nothing" if got is None else quoted(got) if isinstance(got, str) else _type_name(got)
        raise FormatError("format", f'must be "{FORMAT_NAME}" (this is not a ScaleLab file), got {shown}')
    if "version" not in data:
        raise FormatError("version", "is missing")
    version = check_number(data["version"], "version", integer=True, minimum=None, maximum=None)
    if version > FORMAT_VERSION:
        raise FormatError("version", f"this file was written by a newer ScaleLab (format version "
                          f"{fmt_number(version)}); this ScaleLab reads versions up to {FORMAT_VERSION}. "
                          "Please update ScaleLab.")
    if version < 1:
        raise FormatError("version", f"must be ≥ 1, got {fmt_number(version)}")
    data = migrate(dict(data, version=version))
    _only_keys(data, {"format", "version", "meta", "simulation", "nodes", "edges", "events", "goals", "annotations"}, "")

    doc = Document()
    meta = data.get("meta", {})
    _expect(meta, dict, "meta", "an object")
    out_meta: dict[str, Any] = {"title": "", "notes": ""}
    for key, value in meta.items():
        out_meta[_text(key, "meta", 200)] = _text(value, _field("meta", key))
    doc.meta = out_meta

    sim = data.get("simulation", {})
    _expect(sim, dict, "simulation", "an object")
    by_name = {p.name: p for p in SIMULATION_PARAMS}
    _only_keys(sim, set(by_name), "simulation")
    for key, value in sim.items():
        doc.settings[key] = check_value(by_name[key], value, f"simulation.{key}")

    nodes = data.get("nodes", [])
    _expect(nodes, list, "nodes", "a list")
    if len(nodes) > MAX_NODES:
        raise FormatError("nodes", f"too many nodes ({len(nodes)}; at most {MAX_NODES})")
    for i, raw in enumerate(nodes):
        doc.add_node(_node(raw, i, doc))

    edges = data.get("edges", [])
    _expect(edges, list, "edges", "a list")
    if len(edges) > MAX_EDGES:
        raise FormatError("edges", f"too many edges ({len(edges)}; at most {MAX_EDGES})")
    for i, raw in enumerate(edges):
        where = f"edge #{i + 1}"
        _expect(raw, dict, where, "an object")
        _only_keys(raw, {"source", "target"}, where)
        for end in ("source", "target"):
            if end not in raw:
                raise FormatError(_field(where, end), "is missing")
            _text(raw[end], _field(where, end), 64)
            if raw[end] not in doc:
                raise FormatError(_field(where, end), f"there is no node with id {quoted(raw[end])}")
        problem = doc.connect_problem(raw["source"], raw["target"])
        if problem:
            raise FormatError(f'edge "{raw["source"]}" → "{raw["target"]}"', problem)
        doc.add_edge(raw["source"], raw["target"])

    events = data.get("events", [])
    _expect(events, list, "events", "a list")
    if len(events) > MAX_EVENTS:
        raise FormatError("events", f"too many events ({len(events)}; at most {MAX_EVENTS})")
    for i, raw in enumerate(events):
        doc.events.append(_event(raw, f"event #{i + 1}", doc))
    doc.goals = parse_goals(data["goals"]) if "goals" in data else []   # a graded challenge (goals.py)
    # text boxes and arrows for slides: drawn on the canvas, never read by the engine (annotations.py)
    doc.annotations = parse_annotations(data["annotations"]) if "annotations" in data else []
    return doc


def _node(raw: Any, index: int, doc: Document) -> NodeData:
    where = f"node #{index + 1}"
    _expect(raw, dict, where, "an object")
    if "id" not in raw:
        raise FormatError(_field(where, "id"), "is missing")
    node_id = _text(raw["id"], _field(where, "id"), 200)
    if not ID_RE.fullmatch(node_id):
        raise FormatError(_field(where, "id"), f"must be 1–64 letters, digits, '_', '.' or '-', got {quoted(node_id)}")
    if node_id in doc:
        raise FormatError(_field(where, "id"), f'there is already a node with id "{node_id}"')
    where = node_place(index, raw)
    _only_keys(raw, {"id", "kind", "label", "x", "y", "params"}, where)
    if "kind" not in raw:
        raise FormatError(_field(where, "kind"), "is missing")
    kind = _text(raw["kind"], _field(where, "kind"), 200)
    if kind not in KINDS:
        raise FormatError(_field(where, "kind"), f'unknown kind {quoted(kind)} (known: {", ".join(KINDS)})')
    label = _text(raw.get("label", ""), _field(where, "label"), 200)
    x = check_number(raw.get("x", 0.0), _field(where, "x"), integer=False, minimum=-1e7, maximum=1e7)
    y = check_number(raw.get("y", 0.0), _field(where, "y"), integer=False, minimum=-1e7, maximum=1e7)
    params_raw = raw.get("params", {})
    _expect(params_raw, dict, _field(where, "params"), "an object")
    spec = KINDS[kind]
    params: dict[str, Any] = {}
    for name, value in params_raw.items():
        if name not in spec.param_names:
            raise FormatError(_field(where, name), f"unknown parameter for a {spec.label.lower()} "
                              f"(known: {', '.join(spec.param_names)})")
        params[name] = _relative(where, lambda: check_value(spec.param(name), value, name))
        if spec.param(name).type == "object":
            _relative(where, lambda: check_pattern(params[name], name))
    full = spec.defaults()
    full.update(params)
    _relative(where, lambda: cross_check(kind, full, ""))
    problem = explicit_problem(params) if kind == "server" else None
    if problem:
        raise FormatError(_field(where, problem[0]), problem[1])
    return NodeData(node_id, kind, label, float(x), float(y), params)


def _event(raw: Any, where: str, doc: Document) -> ScheduledEvent:
    _expect(raw, dict, where, "an object")
    _only_keys(raw, {"at_s", "action", "node", "replica"}, where)
    for key in ("at_s", "action", "node"):
        if key not in raw:
            raise FormatError(_field(where, key), "is missing")
    at_s = check_number(raw["at_s"], _field(where, "at_s"), integer=False, minimum=0, maximum=1e7)
    action = _text(raw["action"], _field(where, "action"), 200)
    if action not in EVENT_ACTIONS:
        raise FormatError(_field(where, "action"),
                          f'unknown action {quoted(action)} (known: {", ".join(EVENT_ACTIONS)})')
    node = _text(raw["node"], _field(where, "node"), 200)
    if node not in doc:
        raise FormatError(_field(where, "node"), f"there is no node with id {quoted(node)}")
    replica = raw.get("replica")
    if replica is not None:
        count = doc.replicas(node)
        replica = check_number(replica, _field(where, "replica"), integer=True, minimum=0, maximum=count - 1)
    return ScheduledEvent(float(at_s), action, node, replica)


# ----- writing -------------------------------------------------------------------------
def document_to_dict(doc: Document) -> dict:
    out = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "meta": dict(doc.meta),
        "simulation": dict(doc.settings),
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "x": n.x, "y": n.y, "params": dict(n.params)}
            for n in doc.nodes()
        ],
        "edges": [{"source": s, "target": t} for s, t in doc.edges()],
        "events": [e.to_dict() for e in doc.events],
    }
    if doc.goals:   # written only when there are some: files without goals stay as they were
        out["goals"] = goals_to_list(doc.goals)
    if doc.annotations:   # likewise: files without annotations are written as before
        out["annotations"] = annotations_to_list(doc.annotations)
    return out


def dumps(doc: Document) -> str:
    return json.dumps(document_to_dict(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save(doc: Document, path: str | os.PathLike) -> None:
    """Write atomically (a temporary file beside the target, flushed, then renamed over it);
    a symlink is written through, a FIFO or device written directly (``simulation.outputs``)."""
    atomic_write_text(path, dumps(doc))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    write_bytes(path, data)
