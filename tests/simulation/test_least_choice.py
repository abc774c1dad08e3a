"""Load-aware balancers decide request by request (least_choice.py, exact_balance.py):
the numbers match an independent per-request simulation, do not depend on the tick
nor on how the run is sliced, and the kernel's admission is the stations' own."""
from __future__ import annotations

import heapq
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from simulation.engine import Simulation
from simulation.least_choice import ALGO_LC, choose_and_admit
from simulation.stations import ADMITTED

from topologies import add_event, balanced

LAM, N, MU = 900.0, 10, 100.0      # benchmark S4: 10 M/M/1 servers at 90 % load


def _reference(algorithm: str, seconds: float, seed: int) -> float:
    """An independent event simulation (heapq) of the balancer in front of N FIFO
    single-worker servers: Poisson arrivals, exponential service, the choice made
    at each arrival with the requests present then. Mean response time in ms."""
    rng = random.Random(seed)
    free = [0.0] * N                 # when each server's last accepted request ends
    ends: list[tuple[float, int]] = []
    conn = [0] * N
    ewma = [1.0 / MU] * N
    t, total, count = 0.0, 0.0, 0
    while True:
        t += rng.expovariate(LAM)
        if t > seconds:
            break
        while ends and ends[0][0] <= t:
            end, s, rt = heapq.heappop(ends)
            conn[s] -= 1
            ewma[s] += 0.1 * (rt - ewma[s])
        if algorithm == "least_connections":
            low = min(conn)
            s = rng.choice([i for i in range(N) if conn[i] == low])
        elif algorithm == "least_response_time":
            score = [(conn[i] + 1) * ewma[i] for i in range(N)]
            s = rng.choice([i for i in range(N) if score[i] == min(score)])
        else:   # power of two choices
            a, b = rng.sample(range(N), 2)
            s = a if conn[a] <= conn[b] else b
        start = max(free[s], t)
        free[s] = start + rng.expovariate(MU)
        conn[s] += 1
        heapq.heappush(ends, (free[s], s, free[s] - t))
        if t > 10.0:                 # past the warm-up
            total += free[s] - t
            count += 1
    return 1000 * total / count


def _engine(algorithm: str, seconds: float, seed: int = 3, tick_ms: float | None = None, **kw) -> Simulation:
    d = balanced(LAM, N, MU, algorithm, seed=seed)
    if tick_ms is not None:
        d.set_settings(seed=seed, tick_ms=tick_ms)
    sim = Simulation(d, **kw)
    sim.advance(seconds)
    return sim


@pytest.mark.parametrize("algorithm,low,high", [("least_connections", 17.0, 22.0),
                                                ("least_response_time", 17.0, 23.0),
                                                ("power_of_two", 24.0, 36.0)])
def test_load_aware_balancers_match_a_per_request_simulation(algorithm, low, high):
    ref = _reference(algorithm, 300.0, seed=5)
    got = _engine(algorithm, 150.0).totals()["mean_ms"]
    # M/M/10 with one shared queue is the floor (16.7 ms); random splitting gives 100 ms
    assert low < ref < high
    assert got == pytest.approx(ref, rel=0.06), (got, ref)
    if algorithm == "least_connections":
        assert got < 0.8 * 28.0        # the tick-at-once fill gave 28 ms here


def test_results_do_not_depend_on_the_tick():
    for algorithm in ("least_connections", "least_response_time", "power_of_two"):
        got = [_engine(algorithm, 20.0, tick_ms=t).totals() for t in (1.0, 10.0, 50.0)]
        assert got[0]["served"] > 17_000
        for g in got[1:]:
            assert (g["served"], g["mean_ms"], g["p99_ms"]) == (got[0]["served"], got[0]["mean_ms"], got[0]["p99_ms"])


def test_results_do_not_depend_on_how_the_run_is_sliced():
    for algorithm in ("least_connections", "least_response_time", "power_of_two"):
        one = _engine(algorithm, 12.0)
        d = balanced(LAM, N, MU, algorithm, seed=3)
        sliced = Simulation(d)
        t = 0.0
        for step in [0.37, 1.913, 0.004, 2.5, 0.061, 3.3] * 3:
            t = min(t + step, 12.0)
            sliced.run_until(t)
        sliced.run_until(12.0)
        a, b = one.totals(), sliced.totals()
        assert (a["served"], a["in_flight"], a["mean_ms"]) == (b["served"], b["in_flight"], b["mean_ms"]), algorithm
        assert np.array_equal(one.ewma, sliced.ewma)


def _kernel_case(pre_at_b: int, requests: int, algo: int = ALGO_LC):
    """Two single-worker backends (stations 1 and 2); backend 2 holds ``pre_at_b``
    requests that arrived at 0 and end 1 s apart; ``requests`` arrive at 1 ms."""
    n_st = 3
    n = requests
    i64 = lambda *v: np.array(v, dtype=np.int64)
    t = np.full(n, 0.001)
    free = np.zeros((n_st, 1))
    free[2, 0] = float(pre_at_b)
    target, fin, start, state = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    choose_and_admit(
        t, np.rint(t * 1e9).astype(np.int64), np.ones(n), np.full(n, -1.0), np.full(n, -1.0),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64),
        np.full(n, 0.99), np.zeros(n), np.zeros(n), i64(algo), i64(0, 2), i64(1, 2),
        free, np.zeros(0), np.zeros(n_st, dtype=np.int64), np.zeros(n_st, dtype=np.int64),
        i64(0, 0, pre_at_b), np.ones(n_st, dtype=np.int64), np.full(n_st, 10**6, dtype=np.int64),
        np.full(n_st, 100.0), np.full(n_st, 10**11, dtype=np.int64), np.ones(n_st), np.full(n_st, 0.01),
        np.full(n_st, 0.01), np.ones(n_st, dtype=np.int64), np.ones(n_st), np.ones(n_st, dtype=np.int64),
        np.full(n_st, 0.01), np.full(n_st, -np.inf), 0,
        np.zeros(pre_at_b), np.arange(1.0, pre_at_b + 1), np.full(pre_at_b, 2, dtype=np.int64), np.full(pre_at_b, -1.0),
        target, fin, start, state)
    return target, fin


def test_a_loaded_backend_gets_nothing_while_another_has_fewer():
    # loads [0, 5], 4 requests: each sees the idle backend with fewer (0, 1, 2, 3 < 5)
    target, fin = _kernel_case(5, 4)
    assert target.tolist() == [1, 1, 1, 1]
    # deterministic 10 ms service one after another from 1 ms: ends at 11, 21, 31, 41 ms
    assert fin == pytest.approx([0.011, 0.021, 0.031, 0.041])
    # loads [0, 2], 6 requests, ties to the last tied backend (u = 0.99): counts go
    # (1,2) (2,2) tie->(2,3) (3,3) tie->(3,4) (4,4)
    target, _ = _kernel_case(2, 6)
    assert target.tolist() == [1, 1, 2, 1, 2, 1]


def _capture(sim: Simulation) -> list[tuple[np.ndarray, np.ndarray]]:
    """The end times the stations' admission gives each request the balancer sent."""
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    original = sim._admit_all

    def admit_all(batch, take_checks=False):
        original(batch, take_checks)
        b, status = sim.stations.last
        key, chosen, fin = sim._last_exact
        seen.append((key, chosen, fin, b.key.copy(), b.fin.copy(), b.st.copy(), status.copy()))
    sim._admit_all = admit_all
    return seen


def _stressed(algorithm: str = "least_connections"):
    d = balanced(1900.0, 4, 250.0, algorithm, seed=7, workers=2, interval=0.5)
    for i in range(1, 5):
        d.set_params(f"web{i}", {"queue_limit": 6, "timeout_s": 0.03})
    add_event(d, 2.0, "fail", "web2")
    add_event(d, 4.0, "recover", "web2")
    return d


def test_the_kernels_admission_is_the_stations_own(monkeypatch):
    # queues that fill, patience that runs out, 2 workers, a server failing, health checks:
    # every end time the kernel computed is the one the stations' admission computes
    from simulation import exact_balance
    monkeypatch.setattr(exact_balance, "READMIT", True)
    sim = Simulation(_stressed())
    seen = _capture(sim)
    sim.advance(8.0)
    t = sim.totals()
    assert t["failed_by_cause"]["queue_full"] > 0 and t["failed_by_cause"]["timeout"] > 0
    compared = 0
    for key, chosen, fin, bkey, bfin, bst, status in seen:
        order = np.argsort(bkey, kind="stable")
        pos = order[np.searchsorted(bkey[order], key)]
        assert np.array_equal(bkey[pos], key)
        assert np.array_equal(bst[pos], chosen)
        assert np.array_equal(bfin[pos], fin)          # bit for bit
        compared += len(key)
    assert compared > 10_000


@pytest.mark.parametrize("algorithm", ["least_connections", "least_response_time", "power_of_two"])
def test_the_kernels_own_admission_gives_what_the_stations_admission_gives(algorithm, monkeypatch):
    # the engine keeps the kernel's admission (no second pass): the same run as admitting
    # again through Stations.admit, down to the per-second rows and the stations' state
    from simulation import exact_balance
    runs = []
    for readmit in (False, True):
        monkeypatch.setattr(exact_balance, "READMIT", readmit)
        sim = Simulation(_stressed(algorithm))
        sim.advance(8.0)
        runs.append((sim.totals(), sim.metrics.mean_ms, sim.metrics.served_rps, sim.stations.free.copy(),
                     sim.stations.count.copy(), sim.ewma.copy(), sorted(map(float, sim.pending[2].fin))))
    a, b = runs
    assert a[0] == b[0]
    for x, y in zip(a[1:], b[1:]):
        assert np.array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float), equal_nan=True)


_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {root!r} + "/tests/simulation")
from topologies import balanced
from simulation.engine import Simulation
from simulation import admission_kernel, admission_order, least_choice
for k in (admission_kernel.admit_sorted, admission_kernel.uniform_draws, admission_order.order_by_station,
          least_choice.choose_and_admit, least_choice.ewma_apply):
    k(*k.sample())   # loaded now (with numba: compiled), not in the background
out = {{}}
for algo in ("least_connections", "least_response_time", "power_of_two"):
    d = balanced(1800.0, 20, 100.0, algo, seed=9, affinity={aff!r})
    sim = Simulation(d)
    sim.advance(6.0)
    t = sim.totals()
    out[algo] = [t["served"], t["mean_ms"], t["p99_ms"], sim.ewma.tolist()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("affinity", ["none", "sticky"])
def test_compiled_and_python_kernels_give_the_same_numbers(affinity):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runs = {}
    for jit in ("1", "0"):
        env = dict(os.environ, SCALELAB_JIT=jit)
        r = subprocess.run([sys.executable, "-c", _SCRIPT.format(root=root, aff=affinity)], env=env,
                           capture_output=True, text=True, timeout=600, cwd=root)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[jit] = json.loads(r.stdout.strip().splitlines()[-1])
    assert runs["1"] == runs["0"]
    assert runs["1"]["least_connections"][0] > 9_000


def test_two_balancers_in_front_of_the_same_servers_see_each_others_requests():
    # two entry points, half the traffic each, least connections over the same 10 servers:
    # each counts the other's requests too, so together they are one JSQ dispatcher
    from simulation.document import Document, NodeData
    d = Document()
    for k in (1, 2):
        d.add_node(NodeData(f"users{k}", "client", params={"rate_rps": LAM / 2, "users": 5_000}))
        d.add_node(NodeData(f"lb{k}", "load_balancer", params={"algorithm": "least_connections",
                                                               "capacity_rps": 10_000_000, "queue_limit": 1_000_000}))
        d.add_edge(f"users{k}", f"lb{k}")
    for i in range(1, N + 1):
        d.add_node(NodeData(f"web{i}", "server", params={"capacity_rps": MU, "workers": 1,
                                                         "queue_limit": 1_000_000, "timeout_s": 3600}))
        for k in (1, 2):
            d.add_edge(f"lb{k}", f"web{i}")
    d.set_settings(seed=4)
    sim = Simulation(d)
    sim.advance(150.0)
    got = sim.totals()["mean_ms"]
    ref = _reference("least_connections", 300.0, seed=6)
    assert got == pytest.approx(ref, rel=0.06), (got, ref)


def test_the_kernel_as_python_and_the_python_version_give_the_kernels_numbers(monkeypatch):
    # the compiled kernel (when numba is here), the kernel's own Python, and the CPython
    # version the app uses without numba (least_choice_py.py): identical results
    from simulation import exact_balance
    from simulation.least_choice import choose_and_admit as k

    class Ready:   # the kernel's Python, as if it were the loaded kernel
        compiled = True
        __call__ = staticmethod(k.py)

    class NotReady:
        compiled = False

    k(*k.sample())   # loaded (compiled with numba; its Python without)

    def run(mode):
        with monkeypatch.context() as m:
            if mode == "kernel.py":
                m.setattr(exact_balance, "choose_and_admit", Ready())
            elif mode == "lists":
                m.setattr(exact_balance, "choose_and_admit", NotReady())
            d = balanced(1700.0, 12, 150.0, "least_response_time", seed=2, workers=2, affinity="sticky")
            sim = Simulation(d)
            sim.advance(4.0)
            t = sim.totals()
            return t["served"], t["mean_ms"], t["p99_ms"], sim.ewma.tolist()

    ref = run("default")
    assert ref[0] > 6_000
    assert run("kernel.py") == ref
    assert run("lists") == ref
