"""The glossary: every component, parameter, setting, metric, failure cause and plot.

Components, parameters and settings are generated from their declarations
(``simulation.kinds``: labels, help texts, units, ranges, choices), so the glossary
cannot go stale; the goal metrics reuse ``simulation.goals.METRICS``. What no
declaration says (the per-second columns, the totals, the counters, the failure
causes and the plots) is written here, and a test checks that every column, total,
counter and cause the engine produces has an entry. No Qt here.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

from simulation.goals import METRICS
from simulation.kinds import KINDS, PATTERN_VARIANTS, SIMULATION_PARAMS
from simulation.params import Param
from simulation.params import _fmt as fmt_number
from simulation.state import CAUSE_LABELS, FAILURE_CAUSES

SECTIONS = ("Components", "Parameters", "Traffic patterns", "Simulation settings", "Metrics",
            "Failure causes", "Plots")


@dataclass(frozen=True)
class Entry:
    """One glossary entry. ``key``: ``kind:server``, ``param:server.capacity_rps``,
    ``pattern:ramp.start_s``, ``setting:tick_ms``, ``metric:p95_ms``, ``cause:timeout``, ``plot:latency``."""
    key: str
    title: str
    section: str
    html: str

    def matches(self, words: str) -> bool:
        """Whether every word of ``words`` occurs in the title, key or text (case-insensitive)."""
        hay = f"{self.title} {self.key} {self.section} {html.unescape(re.sub(r'<[^>]+>', ' ', self.html))}".lower()
        return all(w in hay for w in words.lower().split())


# The per-second columns and totals that are not goal metrics, and the counters.
METRIC_TEXT: dict[str, tuple[str, str, str]] = {   # name -> (label, unit, text)
    "arrived": ("arrived", "requests", "Requests that reached their first node (browser hits excluded). At every "
                "moment arrived = served + failed + in flight."),
    "served": ("served", "requests", "Requests that got their answer, whatever it took."),
    "failed": ("failed", "requests", "Requests that failed, each with one cause (see Failure causes)."),
    "failed_by_cause": ("failures by cause", "requests", "The failed requests split by cause (the JSON's "
                        "failed_by_cause; the CSV's failed:<cause> columns, in requests per second)."),
    "in_flight": ("in flight", "requests", "Requests queued or in service when the run stopped."),
    "offered_rps": ("offered load", "req/s", "Requests per second that arrived (the Throughput plot's Offered)."),
    "served_rps": ("served per second", "req/s", "Requests per second that were answered (the Throughput "
                   "plot's Served)."),
    "failed_rps": ("failed per second", "req/s", "Requests per second that failed (the Throughput plot's Failed)."),
    "time_s": ("time", "s", "End of the row's span of simulated time (a CSV column)."),
    "span_s": ("row span", "s", "How much simulated time a row covers: 1 s, or 2 s, 4 s, … once a long run's "
               "rows are merged in pairs."),
    "active_servers": ("active servers", "replicas", "Server replicas that are up and taking traffic (booting "
                       "and failed ones excluded): the Active servers plot."),
    "util": ("utilization", "%", "Share of the time a node's workers (connections) are busy, the mean over its "
             "replicas that are up (util:<node>; util:<node>#<shard> per shard). Near 100 % the queue grows "
             "and latency climbs the knee."),
    "util_max": ("busiest replica", "%", "Utilization of a node's busiest replica that is up (util_max:<node>): "
                 "the canvas colours a node by it, so a saturated primary is not hidden by idle copies."),
    "forged_rejected": ("forged cookies refused", "count", "Forged session cookies a server refused (signed "
                        "cookies): the user gets an empty session."),
    "browser_hits": ("browser hits", "count", "Page views answered by the browser's own copy (Cache-Control "
                     "max-age): they never reach a server and are not counted as arrived."),
    "not_modified": ("304 Not Modified", "count", "Revalidations (ETag, If-None-Match) answered 304 Not "
                     "Modified: cheap for the server, no database call."),
    "page_views": ("page views", "views", "What users ask for: every page view is either a browser hit or a "
                   "request that arrives (page views = browser_hits + arrived)."),
    "page_view_mean_ms": ("page-view latency", "ms", "Mean latency of what users see: served requests and "
                          "browser hits (answered in 0 ms) together."),
    "browser_hit_share": ("browser hit share", "share", "Browser hits / page views: how much of the traffic "
                          "the browsers' caches take away."),
    "stale_page_views": ("stale page views", "count", "Browser hits that showed a copy older than the item on "
                         "the server (written since the copy was fetched)."),
    "cost_usd": ("cost in dollars", "$", "What the server replicas that exist cost (their machine's price per "
                 "hour), booting and draining ones included."),
    "server_hours": ("server hours", "h", "Replica-hours of servers that existed during the run (cost_server_s "
                     "/ 3600)."),
    "served_by_table": ("served by table", "requests", "Served requests per table of the client's table_mix "
                        "(partitioning)."),
}

CAUSE_TEXT: dict[str, str] = {
    "queue_full": "Rejected on arrival: the node's waiting room (queue_limit) was full.",
    "timeout": "Waited longer than timeout_s for a worker and gave up.",
    "backend_down": "Sent to a node that is down but not yet noticed by the health checks (or the proxy's "
                    "monitor).",
    "no_healthy_backend": "A load balancer had no healthy backend left to send it to.",
    "node_failed": "Was queued or in service at a node when that node failed.",
    "session_lost": "Its user's local session was on another server (re-balanced) or on a dead one.",
}

PLOT_TEXT: dict[str, tuple[str, str]] = {   # plot name -> (title, text)
    "throughput": ("Throughput", "Offered (arrived), served and failed requests per second. Served below "
                   "offered means requests wait or fail; a gap that grows is a queue filling up."),
    "latency": ("Latency", "p50, p95 and p99 of the requests served in each second, in ms: the time from "
                "arrival at the first node to the answer, queueing and downstream calls included. p95 rising "
                "steeply while throughput stays flat is the knee: the system is saturated."),
    "failures": ("Failures by cause", "Failed requests per second, one line per cause (queue full, timeout, "
                 "backend down, …): which part broke, and when the health checks noticed."),
    "utilization": ("Utilization", "Busy share of each node's workers, in %. The node that reaches 100 % first "
                    "is the bottleneck; select a node on the canvas to highlight its line."),
    "active": ("Active servers", "Server replicas up and taking traffic: autoscaling adds and removes them, "
               "failures take them away."),
}

PLOT_METRICS = {"throughput": "offered_rps", "latency": "p95_ms", "failures": "failed_by_cause",
                "utilization": "util", "active": "active_servers"}


def _e(text: str) -> str:
    return html.escape(str(text), quote=False)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def param_html(p: Param, owner: str) -> str:
    """An entry's text for one declared parameter: its help, type, default, range, unit, choices."""
    rows = [f"<h3>{_e(p.title)}</h3><p><code>{_e(p.name)}</code> · {_e(owner)}"
            + (f" · group <i>{_e(p.group)}</i>" if p.group else "") + "</p>", f"<p>{_e(p.help)}</p><ul>"]
    if p.type != "object":
        rows.append(f"<li>Default: <b>{_e(_value(p.default))}</b>{(' ' + _e(p.unit)) if p.unit else ''}</li>")
    rng = p.range_text()
    if rng:
        rows.append(f"<li>Allowed: {_e(rng)}{(' ' + _e(p.unit)) if p.unit else ''}</li>")
    elif p.unit:
        rows.append(f"<li>Unit: {_e(p.unit)}</li>")
    if p.choices:
        rows.append("<li>Choices: " + ", ".join(f"<code>{_e(c)}</code>" for c in p.choices) + "</li>")
    if p.variants:
        rows.append("<li>Shapes: " + ", ".join(f'<a href="glossary:pattern:{v}">{_e(v)}</a>'
                                              for v in p.variants) + "</li>")
    rows.append("</ul>")
    return "".join(rows)


def _kind_entries() -> list[Entry]:
    out = []
    for kind in KINDS.values():
        sends = ", ".join(KINDS[k].label.lower() for k in kind.sends_to) or "nothing: it ends a request's path"
        links = ", ".join(f'<a href="glossary:param:{kind.name}.{p.name}">{_e(p.title)}</a>' for p in kind.params)
        text = (f"<h3>{_e(kind.label)}</h3><p><code>{kind.name}</code></p><p>{_e(kind.description)}</p>"
                f"<p>Sends traffic to: {_e(sends)}.</p><p>Parameters: {links}.</p>")
        out.append(Entry(f"kind:{kind.name}", kind.label, "Components", text))
        for p in kind.params:
            out.append(Entry(f"param:{kind.name}.{p.name}", f"{p.title} ({kind.label.lower()})", "Parameters",
                             param_html(p, kind.label)))
    return out


def _pattern_entries() -> list[Entry]:
    out = []
    for variant, params in PATTERN_VARIANTS.items():
        fields = ", ".join(f'<a href="glossary:pattern:{variant}.{p.name}">{_e(p.title)}</a>' for p in params)
        out.append(Entry(f"pattern:{variant}", f"{variant.capitalize()} traffic", "Traffic patterns",
                         f"<h3>{variant.capitalize()} traffic</h3><p>A client's <code>pattern</code> of type "
                         f"<code>{variant}</code>.</p>" + (f"<p>Fields: {fields}.</p>" if params else
                                                           "<p>The rate stays at rate_rps.</p>")))
        for p in params:
            out.append(Entry(f"pattern:{variant}.{p.name}", f"{p.title} ({variant} pattern)", "Traffic patterns",
                             param_html(p, f"{variant} pattern")))
    return out


def _metric_entries() -> list[Entry]:
    out = []
    for m in METRICS.values():
        unit = f" ({_e(m.unit)})" if m.unit else ""
        out.append(Entry(f"metric:{m.name}", m.label, "Metrics",
                         f"<h3>{_e(m.label.capitalize())}</h3><p><code>{m.name}</code>{unit}</p><p>{_e(m.help)}</p>"
                         "<p>Can be a goal of a graded challenge.</p>"))
    for name, (label, unit, text) in METRIC_TEXT.items():
        if name not in METRICS:
            out.append(Entry(f"metric:{name}", label, "Metrics",
                             f"<h3>{_e(label.capitalize())}</h3><p><code>{name}</code> ({_e(unit)})</p>"
                             f"<p>{_e(text)}</p>"))
    for cause in FAILURE_CAUSES:
        out.append(Entry(f"cause:{cause}", CAUSE_LABELS[cause], "Failure causes",
                         f"<h3>{_e(CAUSE_LABELS[cause])}</h3><p><code>{cause}</code> (the CSV's "
                         f"<code>failed:{cause}</code>)</p><p>{_e(CAUSE_TEXT[cause])}</p>"))
    for name, (title, text) in PLOT_TEXT.items():
        metric = PLOT_METRICS[name]
        out.append(Entry(f"plot:{name}", f"{title} plot", "Plots",
                         f"<h3>{_e(title)} plot</h3><p>{_e(text)}</p>"
                         f'<p>See <a href="glossary:metric:{metric}">{_e(metric)}</a>.</p>'))
    return out


def entries() -> list[Entry]:
    """Every entry, by section, in declaration order."""
    settings = [Entry(f"setting:{p.name}", p.title, "Simulation settings", param_html(p, "simulation settings"))
                for p in SIMULATION_PARAMS]
    return _kind_entries() + _pattern_entries() + settings + _metric_entries()


def metric_names() -> set[str]:
    """Names with a metric entry (the goals' metrics, the columns and totals, the counters)."""
    return set(METRICS) | set(METRIC_TEXT)


def param_key(kinds: list[str], name: str) -> str:
    """The entry of parameter ``name`` for the first of ``kinds`` that has it (``""`` if none)."""
    for kind in kinds:
        if kind in KINDS and name in KINDS[kind].param_names:
            return f"param:{kind}.{name}"
    if any(p.name == name for p in SIMULATION_PARAMS):
        return f"setting:{name}"
    return ""
