"""The machine catalogue: the sizes a server can be, their capacity and their price.

Vertical scaling means picking a bigger machine from a short list, and the list
ends: the largest type is the ceiling. The types are modelled on AWS's
general-purpose m5 family (on-demand Linux price in us-east-1, as AWS listed it
from 2018 on: $0.096 per hour per 2 vCPUs; 8 GiB of memory per 2 vCPUs). Within
a family AWS prices grow *linearly* with the vCPUs.

What a machine can serve is **our assumption**, not AWS's: a web app on one core
serves 50 req/s (20 ms of CPU per request) and runs 2 workers per core (gunicorn's
rule of thumb, 2 × cores + 1), each at 25 req/s, so a 2-vCPU machine is exactly the
default server (100 req/s, 4 workers). More cores do not add capacity one for one:
locks, the memory bus and the kernel are shared. The effective cores follow
Gunther's Universal Scalability Law, ``C(N) = N / (1 + σ(N − 1) + κN(N − 1))``
with contention σ = 0.02 and coherency κ = 0.00003, so the price per req/s grows
at the top (the price is linear, the capacity is not).

``custom`` keeps today's behaviour: ``capacity_rps``, ``workers`` and
``price_per_hour`` are set by hand. A catalogue type sets all three; a file that
names a type must leave them out (one meaning per file).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CUSTOM = "custom"
SIGMA, KAPPA = 0.02, 0.00003   # USL contention and coherency (our assumption)
RPS_PER_WORKER = 25.0           # 40 ms per request, as the default server
PRICE_PER_VCPU_HOUR = 0.048     # m5: $0.096 per hour for 2 vCPUs, linear within the family
DERIVED = ("capacity_rps", "workers", "price_per_hour")   # what a catalogue type sets


@dataclass(frozen=True)
class Machine:
    name: str
    vcpus: int
    memory_gib: int
    workers: int
    capacity_rps: float
    price_per_hour: float

    @property
    def usd_per_rps_hour(self) -> float:
        """What one req/s of capacity costs per hour on this type."""
        return self.price_per_hour / self.capacity_rps


def effective_cores(vcpus: int) -> float:
    """The Universal Scalability Law: cores that do useful work out of ``vcpus``."""
    n = float(vcpus)
    return n / (1.0 + SIGMA * (n - 1.0) + KAPPA * n * (n - 1.0))


def _machine(size: str, vcpus: int) -> Machine:
    workers = max(1, round(2 * effective_cores(vcpus)))
    return Machine(f"m5.{size}", vcpus, 4 * vcpus, workers, workers * RPS_PER_WORKER,
                   round(PRICE_PER_VCPU_HOUR * vcpus, 3))


CATALOGUE: tuple[Machine, ...] = tuple(_machine(size, v) for size, v in (
    ("large", 2), ("xlarge", 4), ("2xlarge", 8), ("4xlarge", 16), ("8xlarge", 32), ("16xlarge", 64),
    ("24xlarge", 96)))
BY_NAME: dict[str, Machine] = {m.name: m for m in CATALOGUE}
CHOICES: tuple[str, ...] = (CUSTOM, *BY_NAME)
LARGEST = CATALOGUE[-1]


def resolve(params: dict[str, Any]) -> dict[str, Any]:
    """A server's parameters with its machine type's capacity, workers and price filled in
    (in place; returned for convenience). ``custom`` (or no machine) leaves them as given."""
    m = BY_NAME.get(params.get("machine", CUSTOM))
    if m is not None:
        params.update(capacity_rps=m.capacity_rps, workers=m.workers, price_per_hour=m.price_per_hour)
    return params


def explicit_problem(explicit: dict[str, Any]) -> tuple[str, str] | None:
    """(parameter, message) when a file sets what its catalogue machine type decides, else None."""
    m = BY_NAME.get(explicit.get("machine", CUSTOM))
    if m is None:
        return None
    for name in DERIVED:
        if name in explicit:
            value = {"capacity_rps": f"{m.capacity_rps:g} req/s", "workers": f"{m.workers} workers",
                     "price_per_hour": f"${m.price_per_hour:g}/h"}[name]
            return name, (f'is set by machine "{m.name}" ({value}); leave it out, or set machine to '
                          f'"custom" to choose it yourself')
    return None


def changes_for(explicit: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """An edit of a server, completed so that the node stays unambiguous.

    Choosing a catalogue type unsets capacity_rps, workers and price_per_hour (the type
    decides them); going from a type back to ``custom`` keeps that type's values as
    explicit ones, so the server does not change size by surprise. Undo restores both,
    since the returned changes name every parameter that moves."""
    if "machine" not in changes:
        return changes
    old = BY_NAME.get(explicit.get("machine", CUSTOM))
    new = BY_NAME.get(changes["machine"] or CUSTOM)
    out = dict(changes)
    if new is not None:
        for name in DERIVED:
            out.setdefault(name, None)
    elif old is not None:
        for name in DERIVED:
            out.setdefault(name, getattr(old, name))
    return out


def table_markdown() -> str:
    """The catalogue as a Markdown table (docs)."""
    rows = ["| machine | vCPUs | memory | workers | capacity | price | $/h per 100 req/s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for m in CATALOGUE:
        rows.append(f"| `{m.name}` | {m.vcpus} | {m.memory_gib} GiB | {m.workers} | {m.capacity_rps:g} req/s | "
                    f"${m.price_per_hour:.3f}/h | ${100 * m.usd_per_rps_hour:.3f} |")
    return "\n".join(rows)


def station_prices(document: Any, node_ids: list[str], st_node: Any, st_is_server: Any) -> Any:
    """Dollars per second of each station: its server's price per hour / 3600; 0 for the rest."""
    import numpy as np
    per_node = np.array([float(document.params(n).get("price_per_hour", 0.0)) if document.kind(n) == "server"
                         else 0.0 for n in node_ids])
    return np.where(st_is_server, per_node[st_node] if len(per_node) else 0.0, 0.0) / 3600.0
