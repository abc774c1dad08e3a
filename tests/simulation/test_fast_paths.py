"""The engine's fast paths give exactly what the plain code they replace gives.

- Queue snapshots at whole seconds (``Simulation._snap_waiting``): one pass with
  ``searchsorted`` instead of one pass per second; checked against the per-second
  definition (a request waits at second k when it arrived by k and starts after k).
- ``Batch.concat`` written out per field, and the shared empty batch: the same arrays as
  concatenating each field, and an empty batch never shares a written array.
- Windows of any size give the same run (the basis of every speed-up that changes how
  a run is cut into windows): S1-like and blocking topologies, bit for bit."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.cli import csv_text
from simulation.engine import Simulation
from simulation.flight import FIELDS, Batch

from test_blocking_calls import web_db


def _batch(rng: np.random.Generator, n: int, n_st: int) -> Batch:
    arr = np.sort(rng.uniform(0.0, 6.0, n))
    wait = np.where(rng.random(n) < 0.2, np.inf, rng.exponential(0.8, n))
    wait[rng.random(n) < 0.1] = 0.0
    whole = rng.random(n) < 0.15               # arrivals and starts exactly on a whole second
    arr[whole] = np.floor(arr[whole])
    start = arr + wait
    on_mark = rng.random(n) < 0.1
    start[on_mark] = np.ceil(start[on_mark])
    return Batch(st=rng.integers(0, n_st, n), arr=arr, birth=arr, start=start, fin=start + 0.1,
                 key=rng.integers(0, 2**63, n).astype(np.uint64))


def _sim_stub(n_st: int):
    class Net:
        n_stations = n_st

    sim = Simulation.__new__(Simulation)
    sim.net = Net()
    sim._queue_snap = {}
    return sim


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), n_st=st.integers(1, 7),
       first=st.integers(0, 4), n_marks=st.integers(1, 6))
def test_queue_snapshots_in_one_pass_equal_the_per_second_definition(seed, n, n_st, first, n_marks):
    rng = np.random.default_rng(seed)
    p = _batch(rng, n, n_st)
    marks = [float(k) for k in range(first, first + n_marks)]
    sim = _sim_stub(n_st)
    sim._queue_snap[first] = np.full(n_st, 2.0)      # a snapshot already begun by another level
    sim._snap_waiting(p, marks)
    expect = {first: np.full(n_st, 2.0)}
    for k in marks:
        w = (p.arr <= k) & (p.start > k)
        if w.any():
            snap = expect.setdefault(int(round(k)), np.zeros(n_st))
            snap += np.bincount(p.st[w], minlength=n_st)
    assert sim._queue_snap.keys() == expect.keys()
    for k in expect:
        assert np.array_equal(sim._queue_snap[k], expect[k])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(0, 20), max_size=5))
def test_concat_equals_concatenating_each_field(seed, sizes):
    rng = np.random.default_rng(seed)
    parts = [_batch(rng, n, 3) for n in sizes]
    out = Batch.concat(parts)
    assert len(out) == sum(sizes)
    for name, dtype in FIELDS.items():
        got = getattr(out, name)
        assert got.dtype == dtype
        want = np.concatenate([getattr(b, name) for b in parts]) if parts else np.zeros(0, dtype)
        assert np.array_equal(got, want)


def test_an_empty_batch_is_empty_and_setting_its_fields_touches_no_other():
    a, b = Batch.empty(), Batch.empty()
    a.start = np.full(0, np.inf)
    a.flags |= 4
    assert len(a) == len(b) == 0 and b.start is not a.start
    assert all(getattr(b, f).dtype == d and len(getattr(b, f)) == 0 for f, d in FIELDS.items())


def _run(doc, seconds: float, window: float) -> tuple[dict, str]:
    sim = Simulation(doc, max_window_s=window)
    sim.advance(seconds)
    return sim.totals(), csv_text(sim)


def test_the_window_size_changes_nothing_non_blocking():
    doc = web_db(300, blocking=None, workers=2, capacity=105, replicas=3, db_connections=4, db_capacity=330,
                 web={"queue_limit": 40, "timeout_s": 0.5}, duration=25)
    base = _run(doc, 25, 10.0)
    assert base[0]["served"] > 5000 and base[0]["failed"] > 0    # busy enough to queue, overflow and time out
    for w in (0.3, 2.0, 30.0):
        assert _run(doc, 25, w) == base


def test_the_window_size_changes_nothing_blocking():
    doc = web_db(150, blocking=True, replicas=2, workers=8, capacity=800, db_connections=2, db_capacity=100,
                 web={"queue_limit": 100, "timeout_s": 2}, db={"queue_limit": 50, "timeout_s": 30}, duration=12)
    base = _run(doc, 12, 10.0)
    assert base[0]["failed"] > 0
    assert _run(doc, 12, 1.5) == base
