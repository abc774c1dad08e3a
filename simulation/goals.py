"""Goals of a graded challenge: what a ``.scalelab`` file asks a run to achieve.

A file may list goals (``"goals": [{"metric": "p95_ms", "at_most": 200}, ...]``).
Each names a metric of :data:`METRICS` and a target: ``at_least`` and/or
``at_most`` for a measured number, nothing for a yes/no check
(``no_single_point_of_failure``), ``max_loss`` for ``survives_any_single_failure``.
A number may be measured over a window of the run (``from_s``/``to_s``: the
per-second rows that start in it), e.g. "during the spike". This module
declares the metrics (one table: the loader, the schema, the docs and the texts
all read it), validates goals with located messages and writes them back
exactly; ``grading.py`` measures them on a finished run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .file_input import quoted
from .params import FormatError, _describe, check_number

MAX_GOALS = 100
MAX_LABEL = 200
MAX_TARGET = 1e15
DEFAULT_MAX_LOSS = 0.01
DEFAULT_SECONDS = 60.0


@dataclass(frozen=True)
class Metric:
    """What a goal can name. ``kind`` says how it is measured and shown:
    share (0..1, shown in %), ms, rate (req/s), count, cost (server-seconds), money (dollars),
    or check (yes/no)."""
    name: str
    label: str
    kind: str
    help: str
    unit: str = ""


_COUNT = "Counted over the run (or the window)."
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("served_share", "served share", "share", "Requests served / requests that arrived (0 to 1)."),
    Metric("failed_share", "failed share", "share", "Requests that failed / requests that arrived (0 to 1)."),
    Metric("p50_ms", "median latency", "ms", "50th percentile latency of the served requests.", "ms"),
    Metric("p95_ms", "p95 latency", "ms", "95th percentile latency of the served requests.", "ms"),
    Metric("p99_ms", "p99 latency", "ms", "99th percentile latency of the served requests.", "ms"),
    Metric("mean_ms", "mean latency", "ms", "Mean latency of the served requests.", "ms"),
    Metric("throughput", "throughput", "rate", "Requests served per second (served / seconds run).", "req/s"),
    Metric("cost_server_s", "cost", "cost", "Server-seconds: the server replicas that exist (booting and draining "
           "ones too), summed over every second of the run.", "server-s"),
    Metric("cost_usd", "cost in dollars", "money", "Dollars spent: each server replica that exists costs its machine "
           "type's price per hour (a custom machine: its price_per_hour) for every second it exists.", "$"),
    Metric("stale_page_views", "stale page views", "count", "Page views a browser answered from a copy older than "
           "the item on the server. " + _COUNT),
    Metric("sessions_lost", "sessions lost", "count", "Requests that failed because their session was lost. " + _COUNT),
    Metric("stale_reads", "stale reads", "count", "Reads that returned old data (a replica behind its primary, a "
           "cache entry not invalidated). " + _COUNT),
    Metric("forged_accepted", "forged cookies believed", "count", "Forged session cookies a server believed. " + _COUNT),
    Metric("write_conflicts", "write conflicts", "count", "Writes to one item on different primaries within the "
           "replication lag. " + _COUNT),
    Metric("id_collisions", "id collisions", "count", "Inserts on different primaries that took the same "
           "auto-increment id. " + _COUNT),
    Metric("no_single_point_of_failure", "no single point of failure", "check", "By structure: no node whose "
           "failure cuts a client off completely (no full SPOF, as `scalelab check` reports them)."),
    Metric("survives_any_single_failure", "survives any single machine failure", "check", "Measured: one machine "
           "of each node (replica 0, a database's primary) is failed in turn, without the file's events, for "
           "`seconds` simulated seconds; over the second half of each run at most `max_loss` of the requests served "
           "without the failure may be lost (as `scalelab check --empirical`)."),
)}

NUMBER_FIELDS = ("at_least", "at_most", "from_s", "to_s")
SURVIVAL_FIELDS = ("max_loss", "seconds")
FIELD_ORDER = ("metric", "label", "at_least", "at_most", "from_s", "to_s", "max_loss", "seconds")
FIELD_HELP = {
    "metric": "What is measured: one of the metrics below.",
    "label": f"Optional text shown instead of the generated name (at most {MAX_LABEL} characters).",
    "at_least": "The goal is met when the measured value is ≥ this, in the metric's unit (a share: 0 to 1).",
    "at_most": "The goal is met when the measured value is ≤ this, in the metric's unit (a share: 0 to 1).",
    "from_s": "Measure only the seconds from this time on (default: the start of the run).",
    "to_s": "Measure only the seconds before this time (default: the end of the run).",
    "max_loss": f"survives_any_single_failure: the largest share of requests one failure may lose "
                f"(default {DEFAULT_MAX_LOSS:g}).",
    "seconds": f"survives_any_single_failure: simulated seconds per failure (default {DEFAULT_SECONDS:g}).",
}


def allowed_fields(metric: str) -> tuple[str, ...]:
    kind = METRICS[metric].kind
    if kind != "check":
        return ("metric", "label") + NUMBER_FIELDS
    return ("metric", "label") + (SURVIVAL_FIELDS if metric == "survives_any_single_failure" else ())


@dataclass(frozen=True)
class Goal:
    """One goal as the file says it (unset fields are None and are not written back)."""
    metric: str
    label: str | None = None
    at_least: float | None = None
    at_most: float | None = None
    from_s: float | None = None
    to_s: float | None = None
    max_loss: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELD_ORDER if getattr(self, k) is not None}

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    @property
    def windowed(self) -> bool:
        return self.from_s is not None or self.to_s is not None

    @property
    def loss_limit(self) -> float:
        return DEFAULT_MAX_LOSS if self.max_loss is None else float(self.max_loss)

    @property
    def run_seconds(self) -> float:
        return DEFAULT_SECONDS if self.seconds is None else float(self.seconds)

    def title(self) -> str:
        """What the goal is about, e.g. ``p95 latency from 60 s to 90 s``."""
        if self.label:
            return self.label
        text = self.spec.label
        if self.from_s is not None and self.to_s is not None:
            text += f" from {_num(self.from_s)} s to {_num(self.to_s)} s"
        elif self.from_s is not None:
            text += f" from {_num(self.from_s)} s on"
        elif self.to_s is not None:
            text += f" before {_num(self.to_s)} s"
        return text

    def target(self) -> str:
        """The target in words: ``≤ 200 ms``, ``≥ 99.5 %``, ``loses ≤ 1 %``, or '' for a check."""
        if self.metric == "survives_any_single_failure":
            return f"(each failure loses ≤ {format_value('share', self.loss_limit)})"
        kind = self.spec.kind
        if self.at_least is not None and self.at_most is not None:
            return f"between {format_value(kind, self.at_least)} and {format_value(kind, self.at_most)}"
        if self.at_least is not None:
            return f"≥ {format_value(kind, self.at_least)}"
        if self.at_most == 0 and kind == "count":
            return "= 0"
        if self.at_most is not None:
            return f"≤ {format_value(kind, self.at_most)}"
        return ""

    def met_by(self, value: float) -> bool:
        """Whether a measured number meets the target (NaN, nothing measured, never does)."""
        if value is None or math.isnan(value):
            return False
        return ((self.at_least is None or value >= self.at_least)
                and (self.at_most is None or value <= self.at_most))


# ----- numbers as a student reads them ------------------------------------------------------------
def _num(v: float, decimals: int | None = None) -> str:
    if decimals is None:
        return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:,.6g}"
    return f"{v:,.{decimals}f}"


def format_value(kind: str, value: float, near: float | None = None) -> str:
    """``value`` in the metric's unit. With ``near`` (the target), enough decimals that a
    value on the other side of the target does not look equal to it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    scale, unit = {"share": (100.0, " %"), "ms": (1.0, " ms"), "rate": (1.0, " req/s"),
                   "count": (1.0, ""), "cost": (1.0, " server-s")}.get(kind, (1.0, ""))
    if kind == "money":   # dollars: cents, or four decimals below a dollar
        decimals = 2 if abs(value) >= 1 else 4
        while near is not None and value != near and decimals < 8 and round(value, decimals) == round(near, decimals):
            decimals += 1
        return f"${value:,.{decimals}f}"
    v = value * scale
    if kind == "count" or (kind == "cost" and float(v).is_integer()):
        return f"{int(round(v)):,}{unit}"
    base = 0 if abs(v) >= 100 else 1
    if kind == "share":
        base = 1 if abs(v) < 99.95 or v == 100 else 2
    text = _trim(f"{v:,.{base}f}")
    while kind == "share" and text == "100" and value < 1 and base < 6:   # 99.996 % is not 100 %
        base += 1
        text = _trim(f"{v:,.{base}f}")
    if near is not None and value != near:
        target = near * scale
        for d in range(base, 7):
            text = _trim(f"{v:,.{d}f}")
            if text != _trim(f"{target:,.{d}f}"):
                break
    return text + unit


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


# ----- reading ------------------------------------------------------------------------------------
def parse_goals(raw: Any, where: str = "goals") -> list[Goal]:
    """Validate the file's ``goals`` list; every problem names its place (``goals[2].at_most``)."""
    if not isinstance(raw, list):
        raise FormatError(where, f"must be a list of goals, got {_describe(raw)}")
    if len(raw) > MAX_GOALS:
        raise FormatError(where, f"too many goals ({len(raw)}; at most {MAX_GOALS})")
    return [parse_goal(item, f"{where}[{i}]") for i, item in enumerate(raw)]


def parse_goal(raw: Any, where: str) -> Goal:
    if not isinstance(raw, dict):
        raise FormatError(where, f'must be an object like {{"metric": "p95_ms", "at_most": 200}}, '
                          f"got {_describe(raw)}")
    if "metric" not in raw:
        raise FormatError(f"{where}.metric", f"is missing (one of: {', '.join(METRICS)})")
    metric = raw["metric"]
    if not isinstance(metric, str):
        raise FormatError(f"{where}.metric", f"must be a string, got {_describe(metric)}")
    if metric not in METRICS:
        raise FormatError(f"{where}.metric", f"unknown metric {quoted(metric)} (known: {', '.join(METRICS)})")
    allowed = allowed_fields(metric)
    for key in raw:
        if key not in allowed:
            shown = key if key.replace("_", "").isalnum() and len(key) <= 40 else quoted(key)
            raise FormatError(f"{where}.{shown}", f"unknown field for a {metric} goal (known: {', '.join(allowed)})")
    kind = METRICS[metric].kind
    values: dict[str, Any] = {"metric": metric}
    if "label" in raw:
        label = raw["label"]
        if not isinstance(label, str):
            raise FormatError(f"{where}.label", f"must be a string, got {_describe(label)}")
        if len(label) > MAX_LABEL:
            raise FormatError(f"{where}.label", f"is too long ({len(label)} characters; at most {MAX_LABEL})")
        try:
            label.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"{where}.label", "contains an invalid character (a lone surrogate)") from None
        values["label"] = label
    top = 1.0 if kind == "share" else MAX_TARGET
    for key in ("at_least", "at_most"):
        if key in raw:
            values[key] = check_number(raw[key], f"{where}.{key}", integer=False, minimum=0, maximum=top)
    if kind != "check" and "at_least" not in values and "at_most" not in values:
        raise FormatError(where, f"a {metric} goal needs a target: at_least, at_most or both")
    if "at_least" in values and "at_most" in values and values["at_least"] > values["at_most"]:
        raise FormatError(f"{where}.at_most", f"must be ≥ at_least ({_num(values['at_least'])}), "
                          f"got {_num(values['at_most'])}")
    for key in ("from_s", "to_s"):
        if key in raw:
            values[key] = check_number(raw[key], f"{where}.{key}", integer=False, minimum=0, maximum=1e7)
    if "from_s" in values and "to_s" in values and values["to_s"] <= values["from_s"]:
        raise FormatError(f"{where}.to_s", f"must be > from_s ({_num(values['from_s'])}), got {_num(values['to_s'])}")
    if "max_loss" in raw:
        values["max_loss"] = check_number(raw["max_loss"], f"{where}.max_loss", integer=False, minimum=0, maximum=1)
    if "seconds" in raw:
        values["seconds"] = check_number(raw["seconds"], f"{where}.seconds", integer=False, minimum=2, maximum=3600)
    return Goal(**values)


def goals_to_list(goals: list[Goal]) -> list[dict[str, Any]]:
    return [g.to_dict() for g in goals]
