"""Single points of failure measured with the engine: fail one machine, count what is lost.

Every run simulates the document from the same seed, so clients send exactly
the same requests in every run; what differs is only what the failure does to
them. The file's own scheduled failures and recoveries are left out (on a copy
of the document): the question is what *this* machine costs, not what the
lesson's script does. The machine (replica 0, a database's primary, or the
whole node: ``analysis.failed_machine``) fails at t = 0 and stays down.

What is lost is counted over the **second half** of each run only: by then the
health checks have taken a dead backend out, failover has promoted a replica,
the autoscaler has replaced a replica and caches have warmed up (the CLI warns
when a delay of the file is longer than that), so the number is what stays
lost while the machine is down, not the few seconds before anything reacts.
The loss is the share of the requests served without the failure that are
not served with it, for all clients together and for each client: a client
that loses (nearly) all is cut off, which makes the node a full SPOF.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .analysis import BY_CAPACITY, FULL_MIN, PARTIAL_MIN, Measured, failed_machine, machines
from .caching import RATE_TIME_CONSTANT_S
from .document import Document
from .engine import Simulation
from .flight import FLAG_SESSION_LOST, Batch

UNLIMITED = 1000.0  # capacity factor of the runs that leave overload out


class _Counted(Simulation):
    """A simulation that also counts, per client, the requests served from ``since`` on."""

    def __init__(self, doc: Document, seed: int, since: float) -> None:
        super().__init__(doc, seed=seed)
        self._since = since
        self._offsets = np.array([c.user_offset for c in self.net.clients], dtype=np.int64)
        self.served_by_client = np.zeros(len(self._offsets))

    def _finish(self, done: Batch) -> None:
        super()._finish(done)
        if not len(done) or not len(self._offsets):
            return
        ok = ((done.flags & FLAG_SESSION_LOST) == 0) & (done.fin >= self._since)
        if ok.any():
            who = np.searchsorted(self._offsets, done.user[ok], side="right") - 1
            self.served_by_client += np.bincount(who, minlength=len(self._offsets))


def settle_delays(doc: Document) -> dict[str, float]:
    """The delays before the system reacts to a failure, by what causes them (seconds)."""
    out: dict[str, float] = {}
    for n in doc.node_ids():
        p, kind = doc.params(n), doc.kind(n)
        if kind == "load_balancer":
            out["health checks"] = max(out.get("health checks", 0.0),
                                       float(p["health_interval_s"]) * int(p["unhealthy_after"]))
        elif kind == "database" and int(p["read_replicas"]) and float(p["failover_s"]) > 0:
            out["failover"] = max(out.get("failover", 0.0), float(p["failover_s"]))
        elif kind == "cache":   # its hit ratio follows the rates it sees (time constant 10 s)
            out["cache warm-up"] = 3 * RATE_TIME_CONSTANT_S
        elif kind == "server" and p["autoscale"]:
            out["autoscaling"] = max(out.get("autoscaling", 0.0),
                                     float(p["scale_interval_s"]) + float(p["boot_time_s"]))
    return out


def without_events(doc: Document) -> Document:
    """A copy of the document without its scheduled failures and recoveries."""
    quiet = doc.copy()
    quiet.events.clear()
    return quiet


def unlimited(doc: Document) -> Document:
    """A copy where every node is 1000 times faster: nothing is ever overloaded, so
    what is lost is only what nothing takes over. Routing shares are unchanged
    (they follow the ratios of the capacities); load-aware balancers become
    weighted round robin, which is what they amount to under load (with nothing
    loaded they would split equally) and much faster to simulate; autoscaled
    servers keep their starting replicas (idle, they would scale in)."""
    fast = doc.copy()
    for n in fast.node_ids():
        data, p = fast.node(n), fast.params(n)
        for name in ("capacity_rps", "read_capacity_rps", "write_capacity_rps"):
            if name in p:
                data.params[name] = float(p[name]) * UNLIMITED
        if p.get("algorithm") in BY_CAPACITY:
            data.params["algorithm"] = "weighted_round_robin"
        if p.get("autoscale"):   # idle, it would scale in: keep what it starts with (it still replaces)
            data.params["min_replicas"] = machines(fast, n)
    return fast


def measure(doc: Document, seconds: float = 60.0, seed: int | None = None, *, whole_node: bool = False,
            overload: bool = True, progress: Callable[[int, int], None] | None = None,
            processes: int = 1, cancel: Callable[[], bool] | None = None) -> dict[str, Measured]:
    """Fail each node's machine in turn (the whole node if ``whole_node``): ``{node_id: Measured}``.

    Each failure is simulated twice: with unlimited capacity (what nothing takes
    over: the SPOF kind and share) and, if ``overload``, as the file is (what is
    lost in all, overload of the machines left included). Clients are not failed.
    ``progress(done, total)`` is called after each run. ``processes`` > 1 runs them in
    that many worker processes (``parallel.py``): the same numbers, sooner. ``cancel()``
    true stops the runs (between runs, or within 0.1 s in worker processes) and raises
    ``parallel.Cancelled``.
    """
    from .parallel import run_tasks

    quiet = without_events(doc)
    if seed is None:
        seed = int(quiet.settings.get("seed", 1))
    since = seconds / 2
    targets = [n for n in quiet.node_ids() if quiet.kind(n) != "client"]
    versions = [unlimited(quiet)] + ([quiet] if overload else [])
    runs = [(v, fail) for v in range(len(versions)) for fail in [None] + targets]
    total = len(runs)
    tasks = [(_served, (versions[v], seed, since, seconds, fail, whole_node)) for v, fail in runs]
    finished = [0]

    def done(_i: int, _result: np.ndarray) -> None:
        finished[0] += 1
        if progress:
            progress(finished[0], total)

    counts = run_tasks(tasks, processes, done=done, cancel=cancel)
    by_run = dict(zip(runs, counts))
    served = [(by_run[(v, None)], {n: by_run[(v, n)] for n in targets}) for v in range(len(versions))]
    out: dict[str, Measured] = {}
    for n in targets:
        spof_share, worst = _lost(served[0][0], served[0][1][n])
        share = _lost(served[1][0], served[1][1][n])[0] if overload else math.nan
        kind = "full" if worst >= FULL_MIN else "partial" if spof_share >= PARTIAL_MIN else None
        out[n] = Measured(share, spof_share, worst, kind)
    return out


def _served(version: Document, seed: int, since: float, seconds: float, fail: str | None,
            whole_node: bool) -> np.ndarray:
    """One run: the requests each client had served from ``since`` on, with ``fail`` down."""
    sim = _Counted(version, seed, since)
    if fail is not None:
        sim.fail(fail, None if whole_node else failed_machine(version, fail))
    sim.advance(seconds)
    return sim.served_by_client


def _lost(baseline: np.ndarray, served: np.ndarray) -> tuple[float, float]:
    """(share lost by all clients together, by the client that loses most); nan if nothing was served."""
    seen = baseline > 0
    if not seen.any():
        return math.nan, math.nan
    share = float(np.clip(1.0 - served.sum() / baseline.sum(), 0.0, 1.0))
    worst = float(np.clip(1.0 - served[seen] / baseline[seen], 0.0, 1.0).max())
    return share, worst
