"""Settling a level, compiled (simulation/settle_kernels.py), gives the numpy path's numbers
bit for bit: busy time by second, queue snapshots, finished requests, edge flows, served
latencies, the random balancer's pick and the split of a batch; on random inputs with ties,
whole-second times, intervals across many seconds, give-ups, internal work, huge times, and
on whole runs of the lessons (kernels on, off, and switched on in the middle of a run).
The definitions themselves are checked against a plain per-request calculation."""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from simulation import settle_kernels as K
from simulation.flight import FIELDS, FLAG_INTERNAL, FLAG_TIMEOUT, Batch
from simulation.ledger import Ledger
from simulation.metrics import N_BINS, latency_bins
from simulation.randomness import PICK, uniform

ROOT = Path(__file__).resolve().parents[2]
KERNELS = (K.scan_level, K.count_rows, K.count_flows, K.book_served, K.random_pick, K.compress)


@pytest.fixture(scope="module", autouse=True)
def _loaded():
    with np.errstate(over="ignore"):   # random_pick's Python path: uint64 arithmetic wraps, as meant
        for k in KERNELS:
            k(*k.sample())   # loaded now (with numba: compiled; else the Python path)


@contextmanager
def numpy_path():
    """The engine takes its numpy path (as before the kernels are loaded, or without numba)."""
    saved = [k._fn for k in KERNELS]
    for k in KERNELS:
        k._fn = k.py
    try:
        yield
    finally:
        for k, fn in zip(KERNELS, saved):
            k._fn = fn


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _pending(rng, n, n_st, t0, t1, scale=1.0, base_time=0.0):
    """Requests at a level: some started before the window, some still waiting after it,
    ties, whole-second times, give-ups and internal work."""
    arr = base_time + t0 - 3 * scale + rng.random(n) * (t1 - t0 + 3 * scale)
    if n:
        arr[rng.random(n) < 0.1] = np.floor(arr[0])                     # ties on a whole second
    start = arr + rng.exponential(0.5 * scale, n) * (rng.random(n) < 0.7)
    fin = start + rng.exponential(0.8 * scale, n)
    empty = rng.random(n) < 0.05
    fin[empty] = start[empty]                                           # no service time at all
    whole = rng.random(n) < 0.1
    fin[whole] = np.ceil(fin[whole])                                    # finishes on a whole second
    flags = np.where(rng.random(n) < 0.1, FLAG_TIMEOUT, 0) | np.where(rng.random(n) < 0.1, FLAG_INTERNAL, 0)
    return Batch(st=rng.integers(0, n_st, n), birth=arr - rng.random(n), arr=arr, start=start, fin=fin,
                 flags=flags.astype(np.int8), key=rng.integers(0, 2**63, n).astype(np.uint64),
                 user=rng.integers(0, 50, n), hop=rng.integers(0, 4, n).astype(np.int8))


class _Stub:
    """The parts of a simulation that Window._snap_waiting reads."""
    def __init__(self, n_st):
        from simulation.window import Window
        self.net = type("Net", (), {"n_stations": n_st})()
        self._queue_snap = {}
        self._snap_waiting = Window._snap_waiting.__get__(self)
        self._add_snaps = Window._add_snaps.__get__(self)


def _settle_numpy(p, n_st, t0, t1, marks, base):
    led = Ledger(base, 6, n_st, 0)
    with numpy_path():
        gave = (p.flags & FLAG_TIMEOUT) != 0
        led.book_busy(p.st[~gave], p.start[~gave], p.fin[~gave], t0, t1)
        stub = _Stub(n_st)
        if marks:
            stub._snap_waiting(p, marks)
        done = p.fin < t1
        users = done & ((p.flags & FLAG_INTERNAL) == 0)
        led.book_done(p.st[users], p.fin[users])
    return led, stub._queue_snap, done


def _settle_kernel(p, n_st, t0, t1, marks, base, python=False):
    led = Ledger(base, 6, n_st, 0)
    mk = np.asarray(marks, dtype=np.float64)
    per = np.zeros((len(mk), n_st), dtype=np.int64)
    done = np.empty(len(p), dtype=np.bool_)
    led._grow(int(math.ceil(t1)) - base)
    fn = K.scan_level.py if python else K.scan_level
    got = fn(p.st, p.start, p.fin, p.arr, p.flags, FLAG_TIMEOUT, FLAG_INTERNAL, float(t0), float(t1), base,
             led.busy, mk, per, done, led.done)
    stub = _Stub(n_st)
    if marks:
        stub._add_snaps(per, marks)
    return led, stub._queue_snap, done, got


CASES = [  # n, stations, t0, t1, time scale, base time
    (0, 3, 0.0, 1.0, 1.0, 0.0), (1, 1, 0.0, 1.0, 1.0, 0.0), (2, 2, 3.0, 4.0, 1.0, 0.0),
    (300, 5, 0.0, 60.0, 1.0, 0.0), (500, 7, 10.25, 17.75, 2.0, 0.0), (400, 3, 5.0, 5.001, 0.0005, 0.0),
    (300, 4, 0.0, 60.0, 20.0, 0.0), (250, 6, 1e7, 1e7 + 30.0, 3.0, 0.0), (200, 2, 2.5, 2.5 + 1e-4, 1.0, 0.0),
    (100, 3, 4.0, 4.0, 1.0, 0.0), (100, 3, 7.5, 5.25, 1.0, 0.0),   # an empty window, one that ends first
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scan_equals_the_numpy_bookings(case, seed):
    n, n_st, t0, t1, scale, base_time = case
    rng = np.random.default_rng(seed)
    p = _pending(rng, n, n_st, t0, t1, scale, base_time)
    base = max(int(math.floor(t0)) - int(rng.integers(0, 3)), 0)
    marks = [float(k) for k in range(math.floor(t0) + 1, math.floor(t1 + 1e-9) + 1)]
    want_led, want_snap, want_done = _settle_numpy(p, n_st, t0, t1, marks, base)
    for python in (False, True):
        led, snap, done, (n_done, n_internal, union) = _settle_kernel(p, n_st, t0, t1, marks, base, python)
        rows = min(want_led.rows, led.rows)
        assert _bits(led.busy[:rows]) == _bits(want_led.busy[:rows])   # the same bits, not just close
        assert not led.busy[rows:].any() and not want_led.busy[rows:].any()
        assert np.array_equal(led.done[:rows], want_led.done[:rows]) and not led.done[rows:].any()
        assert snap.keys() == want_snap.keys()
        for k in snap:
            assert _bits(snap[k]) == _bits(want_snap[k])
        assert np.array_equal(done, want_done)
        assert n_done == int(want_done.sum())
        assert n_internal == int((want_done & ((p.flags & FLAG_INTERNAL) != 0)).sum())
        assert union == int(np.bitwise_or.reduce(p.flags[want_done].astype(np.int64))) if n_done else union == 0


@pytest.mark.parametrize("marks", [[1.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0], [-1.0, 0.0], [7.0], [0.0, 5.0, 6.0, 9.0]])
@pytest.mark.parametrize("python", [False, True])
def test_snapshot_counts_at_any_marks(marks, python):
    """Consecutive whole seconds are counted without a search; other whole seconds with one."""
    rng = np.random.default_rng(len(marks))
    p = _pending(rng, 300, 3, -1.0, 8.0)
    p.start[:5] = np.inf                        # never starts (waits at every later mark)
    p.arr[5:8] = -np.inf
    mk = np.asarray(marks)
    per = np.zeros((len(mk), 3), dtype=np.int64)
    led = Ledger(0, 6, 3, 0)
    led._grow(10)
    with np.errstate(invalid="ignore"):
        (K.scan_level.py if python else K.scan_level)(
            p.st, p.start, p.fin, p.arr, p.flags, FLAG_TIMEOUT, FLAG_INTERNAL, -1.0, 8.0, 0, led.busy, mk, per,
            np.empty(len(p), dtype=np.bool_), led.done)
    want = np.stack([np.bincount(p.st[(p.arr <= k) & (p.start > k)], minlength=3) for k in marks])
    assert np.array_equal(per, want)


@pytest.mark.parametrize("seed", range(4))
def test_scan_books_what_the_definitions_say(seed):
    """Per request, by hand: busy time = length of [start, fin) ∩ [t0, t1) ∩ each second;
    waiting at mark k: arr <= k < start; finished: fin < t1."""
    rng = np.random.default_rng(100 + seed)
    n_st, t0, t1 = 4, 2.5, 9.0
    p = _pending(rng, 200, n_st, t0, t1)
    marks = [float(k) for k in range(3, 10)]
    led, snap, done, _ = _settle_kernel(p, n_st, t0, t1, marks, 0)
    busy = np.zeros((12, n_st), dtype=np.int64)
    waiting = {}
    finished = np.zeros((12, n_st), dtype=np.int64)

    def ns(t: float) -> int:   # whole nanoseconds, rounded half up
        return math.floor(t * 1e9 + 0.5)

    for i in range(len(p)):
        s = int(p.st[i])
        if not p.flags[i] & FLAG_TIMEOUT:
            for sec in range(12):
                if min(p.fin[i], t1) > max(p.start[i], t0):
                    busy[sec, s] += max(0, min(ns(min(p.fin[i], t1)), (sec + 1) * 10**9)
                                        - max(ns(max(p.start[i], t0)), sec * 10**9))
        for k in marks:
            if p.arr[i] <= k < p.start[i]:
                waiting.setdefault(int(k), np.zeros(n_st))[s] += 1
        if p.fin[i] < t1 and not p.flags[i] & FLAG_INTERNAL:
            finished[max(int(math.floor(p.fin[i])), 0), s] += 1
    r = led.rows
    assert r >= 9 and not busy[r:].any() and not finished[r:].any()
    assert np.array_equal(led.busy, busy[:r])
    assert {k: list(v) for k, v in snap.items()} == {k: list(v) for k, v in waiting.items()}
    assert np.array_equal(led.done, finished[:r])
    assert np.array_equal(done, p.fin < t1)


@pytest.mark.parametrize("seed", range(5))
def test_edge_and_flow_counts_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    n, n_nodes, n_edges = int(rng.integers(0, 400)), 5, 6
    table = np.full((n_nodes, n_nodes), -1, dtype=np.int64)
    pairs = rng.permutation(n_nodes * n_nodes)[:n_edges]
    table.ravel()[pairs] = np.arange(n_edges)
    st_node = rng.integers(0, n_nodes, 9)
    src, dst = rng.integers(0, 9, n), rng.integers(0, 9, n)
    base = int(rng.integers(0, 5))
    times = base + rng.random(n) * 30.0              # beyond the ledger's 4 rows: it grows
    times[rng.random(n) < 0.2] = base - 1.5          # before the oldest open second: booked in it
    times[rng.random(n) < 0.1] = base + 2.0                           # on a whole second
    edges = table[st_node[src], st_node[dst]]
    ref = Ledger(base, 6, 9, n_edges)
    with numpy_path():
        ref.book_edges(edges, times)
    a, b = Ledger(base, 6, 9, n_edges), Ledger(base, 6, 9, n_edges)
    a.book_edges(edges, times)                                  # count_rows
    if not b.book_flows(table, st_node, src, dst, times):      # count_flows (not loaded: False)
        assert not K.count_flows.compiled
        b.book_edges(edges, times)
    c = Ledger(base, 6, 9, n_edges)                             # the kernel's Python path
    c._grow(K.count_flows.py(src, dst, times, st_node, table, base, c.edges))
    assert K.count_flows.py(src, dst, times, st_node, table, base, c.edges) == 0
    for led in (a, b, c):
        rows = min(led.rows, ref.rows)
        assert np.array_equal(led.edges[:rows], ref.edges[:rows]) and not led.edges[rows:].any()
    # independently: requests per (second, edge)
    want = {}
    for t, e in zip(times, edges):
        if e >= 0:
            key = (max(int(math.floor(t)) - base, 0), int(e))
            want[key] = want.get(key, 0) + 1
    assert {k: int(v) for k, v in np.ndenumerate(b.edges) if v} == want


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("masked", [False, True])
def test_served_bookings_equal_numpy(seed, masked):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    base = int(rng.integers(0, 3))
    fin = base + rng.random(n) * 20.0
    lat = np.concatenate([rng.exponential(0.1, n - n // 10), rng.random(n // 10) * [0.0, 1e-9, 5e-6, 3600.0, 1e4][
        int(rng.integers(0, 5))]])
    where = rng.random(n) < 0.8 if masked else np.zeros(0, dtype=bool)
    ref, led = Ledger(base, 6, 1, 0), Ledger(base, 6, 1, 0)
    ref_total, tot = np.zeros(N_BINS, dtype=np.int64), np.zeros(N_BINS, dtype=np.int64)
    with numpy_path():
        want_ns = ref.book_answered(fin, lat, ref_total, where)
    got_ns = led.book_answered(fin, lat, tot, where)
    sel = where if masked else np.ones(n, dtype=bool)
    assert got_ns == want_ns == int(np.rint(lat[sel] * 1e9).astype(np.int64).sum())
    rows = min(led.rows, ref.rows)
    assert np.array_equal(led.served[:rows], ref.served[:rows])
    assert _bits(led.lat_sum[:rows]) == _bits(ref.lat_sum[:rows])
    assert np.array_equal(led.hist[:rows], ref.hist[:rows])
    assert np.array_equal(tot, ref_total)
    assert np.array_equal(tot, np.bincount(latency_bins(lat[sel]), minlength=N_BINS))
    assert int(led.served.sum()) == int(sel.sum())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # the Python path's uint64 wraps
def test_random_pick_draws_the_numbers_of_uniform():
    rng = np.random.default_rng(7)
    keys = np.concatenate([rng.integers(0, 2**63, 5000).astype(np.uint64) * np.uint64(2) + np.uint64(1),
                           np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64)])
    hops = rng.integers(0, 128, len(keys)).astype(np.int8)
    for n in (1, 2, 3, 10, 1000, 2**31):
        want = np.minimum((uniform(keys, hops, PICK) * n).astype(np.int64), n - 1)
        assert np.array_equal(K.random_pick(keys, hops, PICK, n), want)
        assert np.array_equal(K.random_pick.py(keys[:300], hops[:300], PICK, n), want[:300])
    # uniform over the backends: each of 10 gets 1/10 of 5,004 draws (±5 standard deviations)
    counts = np.bincount(K.random_pick(keys, hops, PICK, 10), minlength=10)
    sd = math.sqrt(len(keys) * 0.1 * 0.9)
    assert np.all(np.abs(counts - len(keys) / 10) < 5 * sd)


@pytest.mark.parametrize("seed", range(4))
def test_compress_is_take(seed):
    rng = np.random.default_rng(seed)
    n = [0, 1, 17, 2000][seed]
    p = _pending(rng, n, 3, 0.0, 5.0)
    for mask in (rng.random(n) < 0.5, np.ones(n, dtype=bool), np.zeros(n, dtype=bool)):
        m = int(mask.sum())
        for fn in (K.compress, K.compress.py):
            got = Batch._raw(fn(mask, m, p.st, p.birth, p.arr, p.start, p.fin, p.cls, p.user, p.flags, p.key,
                                p.hop, p.item))
            want = p.take(mask)
            for name, dtype in FIELDS.items():
                assert getattr(got, name).dtype == dtype
                assert _bits(getattr(got, name)) == _bits(getattr(want, name))


# ----- whole runs ----------------------------------------------------------------------------
LESSONS = ["lb_unequal", "sticky_sessions", "browser_caching", "server_cache", "database_scaling", "sharding",
           "partitioning", "heartbeats", "lb_algorithms", "scaling_out"]


def _run(name: str, seconds: float, switch_at: float | None = None, numpy_first: bool = False) -> str:
    from simulation.cli import csv_text
    from simulation.engine import Simulation
    from simulation.fileformat import load
    doc = load(str(ROOT / "resources" / "lessons" / f"{name}.scalelab"))
    sim = Simulation(doc, duration_s=seconds)
    if numpy_first:
        with numpy_path():
            sim.advance(switch_at if switch_at is not None else seconds)
    if sim.now < seconds - 1e-9:
        sim.advance(seconds - sim.now)
    return hashlib.sha256((csv_text(sim) + repr(sorted(sim.totals().items()))).encode()).hexdigest()


@pytest.mark.parametrize("name", LESSONS)
def test_whole_runs_are_identical_with_and_without_the_kernels(name):
    compiled = _run(name, 20.0)
    assert compiled == _run(name, 20.0, numpy_first=True)                  # numpy all along
    assert compiled == _run(name, 20.0, switch_at=7.3, numpy_first=True)   # kernels loaded mid-run


def test_the_packaged_path_without_numba_gives_the_same_run():
    code = ("import sys; sys.path.insert(0, '.'); sys.path.insert(0, 'tests/simulation');"
            "from test_settle_kernels import _run; print(_run('lb_unequal', 20.0))")
    env = dict(os.environ, SCALELAB_JIT="0")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == _run("lb_unequal", 20.0)


def test_a_subclass_that_counts_in_finish_sees_every_answer():
    """Answered requests go through ``_finish`` where a subclass hooks it (spof_measure's
    counted runs), also when the level could book them straight from its pending requests."""
    from simulation.engine import Simulation
    from simulation.fileformat import load

    class Counting(Simulation):
        def _finish(self, done):
            super()._finish(done)
            self.seen = getattr(self, "seen", 0) + int(len(done))

    doc = load(str(ROOT / "resources" / "lessons" / "starter.scalelab"))
    sim = Counting(doc, duration_s=20.0)
    sim.advance(20.0)
    plain = Simulation(doc, duration_s=20.0)
    plain.advance(20.0)
    assert sim.served > 1000 and sim.seen == sim.served == plain.served


def _wide_doc(servers: int):
    from simulation.document import Document, NodeData
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 3000.0, "users": 5000}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "random", "capacity_rps": 1e6}))
    d.add_edge("users", "lb")
    for i in range(servers):
        d.add_node(NodeData(f"s{i}", "server", params={"capacity_rps": 10.0}))
        d.add_edge("lb", f"s{i}")
    d.set_settings(seed=5, duration_s=3.0)
    return d


@pytest.mark.parametrize("servers", [20, 600])   # 600: more nodes than the dense edge table takes
def test_balancer_flows_per_backend_equal_the_lookup_per_request(servers, monkeypatch):
    from simulation.cli import csv_text
    from simulation.engine import Simulation
    from simulation.routing import Routing

    def run():
        sim = Simulation(_wide_doc(servers), duration_s=3.0)
        sim.advance(3.0)
        return csv_text(sim), sim.totals(), sim.metrics.latest("flow")

    fast = run()
    with numpy_path():
        assert run() == fast
    monkeypatch.setattr(Routing, "_edges_to_backends", lambda self, bi: None)   # _flow, request by request
    assert run() == fast
    flows = fast[2]
    assert sum(v for (a, b), v in flows.items() if a == "lb") == pytest.approx(flows[("users", "lb")], abs=60)


@pytest.mark.parametrize("jit", [True, False])
def test_busy_time_is_the_same_however_the_windows_cut_the_run(jit, monkeypatch):
    """A run stepped in other places books its service intervals in other pieces: in whole
    nanoseconds the pieces add up to exactly the same busy time per second and station
    (the utilization plotted must not change with the step size)."""
    if not jit:
        monkeypatch.setattr(Ledger, "can_scan", staticmethod(lambda *a: False))
    rng = np.random.default_rng(7)
    n, n_st = 500, 3
    st = rng.integers(0, n_st, n).astype(np.int64)
    start = rng.uniform(0, 9, n)
    fin = start + rng.exponential(0.7, n)
    books = []
    for cuts in ([0.0, 10.0], [0.0, 0.1, 0.30000000000000004, 3.3, 7.7, 10.0], list(np.arange(0, 101) * 0.1)):
        led = Ledger(0, 6, n_st, 0)
        for t0, t1 in zip(cuts, cuts[1:]):
            led.book_busy(st, start, fin, float(t0), float(t1))
        books.append(led.busy[:10].copy())
    assert all(np.array_equal(b, books[0]) for b in books[1:])
    exact = np.zeros((10, n_st))
    for i in range(n):   # the busy seconds by hand (floats: equal within the rounding)
        for sec in range(10):
            exact[sec, st[i]] += max(0.0, min(fin[i], 10.0, sec + 1) - max(start[i], sec))
    np.testing.assert_allclose(books[0] / 1e9, exact, rtol=0, atol=1e-6)
