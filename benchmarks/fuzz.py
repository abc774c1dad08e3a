"""Fuzz the engine by hand over many random files (tests/simulation/random_topologies.py).

    python benchmarks/fuzz.py CHECK FIRST LAST [--tiers] [--data]

CHECK is one of:
  sliced   the same totals and per-second rows in one call, 1 s, 0.37 s and random slices
  tick     the same totals at tick_ms 1, 10 and 20 (constant rates; files with load-aware
           balancers are skipped: their slower path decides tick by tick by design)
  events   sync servers' event window and discrete-event pass against the sweeps, request by
           request (files without sync servers or with load-aware balancers are skipped;
           the one difference docs/engine.md describes is allowed)
  clicks   random fail/recover clicks at random moments: no error, every request counted
  edits    random live edits at random moments: no error but a clear refusal, every request counted
  python   the same totals and per-second rows without numba (SCALELAB_JIT=0: the kernels run
           as Python, as in the packaged app) as with the compiled kernels (first 6 s)
  order    the same totals and per-second rows (by column) with the nodes in another order
  noop     the document taken in again at random moments (an edit that changed nothing): the
           same totals and per-second rows as without
  traces   every request traced: the served and failed counts per second and cause, the mean
           response time, each second's p95 (within its histogram bin), goals measured over
           random windows (grading.py: shares, throughput, mean, p95), and the utilization
           and queue of each server and database (where no health check, session lookup,
           replication or autoscaling adds work no trace shows) as the traces give them,
           independently of the engine's books (first 10 s; odd seeds stepped unevenly with
           random fail/recover clicks, the clicked nodes' utilization and queue not checked)

--tiers adds an API tier (servers calling servers), --data sharded or multi-primary data,
tables on two databases and joins, --joins (with --data) joins in either order, --extras
what the others leave at its default (machine types, VRRP priorities, a balancer behind a
balancer, a caching proxy in front, cache connections, diurnal traffic...). Prints one
line per file and the seeds that failed; the test suite runs a few of each
(tests/simulation/test_trust.py)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "simulation"))

from random_topologies import random_topology  # noqa: E402
from test_trust import (assert_an_unchanged_edit_changes_nothing, assert_same_however_sliced,  # noqa: E402
                        assert_the_order_of_the_nodes_changes_nothing, outcome)

from simulation.compiler import SimulationError  # noqa: E402
from simulation.engine import Simulation  # noqa: E402
from simulation.fileformat import dumps, loads  # noqa: E402
from simulation.flight import FLAG_CHECK, FLAG_INTERNAL  # noqa: E402
from simulation.goals import Goal  # noqa: E402
from simulation.grading import measure_number  # noqa: E402
from simulation.latency_hist import BIN_RATIO, LAT_MIN_MS  # noqa: E402
from simulation.machines import CUSTOM, DERIVED  # noqa: E402

AWARE = ("least_connections", "power_of_two", "least_response_time")
EDITS = [("server", "sessions", ["local", "cookie"]), ("server", "replicas", [1, 2, 3, 4]),
         ("server", "blocking_calls", [True, False]), ("server", "workers", [1, 3, 8]),
         ("database", "primaries", [1, 2, 3]), ("database", "shards", [1, 2, 3]),
         ("database", "read_replicas", [0, 1, 2]), ("load_balancer", "affinity", ["none", "sticky"]),
         ("load_balancer", "algorithm", ["random", "round_robin", "least_connections", "consistent_hash"]),
         ("client", "rate_rps", [20.0, 300.0, 1500.0]), ("server", "autoscale", [True, False]),
         ("server", "queue_limit", [0, 3, 50, 1000]), ("database", "queue_limit", [0, 10, 1000]),
         ("cache", "capacity_items", [10, 1000]), ("database", "connections", [1, 4, 20])]


def _has(doc, kind: str, param: str, values) -> bool:
    return any(doc.kind(n) == kind and doc.params(n)[param] in values for n in doc.node_ids())


def sliced(doc, seed: int) -> str:
    assert_same_however_sliced(doc, 12.0, seed)
    return "same"


def python(doc, seed: int) -> str:
    import json
    import subprocess
    code = ("import sys, json; sys.path.insert(0, 'tests/simulation'); from test_trust import outcome; "
            "from simulation.fileformat import loads; print(json.dumps(outcome(loads(sys.stdin.read()), [6.0])))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], input=dumps(doc), cwd=root, capture_output=True, text=True,
                         env=dict(os.environ, SCALELAB_JIT="0"), timeout=1800)
    assert out.returncode == 0, out.stderr[-500:]
    assert json.loads(out.stdout.splitlines()[-1]) == json.loads(json.dumps(outcome(doc, [6.0]))), "differ"
    return "same"


def order(doc, seed: int) -> str:
    assert_the_order_of_the_nodes_changes_nothing(doc, 12.0, seed)
    return "same"


def noop(doc, seed: int) -> str:
    assert_an_unchanged_edit_changes_nothing(doc, 12.0, seed)
    return "same"


def tick(doc, seed: int) -> str:
    if _has(doc, "load_balancer", "algorithm", AWARE):
        return "skipped"
    for n in doc.node_ids():
        if doc.kind(n) == "client":
            doc.set_params(n, {"pattern": {"type": "constant"}})
    res = []
    for t in (1.0, 10.0, 20.0):
        doc.set_settings(tick_ms=t)
        res.append(outcome(doc, [8.0])[0])
    diff = {k: [r[k] for r in res] for k in res[0] if not res[0][k] == res[1][k] == res[2][k]}
    assert not diff, str(diff)[:300]
    return "same"


def events(doc, seed: int) -> str:
    if not _has(doc, "server", "blocking_calls", (True,)) or _has(doc, "load_balancer", "algorithm", AWARE):
        return "skipped"
    runs = []
    for flag in ("1", "0"):
        os.environ["SCALELAB_BLOCKING_EVENTS"] = flag
        sim = Simulation(doc)
        sim.trace_every(1, cap=10**7)
        sim.run_until(8.0)
        runs.append({tr.key: (tr.outcome, tr.cause, tr.end_s) for tr in sim.traces() if tr.birth_s < 6.0})
    os.environ.pop("SCALELAB_BLOCKING_EVENTS")
    fast, slow = runs
    diff = [k for k, v in fast.items() if v != slow.get(k) and v[0] != "in_flight"
            and slow.get(k, ("in_flight",))[0] != "in_flight"]
    assert not diff, f"{len(diff)} requests differ, e.g. {[(fast[k], slow[k]) for k in diff[:2]]}"
    return "same"


NOT_USER = FLAG_CHECK | FLAG_INTERNAL


def _traced_busy(sim, node: str, until: float, n: int) -> np.ndarray:
    """A node's busy seconds per second from the traces: its own service, and at a
    blocking server until the request leaves the network (in flight: until ``until``)."""
    holds = bool(sim.stations.hold[sim.net.node_stations[sim.net.node_ids.index(node)]].any())
    busy = np.zeros(n)
    for tr in sim.traces():
        for h in tr.hops:
            if h.node != node or h.start_s is None:
                continue
            end = h.end_s
            if holds and h.outcome != "failed":
                end = until if tr.outcome == "in_flight" else max(tr.end_s, h.end_s)
            lo, hi = h.start_s, min(end, until)
            for k in range(int(lo), min(int(np.ceil(hi)), n)):
                busy[k] += max(0.0, min(hi, k + 1) - max(lo, k))
    return busy


def _traced_waiting(sim, node: str, n: int) -> np.ndarray:
    """A node's queue per second from the traces: the requests that arrived there and had
    not started (or given up) at the second's end."""
    q = np.zeros(n)
    for tr in sim.traces():
        for h in tr.hops:
            if h.node == node:
                until = h.start_s if h.start_s is not None else h.end_s
                for k in range(int(np.ceil(h.arrived_s)), int(np.ceil(min(until, n + 1.0)))):
                    if k >= 1:
                        q[k - 1] += 1
    return q


def _check_goal_windows(sim, trs, births: np.ndarray, n: int, rng) -> None:
    """Goals measured over random windows of the run (grading.py) against the traces."""
    for _ in range(4):
        a = float(rng.integers(0, n)) + float(rng.choice([0.0, 0.0, 0.5]))
        b = a + float(rng.uniform(0.5, n - a + 0.5))
        first, last = int(np.ceil(a - 1e-9)), min(int(np.ceil(b - 1e-9)), n)   # the rows starting in [a, b)
        born = int(((births >= first) & (births < last)).sum())
        ended = [tr for tr in trs if tr.outcome != "in_flight" and first <= tr.end_s < last]
        ms = [1000.0 * (tr.end_s - tr.birth_s) for tr in ended if tr.outcome == "answered"]
        fails = sum(1 for tr in ended if tr.outcome == "failed")
        for metric, want in (("served_share", len(ms) / born if born else None),
                             ("failed_share", fails / born if born else None),
                             ("throughput", len(ms) / (last - first) if last > first else None),
                             ("mean_ms", float(np.mean(ms)) if ms else None)):
            got = measure_number(sim, Goal(metric, from_s=a, to_s=b))
            if want is None:
                assert np.isnan(got), f"{metric} over [{a}, {b}): {got}, traces: nothing to measure"
            else:
                tol = 1e-6 if metric == "mean_ms" else 1e-9 * max(abs(want), 1.0)   # (latencies: whole ns)
                assert abs(got - want) <= tol, f"{metric} over [{a}, {b}): {got}, traces {want}"
        if ms:
            got = measure_number(sim, Goal("p95_ms", from_s=a, to_s=b))
            lo, hi = np.quantile(ms, 0.95, method="inverted_cdf"), np.quantile(ms, 0.95, method="higher")
            assert lo / BIN_RATIO - LAT_MIN_MS <= got <= hi * BIN_RATIO + LAT_MIN_MS, \
                f"p95 over [{a}, {b}): {got}, traces {lo}..{hi}"


def _plain_nodes(doc) -> list[str]:
    """Servers and databases whose every unit of work is a traced request's: no health
    checks of a balancer with a cost, no sessions kept there, no replication or shards,
    not autoscaled, never failed by an event (its held workers would be dropped)."""
    checked = {b for a, b in doc.edges() if doc.kind(a) == "load_balancer"
               and float(doc.params(a).get("health_check_cost_ms", 0.0) or 0.0) > 0}
    stores = {b for a, b in doc.edges() if doc.kind(a) == "server"
              and doc.params(a).get("sessions") == "database"}
    failed = {ev.node for ev in doc.events}
    out = []
    for n in doc.node_ids():
        p = doc.params(n)
        if doc.kind(n) == "server" and not p.get("autoscale") and n not in checked and n not in failed:
            out.append(n)
        elif doc.kind(n) == "database" and n not in stores and n not in failed and p.get("read_replicas", 0) == 0 \
                and p.get("primaries", 1) == 1 and p.get("shards", 1) == 1:
            out.append(n)
    return out


def traces(doc, seed: int) -> str:
    until = 10.0
    sim = Simulation(doc)
    sim.trace_every(1, cap=10**7)
    rng = np.random.default_rng(seed)
    clicked = set()
    if seed % 2:   # odd seeds: stepped unevenly, with random fail/recover clicks between the steps
        while sim.now < until:
            sim.run_until(min(until, sim.now + float(rng.uniform(0.05, 1.5))))
            if rng.random() < 0.3:
                node = str(rng.choice(doc.node_ids()))
                clicked.add(node)
                copies = len(sim.net.node_stations[sim.net.node_ids.index(node)])
                replica = int(rng.integers(copies)) if copies > 1 and rng.random() < 0.5 else None
                (sim.fail if rng.random() < 0.6 else sim.recover)(node, replica)
    sim.run_until(until)
    m = sim.metrics
    assert m.width == 1
    n = m.n
    trs = sim.traces()
    served = np.zeros(n)
    failed: dict[str, np.ndarray] = {}
    lat = []
    for tr in trs:
        if tr.outcome == "in_flight" or tr.end_s >= n:
            continue
        k = int(tr.end_s)
        if tr.outcome == "answered":
            served[k] += 1
            lat.append(tr.end_s - tr.birth_s)
        else:
            failed.setdefault(tr.cause, np.zeros(n))[k] += 1
    assert np.array_equal(served, m.served_rps), \
        f"served per second: traces {served.tolist()} engine {m.served_rps.tolist()}"
    for cause, rows in m.failed_by_cause.items():
        mine = failed.get(cause, np.zeros(n))
        assert np.array_equal(mine, rows), f"failed {cause} per second: traces {mine.tolist()} engine {rows.tolist()}"
    by_second: dict[int, list[float]] = {}
    for tr in trs:
        if tr.outcome == "answered" and tr.end_s < n:
            by_second.setdefault(int(tr.end_s), []).append(1000.0 * (tr.end_s - tr.birth_s))
    for k, ms in by_second.items():   # the histogram's p95: within its bin of the exact quantile
        lo, hi = np.quantile(ms, 0.95, method="inverted_cdf"), np.quantile(ms, 0.95, method="higher")
        assert lo / BIN_RATIO - LAT_MIN_MS <= m.p95_ms[k] <= hi * BIN_RATIO + LAT_MIN_MS, \
            f"p95 of second {k}: {m.p95_ms[k]} ms, traces {lo}..{hi}"
    if lat:
        got = float(np.nansum(m.mean_ms * m.served_rps) / m.served_rps.sum())
        assert abs(got - 1000.0 * float(np.mean(lat))) < 1e-6 * max(got, 1.0), f"mean {got} ms, traces {1000 * np.mean(lat)}"
    # requests still undecided at a blocking server are traced once decided: their births from the engine
    known = np.array(sorted(tr.key for tr in trs), dtype=np.uint64)
    born = [tr.birth_s for tr in trs] + [float(b) for p in sim.pending if len(p)
                                         for b in p.birth[~np.isin(p.key, known) & ((p.flags & NOT_USER) == 0)]]
    births = np.bincount(np.array([int(b) for b in born if b < n], dtype=np.int64), minlength=n)
    assert np.array_equal(births, m.offered_rps), \
        f"offered per second: traces {births.tolist()} engine {m.offered_rps.tolist()}"
    _check_goal_windows(sim, trs, np.array(born), n, rng)
    checked = [node for node in _plain_nodes(doc) if node not in clicked]
    for node in checked:
        i = sim.net.node_ids.index(node)
        cap = sim.net.st_workers[sim.net.node_stations[i]].sum()
        ref = np.minimum(_traced_busy(sim, node, until, n) / cap, 1.0)
        got = m.util[node]
        assert np.abs(got - ref).max() < 1e-6, f"utilization of {node}: traces {ref.round(5).tolist()} " \
                                               f"engine {got.round(5).tolist()}"
        waiting = _traced_waiting(sim, node, n)
        assert np.array_equal(waiting, m.queue[node]), f"queue of {node}: traces {waiting.tolist()} " \
                                                      f"engine {m.queue[node].tolist()}"
    return f"same ({len(trs)} traces, utilization of {len(checked)} nodes)"


def _random_run(doc, seed: int, act) -> str:
    sim = Simulation(doc)
    rng = np.random.default_rng(seed)
    target = 0.0
    while target < 10.0:
        target = min(10.0, target + float(rng.uniform(0.05, 1.5)))
        sim.run_until(target)
        act(sim, rng)
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"], "a request was lost"
    return "ok"


def clicks(doc, seed: int) -> str:
    def act(sim, rng):
        if rng.random() < 0.3:
            node = str(rng.choice(doc.node_ids()))
            copies = len(sim.net.node_stations[sim.net.node_ids.index(node)])
            replica = int(rng.integers(copies)) if copies > 1 and rng.random() < 0.5 else None
            (sim.fail if rng.random() < 0.6 else sim.recover)(node, replica)
    return _random_run(doc, seed, act)


def edits(doc, seed: int) -> str:
    state = {"doc": doc, "refused": 0}

    def act(sim, rng):
        kind, param, values = EDITS[int(rng.integers(len(EDITS)))]
        nodes = [n for n in state["doc"].node_ids() if state["doc"].kind(n) == kind]
        if nodes and rng.random() < 0.6:
            new = loads(dumps(state["doc"]))
            node = str(rng.choice(nodes))
            change = {param: values[int(rng.integers(len(values)))]}
            if param in DERIVED and new.params(node).get("machine", CUSTOM) != CUSTOM:
                change["machine"] = CUSTOM   # as the designer asks: a machine type sets it
            new.set_params(node, change)
            try:
                sim.update_document(new)
                state["doc"] = new
            except SimulationError:   # refused with a message: the run goes on as it was
                state["refused"] += 1
    return f"{_random_run(doc, seed, act)}, {state['refused']} edits refused"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("check", choices=["sliced", "tick", "events", "clicks", "edits", "noop", "python", "order",
                                          "traces"])
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--tiers", action="store_true")
    ap.add_argument("--data", action="store_true")
    ap.add_argument("--joins", action="store_true", help="with --data: clients join two databases in either order")
    ap.add_argument("--extras", action="store_true", help="the parameters and shapes the others leave at defaults")
    a = ap.parse_args()
    check = globals()[a.check]
    bad = []
    for seed in range(a.first, a.last):
        doc = loads(dumps(random_topology(seed, duration_s=12.0, tiers=a.tiers, data=a.data, joins=a.joins,
                                            extras=a.extras)))
        t = time.process_time()
        try:
            what = check(doc, seed)
        except Exception as e:   # noqa: BLE001 - every failure is a finding
            bad.append(seed)
            what = f"FAILED {type(e).__name__}: {str(e)[:300]}"
        print(f"seed {seed}: {what} ({time.process_time() - t:.1f} CPU s)", flush=True)
    print("failed seeds:", bad)


if __name__ == "__main__":
    main()
