"""The page ``docs/file-format.md``, generated from the declarations.

Like the JSON Schema, the parameter tables come from ``kinds.py`` and the error
messages shown as examples are produced by the real loader at generation time,
so the page cannot promise something the code does not do. Regenerate with
``python -m simulation.schema``.
"""
from __future__ import annotations

import json
from typing import Any

from . import annotations as notes_mod
from . import fileformat
from . import goals as goals_mod
from .kinds import EVENT_ACTIONS, KINDS, SIMULATION_PARAMS, can_connect
from .params import FormatError, Param

TYPE_NAMES = {"float": "number", "int": "integer", "bool": "true/false", "choice": "one of",
              "floats": "list of numbers", "object": "object", "names": "list of names",
              "weights": "object of name: number"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(p: Param) -> str:
    if p.type == "choice":
        return f'`"{p.default}"`'
    if p.type == "float" and float(p.default).is_integer():
        return f"`{int(p.default)}`" if abs(p.default) < 1e15 else f"`{p.default:g}`"
    return f"`{json.dumps(p.default, ensure_ascii=False)}`"


def _type(p: Param) -> str:
    if p.type == "choice":
        return "one of " + ", ".join(f"`{c}`" for c in p.choices)
    if p.type == "object":
        return "object: " + " / ".join(f"`{v}`" for v in p.variants)
    return TYPE_NAMES[p.type]


def param_table(params: tuple[Param, ...]) -> list[str]:
    lines = ["| parameter | type | default | range | unit | meaning |",
             "| --- | --- | --- | --- | --- | --- |"]
    for p in params:
        rng = p.range_text()
        if p.type == "floats":
            rng = f"each {rng}; 1 to 1000 entries" if rng else "1 to 1000 entries"
        elif p.type == "names":
            rng = f"at most {int(p.maximum or 1000)} distinct names"
        elif p.type == "weights":
            rng = "each ≥ 0, not all 0"
        lines.append(f"| `{p.name}` | {_type(p)} | {_default(p)} | {_cell(rng) or '—'} | "
                     f"{_cell(p.unit) or '—'} | {_cell(p.help)} |")
    return lines


def _error_of(doc: Any) -> str:
    """The message the loader really gives for ``doc`` (a dict, or text)."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    try:
        fileformat.loads(text)
    except FormatError as e:
        return str(e)
    raise AssertionError(f"example document was accepted: {text[:80]}")


def _examples() -> list[tuple[str, str]]:
    def base(**extra: Any) -> dict:
        d: dict[str, Any] = {"format": "scalelab", "version": 1,
                             "nodes": [{"id": "users", "kind": "client"}, {"id": "web1", "kind": "server"}],
                             "edges": [{"source": "users", "target": "web1"}]}
        d.update(extra)
        return d

    def server_params(**params: Any) -> dict:
        d = base()
        d["nodes"][1]["params"] = params
        return d

    v = fileformat.FORMAT_VERSION
    return [
        ("not JSON", _error_of('{"format": "scalelab", "version": 1,')),
        ("not an object", _error_of("[1, 2, 3]")),
        ("another format", _error_of({"format": "drawio", "version": 1})),
        ("a newer version", _error_of({"format": "scalelab", "version": v + 1})),
        ("an unknown kind", _error_of(base(nodes=[{"id": "q", "kind": "queue"}], edges=[]))),
        ("an unknown parameter", _error_of(server_params(capacity=5))),
        ("a wrong type", _error_of(server_params(workers="four"))),
        ("an out-of-range value", _error_of(server_params(capacity_rps=-5))),
        ("a non-finite number", _error_of('{"format": "scalelab", "version": 1, "simulation": {"seed": NaN}}')),
        ("a number too large", _error_of('{"format": "scalelab", "version": 1, "simulation": {"seed": 1'
                                         + "0" * 400 + "}}")),
        ("a field given twice", _error_of('{"format": "scalelab", "version": 1, "nodes": [{"id": "a", '
                                          '"kind": "server", "params": {"replicas": 2, "replicas": 3}}]}')),
        ("a duplicate id", _error_of(base(nodes=[{"id": "a", "kind": "server"}, {"id": "a", "kind": "server"}],
                                         edges=[]))),
        ("a dangling edge", _error_of(base(edges=[{"source": "users", "target": "web9"}]))),
        ("a forbidden connection", _error_of(base(nodes=[{"id": "users", "kind": "client"},
                                                         {"id": "db", "kind": "database"}],
                                                  edges=[{"source": "db", "target": "users"}]))),
        ("an event on a missing node", _error_of(base(events=[{"at_s": 5, "action": "fail", "node": "web9"}]))),
        ("an unknown action", _error_of(base(events=[{"at_s": 5, "action": "explode", "node": "web1"}]))),
        ("absurd nesting", _error_of("[" * 100_000 + "]" * 100_000)),
        ("an unknown goal metric", _error_of(base(goals=[{"metric": "speed", "at_least": 1}]))),
        ("a negative goal target", _error_of(base(goals=[{"metric": "p95_ms", "at_most": 200},
                                                        {"metric": "cost_server_s", "at_most": -1}]))),
        ("an over-long annotation", _error_of(base(annotations=[
            {"type": "arrow", "x1": 0, "y1": 0, "x2": 50, "y2": 0},
            {"type": "text", "x": 0, "y": 0, "text": "x" * (notes_mod.MAX_TEXT + 1)}]))),
    ]


def _connections() -> list[str]:
    names = list(KINDS)
    lines = ["| from \\ to | " + " | ".join(f"`{n}`" for n in names) + " |",
             "| --- |" + " --- |" * len(names)]
    for s in names:
        cells = ["✓" if can_connect(s, t)[0] else "—" for t in names]
        lines.append(f"| `{s}` | " + " | ".join(cells) + " |")
    return lines


def _goals_section() -> list[str]:
    g = goals_mod
    example = [{"metric": "served_share", "at_least": 0.995}, {"metric": "p95_ms", "at_most": 200},
               {"metric": "p95_ms", "label": "p95 during the spike", "at_most": 300, "from_s": 60, "to_s": 90},
               {"metric": "cost_server_s", "at_most": 2400}, {"metric": "survives_any_single_failure"}]
    g.parse_goals(example)   # the example must itself be valid
    kinds = {"share": "a share, 0 to 1", "ms": "milliseconds", "rate": "req/s", "count": "a count",
             "cost": "server-seconds", "money": "dollars", "check": "yes/no"}
    lines = [
        "## Goals",
        "",
        "A file with `goals` is a graded challenge: after a run the designer shows each goal as met (✓) or",
        "missed (✗) with the measured value, and `scalelab grade FILE` checks them headless (exit code 0",
        "when all are met, 1 when one is missed, 2 for a bad file). A file without `goals` is an ordinary",
        "lesson; saving writes the goals back as they were given.",
        "",
        "```json",
        '"goals": ' + json.dumps(example, indent=2, ensure_ascii=False),
        "```",
        "",
        "| field | meaning |",
        "| --- | --- |",
        *[f"| `{name}` | {_cell(text)} |" for name, text in g.FIELD_HELP.items()],
        "",
        "A measured number needs `at_least`, `at_most` or both; a share's target is between 0 and 1;",
        "`to_s` must be after `from_s`. A window counts the per-second rows that start in it (in long",
        "runs whose rows merged, `span_s` > 1, a whole row counts if it starts inside). The checks",
        "(`no_single_point_of_failure`, `survives_any_single_failure`) take no target and no window.",
        "",
        "| metric | measured in | meaning |",
        "| --- | --- | --- |",
        *[f"| `{m.name}` | {kinds[m.kind]} | {_cell(m.help)} |" for m in g.METRICS.values()],
        "",
    ]
    return lines


def _annotations_section() -> list[str]:
    n = notes_mod
    example = [{"type": "text", "x": 160, "y": -150, "text": "The balancer notices Web 2 is down\nafter ~3 checks",
                "width": 240},
               {"type": "arrow", "x1": 250, "y1": -100, "x2": 210, "y2": -30, "color": "red"}]
    n.parse_annotations(example)   # the example must itself be valid
    return [
        "## Annotations",
        "",
        "Text boxes and arrows drawn on the canvas, for slides: saved in the file, shown in the designer and in",
        "every exported picture, and ignored by the engine (a file gives the same numbers with or without them).",
        "Optional fields are written back only when they were given.",
        "",
        "```json",
        '"annotations": ' + json.dumps(example, indent=2, ensure_ascii=False),
        "```",
        "",
        "| field | meaning |",
        "| --- | --- |",
        *[f"| `{name}` | {_cell(text)} |" for name, text in n.FIELD_HELP.items()],
        "",
    ]


def docs_text() -> str:
    ff = fileformat
    example = {
        "format": "scalelab", "version": ff.FORMAT_VERSION,
        "meta": {"title": "Two servers", "notes": "Markdown shown in the lesson panel."},
        "simulation": {"tick_ms": 10, "duration_s": 300, "seed": 1},
        "nodes": [
            {"id": "users", "kind": "client", "label": "Users", "x": 0.0, "y": 0.0, "params": {"rate_rps": 150}},
            {"id": "lb", "kind": "load_balancer", "label": "LB", "x": 200.0, "y": 0.0, "params": {}},
            {"id": "web1", "kind": "server", "label": "Web 1", "x": 400.0, "y": -80.0,
             "params": {"capacity_rps": 100}},
            {"id": "web2", "kind": "server", "label": "Web 2", "x": 400.0, "y": 80.0,
             "params": {"capacity_rps": 100}},
        ],
        "edges": [{"source": "users", "target": "lb"}, {"source": "lb", "target": "web1"},
                  {"source": "lb", "target": "web2"}],
        "events": [{"at_s": 60, "action": "fail", "node": "web1"},
                   {"at_s": 120, "action": "recover", "node": "web1"}],
    }
    ff.loads(json.dumps(example))  # the example must itself be a valid file
    out: list[str] = [
        "# The `.scalelab` file format (version 1)",
        "",
        "<!-- Generated from simulation/kinds.py by `python -m simulation.schema`; do not edit by hand. -->",
        "",
        "A ScaleLab topology (a lesson, a capacity plan) is one UTF-8 JSON file with the extension",
        "`.scalelab`. The same declarations that produce this page validate files, fill in defaults,",
        "build the designer's inspector and produce the JSON Schema",
        "[`resources/scalelab.schema.json`](../resources/scalelab.schema.json) (draft 2020-12).",
        "",
        "```json",
        json.dumps(example, indent=2, ensure_ascii=False),
        "```",
        "",
        "## Top-level fields",
        "",
        "| field | type | required | meaning |",
        "| --- | --- | --- | --- |",
        f'| `format` | string | yes | always `"{ff.FORMAT_NAME}"` |',
        f"| `version` | integer | yes | the format version, `{ff.FORMAT_VERSION}` (see Versions below) |",
        "| `meta` | object | no | `title` and `notes` (markdown shown in the lesson panel); any other member must be a string too |",
        "| `simulation` | object | no | run settings, below |",
        f"| `nodes` | list | no | the components, at most {ff.MAX_NODES:,} |",
        f"| `edges` | list | no | who sends traffic to whom, at most {ff.MAX_EDGES:,} |",
        f"| `events` | list | no | scheduled failures and recoveries, at most {ff.MAX_EVENTS:,} |",
        f"| `goals` | list | no | a graded challenge: what a run must achieve, at most {goals_mod.MAX_GOALS} (see Goals) |",
        f"| `annotations` | list | no | text boxes and arrows on the canvas, at most {notes_mod.MAX_ANNOTATIONS} "
        "(see Annotations) |",
        "",
        "Any other field is an error. Texts are at most "
        f"{ff.MAX_TEXT:,} characters; files at most {ff.MAX_FILE_BYTES // 2**20} MB and "
        f"{ff.MAX_DEPTH} levels of nesting.",
        "",
        "## `simulation`",
        "",
        *param_table(SIMULATION_PARAMS),
        "",
        "## Nodes",
        "",
        "| field | type | required | meaning |",
        "| --- | --- | --- | --- |",
        "| `id` | string | yes | 1–64 letters, digits, `_`, `.` or `-`; unique in the file; edges and events refer to it |",
        "| `kind` | string | yes | " + ", ".join(f"`{k}`" for k in KINDS) + " |",
        f"| `label` | string | no | the name shown on the canvas (at most {200} characters; without one, the id"
        " is shown) |",
        "| `x`, `y` | number | no | position on the canvas, between −10,000,000 and 10,000,000 (default 0; see"
        " below) |",
        "| `params` | object | no | the kind's parameters; omitted ones take their defaults |",
        "",
        "Only the parameters that were set are written back, so a saved file stays short and a",
        "default changed in a later ScaleLab applies to files that never set it.",
        "",
        "A file written by hand or by a script may leave out `x` and `y`: its nodes would then all",
        "sit at one point. When the app opens a file, the nodes that share their exact position",
        "with another node are laid out left to right by level (clients first, each node one",
        "column right of the longest chain of connections that leads to it), below any nodes that",
        "have places of their own (`simulation/layout.py`). This is one step of the undo history:",
        "the file shows as modified, Save writes the new positions, and Edit ▸ Undo puts the nodes",
        "back. The headless command line ignores positions.",
        "",
    ]
    for name, kind in KINDS.items():
        out += [f"### `{name}` — {kind.label}", "", kind.description, "", *param_table(kind.params), ""]
        for p in kind.params:
            if p.type == "object":
                out += [f"#### `{p.name}` variants", "",
                        f"`{p.name}` is an object whose `type` member selects the variant; the other members "
                        "are that variant's fields (omitted ones take their defaults).", ""]
                for variant, fields in p.variants.items():
                    if fields:
                        out += [f'`{{"type": "{variant}", ...}}`', "", *param_table(fields), ""]
                    else:
                        out += [f'`{{"type": "{variant}"}}` has no other fields.', ""]
                out += ["A ramp must end at or after its start (`end_s` ≥ `start_s`); `steps` needs as many",
                        "`factors` as `times_s`, and `times_s` strictly increasing.", ""]
    out += [
        "## Edges",
        "",
        '`{"source": "lb", "target": "web1"}`: requests flow from `source` to `target`. Both must be',
        "ids of nodes in the file, the pair may appear only once, and edges may not form a loop.",
        "Which kinds may send to which (rows send to columns):",
        "",
        *_connections(),
        "",
        "A client may point at several entry nodes (DNS round robin or failover, see `entry_policy`).",
        "A server with no downstream node is the end of its requests' path; a server that calls a",
        "database needs that database for every request.",
        "",
        "## Events",
        "",
        "| field | type | required | meaning |",
        "| --- | --- | --- | --- |",
        "| `at_s` | number | yes | simulated time, 0 to 10,000,000 s |",
        "| `action` | string | yes | " + ", ".join(f"`{a}`" for a in EVENT_ACTIONS) + " |",
        "| `node` | string | yes | the id of an existing node |",
        "| `replica` | integer | no | only this replica, 0-based, less than the node's `replicas`; omitted: the whole node |",
        "",
        *_goals_section(),
        *_annotations_section(),
        "## Error messages",
        "",
        "A file is validated completely before anything is built. The first problem is reported in",
        "one line that names its place in words: the node by its id and the field (`node \"web1\",",
        "capacity_rps`; `node #4` while a node has no valid id yet), an edge by its ends or its number",
        "(`edge #2`), an event by its number, or a path for the rest (`simulation.seed`), followed by",
        "what was expected and what was found. The designer shows this line in a dialog; `scalelab",
        "check` prints it on stderr and exits with a non-zero code. Never a traceback, never a hang:",
        "only a regular file is read (not a FIFO or a device), at most 20 MB of it; nesting is bounded",
        "before the JSON parser runs; a field given twice in one object and a number too large to",
        "compute with are refused with their place. Examples, as the loader reports them:",
        "",
        "| problem | message |",
        "| --- | --- |",
        *[f"| {what} | `{_cell(msg)}` |" for what, msg in _examples()],
        "",
        "Checks a JSON Schema cannot express are still made by the loader: unique ids, edges between",
        "existing nodes of allowed kinds without loops, events on existing nodes and replicas, and the",
        "pattern rules above.",
        "",
        "## Saving",
        "",
        "Saving is atomic: the text is written to a temporary file in the same folder, flushed to",
        "disk, and renamed over the target in one step (a symlink is written through: its target is",
        "replaced, the link stays). If anything fails on the way (a full disk, a crash, a killed",
        "process), the previous file is left exactly as it was; the temporary file",
        "(`.NAME.scalelab-tmp-PID-XXXXXXXX`) is removed, or, after a SIGKILL, by the next save into",
        "that folder. A new file gets the usual permissions (0666 minus the umask), a replaced one",
        "keeps its own. A saved document loads back to the same document (exact round trip). The",
        "command line writes its CSV, JSON and image outputs the same way.",
        "",
        "## Versions",
        "",
        f"Every file carries `version`. This ScaleLab writes version {ff.FORMAT_VERSION}.",
        "",
        "- A file from a **newer** version is refused with a message asking to update ScaleLab, rather",
        "  than being misread.",
        "- A file from an **older** version is migrated on load through an ordered chain of steps",
        "  (version n → n + 1, `MIGRATIONS` in `simulation/fileformat.py`), then validated as the current",
        "  version; saving writes the current version.",
        "- A change to the format that old readers cannot ignore raises the version and adds one",
        "  migration step; adding a parameter with a default does not need a new version.",
        "",
    ]
    return "\n".join(out)
