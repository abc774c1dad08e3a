"""The .scalelab file format: every bad file gets one clear message naming its place;
good files round-trip exactly; saving is atomic."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from simulation import fileformat
from simulation.fileformat import document_from_dict, document_to_dict, dumps, load, loads, save
from simulation.kinds import KINDS, SIMULATION_PARAMS
from simulation.params import FormatError

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "resources" / "lessons").glob("*.scalelab"))


def base() -> dict[str, Any]:
    """A small valid file: users → lb → web1, web2 (replicas 2) → db."""
    return {
        "format": "scalelab", "version": 1,
        "meta": {"title": "t", "notes": "n"},
        "simulation": {"tick_ms": 10, "duration_s": 60, "seed": 1},
        "nodes": [
            {"id": "users", "kind": "client", "params": {"rate_rps": 50}},
            {"id": "lb", "kind": "load_balancer"},
            {"id": "web1", "kind": "server", "params": {"capacity_rps": 100}},
            {"id": "web2", "kind": "server", "params": {"replicas": 2}},
            {"id": "db", "kind": "database"},
        ],
        "edges": [{"source": "users", "target": "lb"}, {"source": "lb", "target": "web1"},
                  {"source": "lb", "target": "web2"}, {"source": "web1", "target": "db"}],
        "events": [{"at_s": 5, "action": "fail", "node": "web2", "replica": 1}],
    }


def error_of(data: Any) -> str:
    """The one-line message a user sees for ``data`` (a dict, or raw text)."""
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(FormatError) as info:
        loads(text)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_base_is_valid() -> None:
    doc = loads(json.dumps(base()))
    assert doc.node_ids() == ["users", "lb", "web1", "web2", "db"]
    assert doc.params("web1")["workers"] == 4  # defaults filled in


# ----- the file as a whole ---------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ('{"format": "scalelab", "version": 1,', "line 1, column 37: not valid JSON"),
    ("", "line 1, column 1: not valid JSON"),
    ('{"format": "scalelab"}\n{"x": 1}', "line 2, column 1: not valid JSON: Extra data"),
    ("hello", "line 1, column 1: not valid JSON: Expecting value"),
])
def test_not_json(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


@pytest.mark.parametrize("text, got", [("[]", "a list"), ('"scalelab"', "a string"), ("3", "a number"),
                                       ("null", "null"), ("true", "a boolean")])
def test_not_an_object(text: str, got: str) -> None:
    assert error_of(text) == f"the file must contain a JSON object, got {got}"


def test_wrong_or_missing_format() -> None:
    assert error_of({"format": "drawio", "version": 1}).startswith('format: must be "scalelab"')
    assert error_of({"version": 1}) == 'format: must be "scalelab" (this is not a ScaleLab file), got nothing'


def test_newer_version_is_refused_clearly() -> None:
    msg = error_of(dict(base(), version=2))
    assert msg.startswith("version: this file was written by a newer ScaleLab (format version 2)")
    assert "update" in msg.lower()


@pytest.mark.parametrize("version, expected", [
    ("1", "version: must be an integer, got '1'"),
    (1.5, "version: must be an integer, got 1.5"),
    (0, "version: must be ≥ 1, got 0"),
    (True, "version: must be an integer, got True"),
])
def test_bad_version(version: Any, expected: str) -> None:
    assert error_of(dict(base(), version=version)) == expected
    data = base()
    del data["version"]
    assert error_of(data) == "version: is missing"


def test_older_version_is_migrated_through_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this build reads version 2, where "meta.title" moved to "meta.name"... and back:
    a version-1 file must pass through MIGRATIONS[1] before validation."""
    calls: list[int] = []

    def one_to_two(data: dict) -> dict:
        calls.append(data["version"])
        data = dict(data, version=2)
        data["meta"] = dict(data["meta"], title=data["meta"]["title"].upper())
        return data

    monkeypatch.setattr(fileformat, "FORMAT_VERSION", 2)
    monkeypatch.setitem(fileformat.MIGRATIONS, 1, one_to_two)
    doc = loads(json.dumps(base()))
    assert calls == [1]
    assert doc.meta["title"] == "T"
    assert json.loads(dumps(doc))["version"] == 2  # saving writes the current version


def test_missing_migration_step_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileformat, "FORMAT_VERSION", 3)
    monkeypatch.setitem(fileformat.MIGRATIONS, 1, lambda d: dict(d, version=2))
    assert error_of(base()) == "version: version 2 is not a known ScaleLab format version"


def test_unknown_top_level_field() -> None:
    assert error_of(dict(base(), extras=[])).startswith("extras: unknown field (known: ")


@pytest.mark.parametrize("field, value, expected", [
    ("meta", "hello", "meta: must be an object, got a string"),
    ("meta", [], "meta: must be an object, got a list"),
    ("simulation", [1], "simulation: must be an object, got a list"),
    ("simulation", None, "simulation: must be an object, got null"),
    ("nodes", {}, "nodes: must be a list, got an object"),
    ("edges", "a>b", "edges: must be a list, got a string"),
    ("events", 5, "events: must be a list, got a number"),
])
def test_wrong_types_for_sections(field: str, value: Any, expected: str) -> None:
    assert error_of(dict(base(), **{field: value})) == expected


@pytest.mark.parametrize("meta, expected", [
    ({"title": 3}, "meta.title: must be a string, got a number"),
    ({"notes": None}, "meta.notes: must be a string, got null"),
    ({"author": ["x"]}, "meta.author: must be a string, got a list"),
    ({"notes": "x" * 1_000_001}, "meta.notes: is too long (1000001 characters; at most 1000000)"),
])
def test_wrong_meta(meta: dict, expected: str) -> None:
    assert error_of(dict(base(), meta=meta)) == expected


@pytest.mark.parametrize("sim, expected", [
    ({"tick_ms": "10"}, "simulation.tick_ms: must be a number, got '10'"),
    ({"tick_ms": 0}, "simulation.tick_ms: must be ≥ 0.1, got 0"),
    ({"duration_s": 0}, "simulation.duration_s: must be > 0, got 0"),
    ({"seed": -1}, "simulation.seed: must be ≥ 0, got -1"),
    ({"seed": 1.5}, "simulation.seed: must be an integer, got 1.5"),
    ({"speed": 2}, "simulation.speed: unknown field (known: duration_s, seed, tick_ms)"),
])
def test_wrong_simulation_settings(sim: dict, expected: str) -> None:
    assert error_of(dict(base(), simulation=sim)) == expected


# ----- nodes and parameters -------------------------------------------------------------------
def with_node(index: int, **changes: Any) -> dict:
    data = base()
    data["nodes"][index].update(changes)
    return data


def with_params(index: int, **params: Any) -> dict:
    data = base()
    data["nodes"][index].setdefault("params", {}).update(params)
    return data


def test_unknown_kind() -> None:
    assert error_of(with_node(4, kind="queue")) == \
        'node "db", kind: unknown kind "queue" (known: client, load_balancer, server, database, cache)'


@pytest.mark.parametrize("node, expected", [
    ({"kind": "server"}, "node #6, id: is missing"),
    ({"id": "x"}, 'node "x", kind: is missing'),
    ({"id": 7, "kind": "server"}, "node #6, id: must be a string, got a number"),
    ({"id": "has space", "kind": "server"}, "node #6, id: must be 1–64 letters, digits, '_', '.' or '-', got \"has space\""),
    ({"id": "", "kind": "server"}, "node #6, id: must be 1–64 letters, digits, '_', '.' or '-', got \"\""),
    ({"id": "x", "kind": "server", "colour": "red"}, 'node "x", colour: unknown field (known: '),
    ({"id": "x", "kind": "server", "x": "10"}, "node \"x\", x: must be a number, got '10'"),
    ({"id": "x", "kind": "server", "y": 1e9}, 'node "x", y: must be ≤ 10000000, got 1000000000'),
    ({"id": "x", "kind": "server", "label": ["a"]}, 'node "x", label: must be a string, got a list'),
    ({"id": "x", "kind": "server", "params": []}, 'node "x", params: must be an object, got a list'),
    ("server", "node #6: must be an object, got a string"),
])
def test_bad_node_fields(node: Any, expected: str) -> None:
    data = base()
    data["nodes"].append(node)
    assert error_of(data).startswith(expected)


def test_duplicate_ids() -> None:
    data = base()
    data["nodes"].append({"id": "web1", "kind": "database"})
    assert error_of(data) == 'node #6, id: there is already a node with id "web1"'


def test_unknown_parameter_names_the_kind_and_known_ones() -> None:
    known = ", ".join(KINDS["server"].param_names)
    assert known.startswith("capacity_rps, workers, service, queue_limit, timeout_s, replicas, blocking_calls, sessions")
    assert error_of(with_params(2, capacity=5)) == (
        f"node \"web1\", capacity: unknown parameter for a server (known: {known})")
    assert error_of(with_params(3, algorithm="random")).startswith(
        "node \"web2\", algorithm: unknown parameter for a server")


@pytest.mark.parametrize("index, params, expected", [
    (2, {"capacity_rps": "100"}, "node \"web1\", capacity_rps: must be a number, got '100'"),
    (2, {"capacity_rps": True}, "node \"web1\", capacity_rps: must be a number, got True"),
    (2, {"capacity_rps": None}, "node \"web1\", capacity_rps: must be a number, got null"),
    (2, {"workers": 2.5}, "node \"web1\", workers: must be an integer, got 2.5"),
    (2, {"workers": [4]}, "node \"web1\", workers: must be an integer, got a list"),
    (2, {"service": 1}, 'node "web1", service: must be one of "exponential", "deterministic", got 1'),
    (2, {"sessions": "redis"}, 'node "web1", sessions: must be one of "local", "database", "cookie", got \'redis\''),
    (1, {"algorithm": "fastest"}, "node \"lb\", algorithm: must be one of "),
    (0, {"pattern": "constant"}, "node \"users\", pattern: must be an object, got 'constant'"),
    (0, {"pattern": {}}, 'node "users", pattern.type: must be one of "constant", "ramp", "spike", "diurnal", "steps", got null'),
    (0, {"pattern": {"type": "wave"}}, "node \"users\", pattern.type: must be one of "),
    (0, {"pattern": {"type": "ramp", "at_s": 3}}, 'node "users", pattern.at_s: unknown field for a "ramp" pattern'),
    (0, {"pattern": {"type": "constant", "factor": 2}}, 'node "users", pattern.factor: unknown field for a "constant" pattern (known: no other fields)'),
    (0, {"pattern": {"type": "spike", "factor": "2"}}, "node \"users\", pattern.factor: must be a number, got '2'"),
    (0, {"pattern": {"type": "steps", "times_s": 5}}, "node \"users\", pattern.times_s: must be a list of numbers, got 5"),
    (0, {"pattern": {"type": "steps", "times_s": [0, "1"]}}, "node \"users\", pattern.times_s[1]: must be a number, got '1'"),
    (0, {"pattern": {"type": "steps", "times_s": [], "factors": []}}, "node \"users\", pattern.times_s: must hold 1 to 1000 numbers, got 0"),
    (0, {"pattern": {"type": "steps", "times_s": [0, 10], "factors": [1]}},
     "node \"users\", pattern.factors: must have as many entries as times_s (2), got 1"),
    (0, {"pattern": {"type": "steps", "times_s": [10, 5], "factors": [1, 2]}},
     "node \"users\", pattern.times_s: must be strictly increasing"),
    (0, {"pattern": {"type": "ramp", "start_s": 50, "end_s": 10}},
     "node \"users\", pattern.end_s: must be ≥ start_s (50), got 10"),
])
def test_wrong_types_and_shapes_of_parameters(index: int, params: dict, expected: str) -> None:
    assert error_of(with_params(index, **params)).startswith(expected)


@pytest.mark.parametrize("literal, problem", [
    ("NaN", "must be a finite number, got nan"), ("Infinity", "must be a finite number, got inf"),
    ("-Infinity", "must be a finite number, got -inf"),
    ("1e400", "must be a number of reasonable size, got 1e400"),
    ("-1e400", "must be a number of reasonable size, got -1e400"),
    ("1" * 400, "must be a number of reasonable size, got a number with 400 digits"),
    ("-" + "9" * 5000, "must be a number of reasonable size, got a number with 5,000 digits"),
    ("1" * 21, "must be a number of reasonable size, got a number with 21 digits"),
])
def test_non_finite_and_oversized_numbers_are_refused_with_their_place(literal: str, problem: str) -> None:
    """Not OverflowError, not Python's hint about sys.set_int_max_str_digits: the place and the number."""
    text = json.dumps(with_params(2, capacity_rps=12345)).replace("12345", literal)
    assert error_of(text) == f'node "web1", capacity_rps: {problem}'
    text = json.dumps(base()).replace('"at_s": 5', f'"at_s": {literal}')
    assert error_of(text) == f"event #1, at_s: {problem}"
    text = json.dumps(base()).replace('"seed": 1', f'"seed": {literal}')
    assert error_of(text) == f"simulation.seed: {problem}"
    text = json.dumps(base()).replace('"title": "t"', f'"title": {literal}')
    assert error_of(text).startswith("meta.title: ")


def test_the_largest_seed_still_loads() -> None:
    data = base()
    data["simulation"]["seed"] = 2**63 - 1
    assert loads(json.dumps(data)).settings["seed"] == 2**63 - 1


@pytest.mark.parametrize("value, shown", [(1e308, "1e+308"), (1e20, "1e+20"), (-1.5e300, "-1.5e+300"),
                                          (10**17, "100000000000000000")])
def test_huge_but_finite_numbers_are_printed_readably(value: float, shown: str) -> None:
    assert error_of(with_params(2, capacity_rps=value)) == f'node "web1", capacity_rps: must be ≤ 1000000, got {shown}' \
        if value > 0 else f'node "web1", capacity_rps: must be > 0, got {shown}'


@pytest.mark.parametrize("where, text, expected", [
    ("top", '{"format": "scalelab", "version": 1, "version": 1}', "version: is given twice in the same object"),
    ("node", '{"format": "scalelab", "version": 1, "nodes": [{"id": "a", "kind": "server", "kind": "cache"}]}',
     'node "a", kind: is given twice in the same object'),
    ("param", '{"format": "scalelab", "version": 1, "nodes": [{"id": "a", "kind": "server", '
     '"params": {"replicas": 2, "replicas": 3}}]}', 'node "a", replicas: is given twice in the same object'),
    ("pattern", '{"format": "scalelab", "version": 1, "nodes": [{"id": "u", "kind": "client", '
     '"params": {"pattern": {"type": "spike", "type": "ramp"}}}]}', 'node "u", pattern.type: is given twice'),
    ("edge", '{"format": "scalelab", "version": 1, "edges": [{}, {"source": "a", "source": "b"}]}',
     "edge #2, source: is given twice"),
])
def test_duplicate_keys_are_refused_with_their_place(where: str, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_a_node_id_with_a_final_newline_is_refused() -> None:
    data = base()
    data["nodes"][4]["id"] = "db\n"
    assert error_of(data) == "node #5, id: must be 1–64 letters, digits, '_', '.' or '-', got \"db\\n\""


@pytest.mark.parametrize("node, expected", [
    ({"id": "u", "kind": "client", "params": {"pattern": {"type": ["ramp"]}}},
     'node "u", pattern.type: must be one of "constant", "ramp", "spike", "diurnal", "steps", got a list'),
    ({"id": "u", "kind": "client", "params": {"pattern": {"type": {"a": 1}}}}, 'node "u", pattern.type: must be one of'),
    ({"id": "u", "kind": "client", "params": "fast"}, 'node "u", params: must be an object, got a string'),
    ({"id": "u", "kind": ["client"]}, 'node "u", kind: must be a string, got a list'),
    ({"id": "u", "kind": "client", "params": {"rate_rps": {"x": 1}}}, 'node "u", rate_rps: must be a number, got an object'),
    ({"id": "u", "kind": "client", "params": {"bad\nname": 1}}, 'node "u", "bad\\nname": unknown parameter'),
])
def test_wrong_types_anywhere_are_located(node: dict, expected: str) -> None:
    assert error_of({"format": "scalelab", "version": 1, "nodes": [node]}).startswith(expected)


def test_a_wrong_format_value_is_described_not_dumped() -> None:
    assert error_of({"format": list(range(100_000)), "version": 1}) == \
        'format: must be "scalelab" (this is not a ScaleLab file), got a list'


NUMERIC = [(kind.name, p) for kind in KINDS.values() for p in kind.params if p.type in ("int", "float")]


@pytest.mark.parametrize("kind, param", NUMERIC, ids=[f"{k}.{p.name}" for k, p in NUMERIC])
def test_every_numeric_parameter_has_sane_bounds_and_refuses_values_outside(kind: str, param) -> None:
    assert param.minimum is not None and param.maximum is not None, f"{kind}.{param.name} is unbounded"
    data = {"format": "scalelab", "version": 1, "nodes": [{"id": "n", "kind": kind}]}
    too_low = param.minimum if param.exclusive_minimum else param.minimum - 1
    too_high = param.maximum * 10 + 1
    for bad, word in ((too_low, ">" if param.exclusive_minimum else "≥"), (too_high, "≤")):
        data["nodes"][0]["params"] = {param.name: bad}
        assert error_of(data).startswith(f'node "n", {param.name}: must be {word} ')
    # and the bounds themselves are accepted (with what they depend on, e.g. min ≤ max replicas)
    data["nodes"][0]["params"] = {param.name: param.maximum}
    if param.name == "min_replicas":
        data["nodes"][0]["params"]["max_replicas"] = param.maximum
    loads(json.dumps(data))


def test_min_replicas_above_max_replicas_is_refused() -> None:
    assert error_of(with_params(2, min_replicas=5, max_replicas=3)) == (
        "node \"web1\", min_replicas: must be ≤ max_replicas (3), got 5")


def test_pattern_fields_are_bounded_too() -> None:
    for variant, fields in KINDS["client"].param("pattern").variants.items():
        for f in fields:
            assert f.minimum is not None and f.maximum is not None, f"pattern {variant}.{f.name}"
    msg = error_of(with_params(0, pattern={"type": "spike", "factor": 1e6}))
    assert msg == "node \"users\", pattern.factor: must be ≤ 1000, got 1000000"
    msg = error_of(with_params(0, pattern={"type": "steps", "times_s": [0], "factors": [-1]}))
    assert msg == "node \"users\", pattern.factors[0]: must be ≥ 0, got -1"


def test_simulation_settings_are_bounded() -> None:
    for p in SIMULATION_PARAMS:
        assert p.minimum is not None and p.maximum is not None, p.name


# ----- edges ---------------------------------------------------------------------------------
def with_edge(edge: Any) -> dict:
    data = base()
    data["edges"].append(edge)
    return data


@pytest.mark.parametrize("edge, expected", [
    ({"source": "lb", "target": "web9"}, 'edge #5, target: there is no node with id "web9"'),
    ({"source": "ghost", "target": "db"}, 'edge #5, source: there is no node with id "ghost"'),
    ({"source": "lb"}, "edge #5, target: is missing"),
    ({"source": "lb", "target": 3}, "edge #5, target: must be a string, got a number"),
    ({"source": "lb", "target": "db", "weight": 2}, "edge #5, weight: unknown field (known: source, target)"),
    (["lb", "db"], "edge #5: must be an object, got a list"),
    ({"source": "lb", "target": "web1"}, 'edge "lb" → "web1": these nodes are already connected'),
    ({"source": "web1", "target": "web1"}, 'edge "web1" → "web1": a node cannot send traffic to itself'),
])
def test_bad_edges(edge: Any, expected: str) -> None:
    assert error_of(with_edge(edge)) == expected


@pytest.mark.parametrize("source, target, why", [
    ("db", "users", "a database cannot send traffic to a client: clients only send requests"),
    ("web1", "users", "a server cannot send traffic to a client"),
    ("db", "web2", "a database does not send traffic anywhere: it is the end of a request's path"),
    ("users", "db", "a client can only send traffic to: load balancer, server, cache (not a database)"),
    ("lb", "db", "a load balancer can only send traffic to: "),
])
def test_invalid_connections(source: str, target: str, why: str) -> None:
    assert error_of(with_edge({"source": source, "target": target})).startswith(
        f'edge "{source}" → "{target}": {why}')


def test_cycles_are_refused() -> None:
    data = base()
    data["edges"].append({"source": "web1", "target": "lb"})
    assert error_of(data) == 'edge "web1" → "lb": this connection would make requests go round in a loop'
    data = base()
    data["nodes"].append({"id": "web3", "kind": "server"})
    data["edges"] += [{"source": "web1", "target": "web3"}, {"source": "web3", "target": "web2"},
                      {"source": "web2", "target": "web1"}]
    assert error_of(data) == 'edge "web2" → "web1": this connection would make requests go round in a loop'


# ----- events --------------------------------------------------------------------------------
def with_event(event: Any) -> dict:
    data = base()
    data["events"] = [event]
    return data


@pytest.mark.parametrize("event, expected", [
    ({"at_s": 1, "action": "fail", "node": "web9"}, 'event #1, node: there is no node with id "web9"'),
    ({"at_s": 1, "action": "explode", "node": "db"}, 'event #1, action: unknown action "explode" (known: fail, recover)'),
    ({"at_s": 1, "action": 3, "node": "db"}, "event #1, action: must be a string, got a number"),
    ({"action": "fail", "node": "db"}, "event #1, at_s: is missing"),
    ({"at_s": 1, "node": "db"}, "event #1, action: is missing"),
    ({"at_s": 1, "action": "fail"}, "event #1, node: is missing"),
    ({"at_s": -1, "action": "fail", "node": "db"}, "event #1, at_s: must be ≥ 0, got -1"),
    ({"at_s": "soon", "action": "fail", "node": "db"}, "event #1, at_s: must be a number, got 'soon'"),
    ({"at_s": 1, "action": "fail", "node": "db", "why": "x"}, "event #1, why: unknown field (known: "),
    ({"at_s": 1, "action": "fail", "node": "web2", "replica": 2}, "event #1, replica: must be ≤ 1, got 2"),
    ({"at_s": 1, "action": "fail", "node": "web2", "replica": -1}, "event #1, replica: must be ≥ 0, got -1"),
    ({"at_s": 1, "action": "fail", "node": "web2", "replica": 0.5}, "event #1, replica: must be an integer, got 0.5"),
    ({"at_s": 1, "action": "fail", "node": "db", "replica": 1}, "event #1, replica: must be ≤ 0, got 1"),
    ("fail db", "event #1: must be an object, got a string"),
])
def test_bad_events(event: Any, expected: str) -> None:
    assert error_of(with_event(event)).startswith(expected)


def test_replica_event_within_range_is_kept() -> None:
    doc = loads(json.dumps(base()))
    assert [e.to_dict() for e in doc.events] == [{"at_s": 5.0, "action": "fail", "node": "web2", "replica": 1}]


# ----- absurd nesting and size ---------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    "[" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
    '{"format": "scalelab", "version": 1, "meta": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}",
])
def test_absurd_nesting_is_a_clear_error_fast_and_without_recursion_error(text: str) -> None:
    start = time.perf_counter()
    msg = error_of(text)
    assert time.perf_counter() - start < 1.0
    assert msg.startswith("nested too deeply")
    assert "Recursion" not in msg


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    data = base()
    data["meta"]["notes"] = "[[[{{{" * 1000 + '\\"[[['
    assert loads(json.dumps(data)).meta["notes"] == data["meta"]["notes"]


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.scalelab"
    with open(path, "wb") as f:
        f.truncate(fileformat.MAX_FILE_BYTES + 1)  # sparse: costs nothing to create
    start = time.perf_counter()
    with pytest.raises(FormatError) as info:
        load(path)
    assert time.perf_counter() - start < 0.5
    assert str(info.value) == f"{path}: file is too large (21.0 MB; at most 20 MB)"


def test_too_many_nodes_is_refused() -> None:
    data = base()
    data["nodes"] = [{"id": f"n{i}", "kind": "database"} for i in range(fileformat.MAX_NODES + 1)]
    data["edges"], data["events"] = [], []
    assert error_of(data) == f"nodes: too many nodes ({fileformat.MAX_NODES + 1}; at most {fileformat.MAX_NODES})"


def test_large_valid_file_loads_in_reasonable_time() -> None:
    data = base()
    data["nodes"] += [{"id": f"s{i}", "kind": "server", "params": {"capacity_rps": 50}} for i in range(2000)]
    data["edges"] += [{"source": "lb", "target": f"s{i}"} for i in range(2000)]
    start = time.perf_counter()
    doc = loads(json.dumps(data))
    assert len(doc.node_ids()) == 2005
    assert time.perf_counter() - start < 5.0


def test_missing_unreadable_and_not_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"missing\.scalelab: no such file$"):
        load(tmp_path / "missing.scalelab")
    bad = tmp_path / "latin1.scalelab"
    bad.write_bytes(b'{"format": "scalelab", "meta": {"title": "caf\xe9"}}')
    with pytest.raises(FormatError, match=r"not UTF-8 text \(bad byte at offset 45\)"):
        load(bad)
    with pytest.raises(FormatError, match="is a folder, not a lesson file$"):
        load(tmp_path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.scalelab"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(base()).encode())
    assert load(path).node_ids()[0] == "users"


# ----- round trip ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_round_trip_exactly(path: Path, tmp_path: Path) -> None:
    doc = load(path)
    out = tmp_path / path.name
    save(doc, out)
    again = load(out)
    assert document_to_dict(again) == document_to_dict(doc)
    assert out.read_text(encoding="utf-8") == dumps(again)  # saving a loaded file changes nothing
    original = json.loads(path.read_text(encoding="utf-8"))
    saved = json.loads(out.read_text(encoding="utf-8"))
    for node in original["nodes"]:  # only explicitly set params are written back
        node.setdefault("params", {})
    assert saved["nodes"] == [dict({"label": "", "x": 0.0, "y": 0.0}, **n) for n in original["nodes"]]
    assert saved["edges"] == original["edges"] and saved["events"] == original.get("events", [])


def test_round_trip_keeps_order_of_nodes_edges_and_events() -> None:
    data = base()
    data["nodes"].reverse()
    data["edges"].reverse()
    data["events"] = [{"at_s": 9, "action": "recover", "node": "db"}, {"at_s": 1, "action": "fail", "node": "db"}]
    doc = loads(json.dumps(data))
    saved = json.loads(dumps(doc))
    assert [n["id"] for n in saved["nodes"]] == [n["id"] for n in data["nodes"]]
    assert saved["edges"] == data["edges"]
    assert [e["at_s"] for e in saved["events"]] == [9, 1]


# Random valid documents, built from the declarations.
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from simulation.kinds import can_connect  # noqa: E402

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def value_of(param) -> st.SearchStrategy:
    if param.type == "float":
        return st.floats(param.minimum, param.maximum, exclude_min=param.exclusive_minimum,
                         allow_nan=False, allow_infinity=False)
    if param.type == "int":
        return st.integers(int(param.minimum), int(min(param.maximum, 2**63 - 1)))
    if param.type == "bool":
        return st.booleans()
    if param.type == "choice":
        return st.sampled_from(param.choices)
    if param.type == "object":
        return pattern_strategy()
    tables = st.sampled_from(["users", "flights", "flights_domestic", "orders"])
    if param.type == "names":   # a join names two tables or none (kinds.cross_check)
        return st.lists(tables, unique=True, max_size=int(param.maximum or 3)).filter(lambda v: len(v) != 1)
    if param.type == "weights":
        return st.dictionaries(tables, st.floats(0.01, 100), max_size=3)
    raise AssertionError(param.type)


@st.composite
def pattern_strategy(draw) -> dict:
    kind = draw(st.sampled_from(["constant", "ramp", "spike", "diurnal", "steps"]))
    if kind == "ramp":
        start = draw(st.floats(0, 1e6))
        return {"type": "ramp", "start_s": start, "end_s": start + draw(st.floats(0, 1e6)),
                "to_factor": draw(st.floats(0, 1000))}
    if kind == "steps":
        times = sorted(draw(st.sets(st.floats(0, 1e7), min_size=1, max_size=6)))
        return {"type": "steps", "times_s": times,
                "factors": [draw(st.floats(0, 1000)) for _ in times]}
    fields = KINDS["client"].param("pattern").variants[kind]
    out = {"type": kind}
    for f in draw(st.lists(st.sampled_from(fields), unique_by=lambda p: p.name)) if fields else []:
        out[f.name] = draw(value_of(f))
    return out


@st.composite
def documents(draw) -> dict:
    n = draw(st.integers(0, 8))
    nodes = []
    for i in range(n):
        kind = draw(st.sampled_from(list(KINDS)))
        params = {p.name: draw(value_of(p)) for p in draw(
            st.lists(st.sampled_from(KINDS[kind].params), unique_by=lambda p: p.name, max_size=4))}
        if params.get("min_replicas", 1) > params.get("max_replicas", 10):  # keep min ≤ max
            params["min_replicas"], params["max_replicas"] = 1, params.get("max_replicas", 10)
        if params.get("machine", "custom") != "custom":   # a machine type decides these (machines.py)
            for name in ("capacity_rps", "workers", "price_per_hour"):
                params.pop(name, None)
        node = {"id": f"{kind}{i}", "kind": kind, "params": params}
        if draw(st.booleans()):
            node.update(label=draw(TEXT), x=draw(st.floats(-1e7, 1e7)), y=draw(st.floats(-1e7, 1e7)))
        nodes.append(node)
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)  # forward only: never a loop
             if can_connect(nodes[a]["kind"], nodes[b]["kind"])[0]]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=10)) if pairs else []
    edges = [{"source": nodes[a]["id"], "target": nodes[b]["id"]} for a, b in chosen]
    events = []
    for _ in range(draw(st.integers(0, 3)) if nodes else 0):
        node = draw(st.sampled_from(nodes))
        event = {"at_s": draw(st.floats(0, 1e7)), "action": draw(st.sampled_from(["fail", "recover"])),
                 "node": node["id"]}
        replicas = (node["params"].get("max_replicas", 10) if node["params"].get("autoscale")
                    else node["params"].get("replicas", 1))
        if draw(st.booleans()):
            event["replica"] = draw(st.integers(0, replicas - 1))
        events.append(event)
    sim = {p.name: draw(value_of(p)) for p in draw(
        st.lists(st.sampled_from(SIMULATION_PARAMS), unique_by=lambda p: p.name))}
    return {"format": "scalelab", "version": 1, "meta": {"title": draw(TEXT), "notes": draw(TEXT)},
            "simulation": sim, "nodes": nodes, "edges": edges, "events": events}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_valid_documents_round_trip_exactly(data: dict) -> None:
    doc = document_from_dict(data)
    text = dumps(doc)
    again = loads(text)
    assert document_to_dict(again) == document_to_dict(doc)
    assert dumps(again) == text
    for node in data["nodes"]:
        assert again.node(node["id"]).params == node["params"]
    assert again.edges() == [(e["source"], e["target"]) for e in data["edges"]]


# ----- atomic save ------------------------------------------------------------------------------
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "lesson.scalelab")


def test_save_writes_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "lesson.scalelab"
    doc = loads(json.dumps(base()))
    save(doc, path)
    assert load(path).node_ids() == doc.node_ids()
    assert _leftovers(tmp_path) == []


def test_save_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "lesson.scalelab"
    path.write_text("old")
    os.chmod(path, 0o600)
    save(loads(json.dumps(base())), path)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("broken", ["replace", "fsync", "write", "interrupt"])
def test_interrupted_save_leaves_the_old_file_intact(broken: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lesson.scalelab"
    save(loads(json.dumps(base())), path)
    before = path.read_bytes()
    changed = base()
    changed["meta"]["title"] = "a new title"
    doc = loads(json.dumps(changed))

    def fail(*args: Any, **kwargs: Any) -> None:
        if broken == "interrupt":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device")

    if broken == "replace":
        monkeypatch.setattr(fileformat.os, "replace", fail)
    elif broken in ("fsync", "interrupt"):
        monkeypatch.setattr(fileformat.os, "fsync", fail)
    else:
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fd: int, mode: str) -> None:
                self._f = real_fdopen(fd, mode)

            def __enter__(self) -> "HalfWriter":
                return self

            def __exit__(self, *exc: Any) -> None:
                self._f.close()

            def write(self, data: bytes) -> None:
                self._f.write(data[: len(data) // 2])  # half of it reaches the disk, then the disk is full
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(fileformat.os, "fdopen", HalfWriter)

    with pytest.raises(KeyboardInterrupt if broken == "interrupt" else OSError):
        save(doc, path)
    assert path.read_bytes() == before
    assert load(path).meta["title"] == "t"
    assert _leftovers(tmp_path) == []


def test_save_into_a_missing_folder_is_an_os_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        save(loads(json.dumps(base())), tmp_path / "nope" / "lesson.scalelab")
    assert list(tmp_path.iterdir()) == []
