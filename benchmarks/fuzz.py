"""Fuzz the engine by hand over many random files (tests/simulation/random_topologies.py).

    python benchmarks/fuzz.py CHECK FIRST LAST [--tiers] [--data]

CHECK is one of:
  sliced   the same totals and per-second rows in one call, 1 s, 0.37 s and random slices
  tick     the same totals at tick_ms 1, 10 and 20 (constant rates; files where a load-aware
           balancer takes the slower path, or runs in one-tick windows, are skipped: they
           decide tick by tick by design)
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
from trace_checks import check_against_traces  # noqa: E402
from test_trust import (assert_an_unchanged_edit_changes_nothing, assert_same_however_sliced,  # noqa: E402
                        assert_the_order_of_the_nodes_changes_nothing, outcome)

from simulation.compiler import SimulationError  # noqa: E402
from simulation.engine import Simulation  # noqa: E402
from simulation.fileformat import dumps, loads  # noqa: E402
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
    from simulation.routing import Routing
    for n in doc.node_ids():
        if doc.kind(n) == "client":
            doc.set_params(n, {"pattern": {"type": "constant"}})
    if Simulation(doc)._one_tick:   # a balancer's backends on two levels, one calling the other (contested.py)
        return "skipped (one-tick windows)"
    res, slower = [], []
    originals = {name: getattr(Routing, name) for name in ("_balance_by_tick", "_balance_together")}

    def noting(f):
        def wrapped(self, *a, **k):
            slower.append(1)
            return f(self, *a, **k)
        return wrapped
    try:   # a load-aware balancer on the slower path decides tick by tick by design: skipped
        for name, f in originals.items():
            setattr(Routing, name, noting(f))
        for t in (20.0, 10.0, 1.0):   # the cheapest first: a file on the slower path stops there
            doc.set_settings(tick_ms=t)
            res.append(outcome(doc, [8.0])[0])
            if slower:
                break
    finally:
        for name, f in originals.items():
            setattr(Routing, name, f)
    if slower:
        return "skipped (slower path)"
    # counts exactly; times to 1e-9: a client's arrivals are generated on the tick grid, so an
    # arrival's last float bits, and now and then its rounding to whole ns, change with it
    # (seed 470: the mean 27.265338062744 or ...062354 ms)
    def close(a, b):
        if isinstance(a, float) and isinstance(b, float):
            return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
        return a == b
    diff = {k: [r[k] for r in res] for k in res[0] if not (close(res[0][k], res[1][k]) and close(res[0][k], res[2][k]))}
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


def traces(doc, seed: int) -> str:
    return check_against_traces(doc, seed)


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
