"""Arrival generation (arrival_seeds.py, arrival_blocks.py, arrival_kernel.py): the fast
paths give exactly the numbers of the plain per-second code, however the run is sliced.

The plain code is numpy's own: ``Generator(PCG64(SeedSequence([seed, stream, second])))``,
``poisson``, ``standard_exponential``, ``cumsum``, ``interp``, ``integers``, ``random`` and
``random_raw`` (``arrival_blocks.reference_block``). Everything is compared bit for bit."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from simulation import arrivals
from simulation.arrival_blocks import ClientStream, block_grid, reference_block, tick_grid
from simulation.arrival_kernel import constant_grid, finish_blocks
from simulation.arrival_seeds import BlockSeeds, numpy_state, pcg64_rows, pcg64_state, seed_words
from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.patterns import rate_factor
from simulation.caching import zipf_cdf

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = [{"type": "constant"},
            {"type": "ramp", "start_s": 1.0, "end_s": 6.0, "from_factor": 0.2, "to_factor": 3.0},
            {"type": "spike", "at_s": 2.5, "duration_s": 1.3, "factor": 4.0},
            {"type": "diurnal", "period_s": 7.0, "peak_s": 2.0, "amplitude": 0.9},
            {"type": "steps", "times_s": [1.5, 3.25, 5.0], "factors": [0.0, 2.0, 0.5]}]


def client(rate=900.0, users=10_000, offset=0, read_ratio=0.9, pattern=None, stream=344172009):
    return SimpleNamespace(node_id="c", rate_rps=rate, users=users, user_offset=offset, read_ratio=read_ratio,
                           pattern=pattern or {"type": "constant"}, stream=stream)


def plain(seed, c, block, dt, cdf):
    """One second of arrivals as the engine has always made them (written out here, so
    that a change in the modules cannot hide behind a matching change in their reference)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, c.stream, block])))
    inner = np.arange(math.floor(block / dt + 1e-9) + 1, math.ceil((block + 1) / dt - 1e-9)) * dt
    edges = np.concatenate([[block], inner[(inner > block) & (inner < block + 1)], [block + 1.0]])
    lens = np.diff(edges)
    if c.pattern["type"] == "constant":
        lam = c.rate_rps * lens
    else:
        lam = c.rate_rps * np.maximum(rate_factor(c.pattern, 0.5 * (edges[:-1] + edges[1:])), 0.0) * lens
    cum = np.concatenate([[0.0], np.cumsum(lam)])
    n = int(rng.poisson(cum[-1]))
    gaps = np.cumsum(rng.standard_exponential(n + 1))
    times = np.interp(gaps[:n] * (cum[-1] / gaps[n]), cum, edges)
    users = c.user_offset + rng.integers(0, c.users, size=n)
    cls = (rng.random(n) >= c.read_ratio).astype(np.int8)
    keys = rng.integers(0, 2**64, n, np.uint64)
    items = (np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1) if cdf is not None
             else np.zeros(n, dtype=np.int64))
    want = (times, users, cls, keys, items)
    got = reference_block(np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, c.stream, block]))),
                          c, cum, edges, cdf)   # the module's own reference (rare redraws) agrees
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert all(np.array_equal(a, b) for a, b in zip(block_grid(block, dt, c.rate_rps, c.pattern), (cum, edges)))
    return want


def generated(st: ClientStream, b0: int, b1: int):
    """``st.blocks`` with items made explicit (None: all 0), checking the in-order claim."""
    (times, users, cls, keys, items), start, in_order = st.blocks(b0, b1)
    if in_order:
        assert (times[1:] >= times[:-1]).all()
    items = np.zeros(len(times), dtype=np.int64) if items is None else items
    return (times, users, cls, keys, items), start


def assert_same(got, want, where):
    for name, a, b in zip(("times", "users", "cls", "keys", "items"), got, want):
        assert a.dtype == b.dtype, f"{where}: {name} dtype {a.dtype} != {b.dtype}"
        assert np.array_equal(a, b), f"{where}: {name} differs"


# ----- seeding ------------------------------------------------------------------------------------
def test_seeding_matches_numpy_on_thousands_of_seeds():
    rng = np.random.default_rng(11)
    checked = 0
    for trial in range(150):
        seed = int(rng.integers(0, 2**63)) if trial % 3 else int(rng.integers(0, 50))
        stream = int(rng.integers(0, 2**32)) if trial % 4 else int(rng.integers(0, 2**63))
        blocks = rng.integers(0, 2**32, 20)
        blocks[:4] = [0, 1, 255, 2**32 - 1]
        words = seed_words(seed, stream, blocks)
        rows = pcg64_rows(words)
        for b, w, r in zip(blocks.tolist(), words.tolist(), rows.tolist()):
            s, inc = numpy_state(seed, stream, b)
            assert pcg64_state(w) == (s, inc)
            assert (r[0] | r[1] << 64, r[2] | r[3] << 64) == (s, inc)
            checked += 1
    assert checked == 3000


def test_reused_generator_draws_like_a_fresh_one():
    seeds = BlockSeeds(7, 123)
    for block in [0, 5, 255, 256, 257, 3, 10**6, 2**32 + 9]:   # chunk changes, going back, beyond 32 bits
        g = seeds.use(block)
        fresh = np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, 123, block])))
        assert np.array_equal(g.standard_exponential(5), fresh.standard_exponential(5))
        assert np.array_equal(g.integers(0, 1000, 3), fresh.integers(0, 1000, 3))   # leaves a buffered word
        assert g.bit_generator.state == fresh.bit_generator.state


# ----- tick grids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [0.01, 0.3, 1 / 3, 0.07, 1.0, 2.5])
def test_tick_grids_of_a_window_are_those_of_each_second(dt):
    for pattern in PATTERNS:
        for b0, count in [(0, 9), (3599, 3), (10**7, 2)]:
            xp, fp, start = tick_grid(b0, count, dt, 900.0, pattern)
            for i in range(count):
                cum, edges = block_grid(b0 + i, dt, 900.0, pattern)
                assert np.array_equal(xp[start[i]:start[i + 1]], cum)
                assert np.array_equal(fp[start[i]:start[i + 1]], edges)
            if pattern["type"] == "constant":
                for got in (constant_grid(b0, count, dt, 900.0), constant_grid.py(b0, count, dt, 900.0)):
                    for a, b in zip(got, (xp, fp, start)):
                        assert np.array_equal(a, b)


# ----- whole windows vs second by second ----------------------------------------------------------
CASES = [  # rate, users, read_ratio, pattern, dt, with items
    (900.0, 10_000, 0.9, 0, 0.01, False),
    (35.0, 1, 0.5, 1, 0.3, True),
    (2000.0, 2, 1.0, 2, 1 / 3, False),
    (120.0, 10_000_000, 0.0, 3, 0.07, True),   # 10⁷ users: Lemire rejects ~1 word in 900
    (5000.0, 777, 0.25, 4, 0.01, True),
    (0.4, 50, 0.9, 0, 2.5, False),             # mostly empty seconds
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("path", ["kernel", "kernel as Python", "numpy"])
def test_window_of_seconds_equals_second_by_second(case, path):
    rate, users, rr, pat, dt, with_items = CASES[case]
    c = client(rate, users, offset=17, read_ratio=rr, pattern=PATTERNS[pat])
    cdf = zipf_cdf(300, 1.1) if with_items else None
    st = ClientStream(5, c, dt, cdf)
    st.compiled = path != "numpy"
    if path == "kernel as Python" and finish_blocks.compiled:
        pytest.importorskip("numba")
        st.compiled = True
        saved = finish_blocks._fn, constant_grid._fn
        finish_blocks._fn, constant_grid._fn = finish_blocks.py, constant_grid.py
    try:
        for b0, b1 in [(0, 1), (1, 7), (7, 8), (100, 104), (10**7, 10**7 + 2)]:   # and huge times
            (times, *rest), start = generated(st, b0, b1)
            for i in range(b1 - b0):
                a, b = start[i], start[i + 1]
                assert_same([x[a:b] for x in (times, *rest)], plain(5, c, b0 + i, dt, cdf), f"second {b0 + i}")
    finally:
        if path == "kernel as Python" and finish_blocks.compiled:
            finish_blocks._fn, constant_grid._fn = saved


@pytest.mark.parametrize("compiled", [True, False])
def test_many_rejections_are_drawn_exactly(compiled):
    """3·10⁹ users: Lemire's method rejects ~30 % of the 32-bit words, far beyond the slack
    drawn, so both the in-slack fix and the redraw of a whole second are exercised."""
    for users, rate in [(3_000_000_000, 50.0), (3_000_000_000, 2.0), (2**31 + 1, 400.0), (10_000_000, 20_000.0),
                        (10_000_000, 3000.0)]:   # the last: a few rejections a second, within the slack
        c = client(rate, users, offset=3)
        st = ClientStream(9, c, 0.01, None)
        st.compiled = compiled
        (times, *rest), start = generated(st, 0, 6)
        for i in range(6):
            a, b = start[i], start[i + 1]
            assert_same([x[a:b] for x in (times, *rest)], plain(9, c, i, 0.01, None), f"{users} users, second {i}")


def test_random_clients_kernel_equals_numpy_path():
    rng = np.random.default_rng(3)
    for trial in range(25):
        c = client(float(rng.choice([0.5, 20.0, 900.0, 3000.0])), int(rng.choice([1, 2, 97, 10_000, 10**7])),
                   int(rng.integers(0, 1000)), float(rng.choice([0.0, 0.3, 0.9, 1.0])),
                   PATTERNS[int(rng.integers(len(PATTERNS)))], int(rng.integers(0, 2**32)))
        dt = float(rng.choice([0.01, 0.1, 0.25, 0.3]))
        cdf = zipf_cdf(int(rng.integers(1, 500)), float(rng.choice([0.0, 1.0]))) if trial % 2 else None
        b0 = int(rng.integers(0, 5000))
        count = int(rng.integers(1, 12))
        seed = int(rng.integers(0, 2**62)) if trial % 3 == 0 else 21
        outs = []
        for compiled in (True, False):
            st = ClientStream(seed, c, dt, cdf)
            st.compiled = compiled
            outs.append(generated(st, b0, b0 + count))
        for a, b in zip(outs[0][0], outs[1][0]):
            assert np.array_equal(a, b) and a.dtype == b.dtype
        assert np.array_equal(outs[0][1], outs[1][1])


# ----- the engine: slicing, fast vs plain, browsers --------------------------------------------------
def shop(seed: int = 4) -> Document:
    d = Document()
    d.add_node(NodeData("a", "client", params={"rate_rps": 700.0, "users": 5000, "read_ratio": 0.8,
                                               "pattern": PATTERNS[3], "forged_share": 0.05}))
    d.add_node(NodeData("b", "client", params={"rate_rps": 300.0, "users": 200, "items": 50, "read_ratio": 0.95,
                                               "pattern": PATTERNS[2]}))
    d.add_node(NodeData("c", "client", params={"rate_rps": 90.0, "users": 1, "read_ratio": 0.5}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": "random", "capacity_rps": 1e6}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 5000, "workers": 64, "replicas": 3,
                                                 "cache_max_age_s": 3.0, "etag": True}))
    d.add_node(NodeData("db", "database", params={"read_capacity_rps": 50_000, "connections": 50}))
    for a, b in [("a", "lb"), ("b", "web"), ("c", "lb"), ("lb", "web"), ("web", "db")]:
        d.add_edge(a, b)
    d.set_settings(seed=seed, tick_ms=10.0)
    return d


def delivered(steps: list[float], fast: bool, monkeypatch) -> tuple[dict, dict]:
    """Every request each client sends (concatenated over windows), and the run's totals."""
    monkeypatch.setattr(arrivals, "FAST_ARRIVALS", fast)
    sim = Simulation(shop())
    got: dict[str, list] = {}
    original = sim._deliver

    def record(batch, inbox):
        got.setdefault("all", []).append(tuple(np.array(getattr(batch, f)) for f in
                                               ("birth", "user", "cls", "key", "flags", "item", "st")))
        return original(batch, inbox)

    sim._deliver = record
    for s in steps:
        sim.advance(s)
    out = {f: np.concatenate([p[i] for p in got["all"]]) for i, f in
           enumerate(("birth", "user", "cls", "key", "flags", "item", "st"))}
    return out, sim.totals()


def test_engine_arrivals_do_not_depend_on_slicing_or_path(monkeypatch):
    ref, ref_totals = delivered([8.0], False, monkeypatch)
    assert len(ref["birth"]) > 5000 and ref_totals["browser_hits"] > 0 and ref_totals["not_modified"] > 0
    assert (ref["flags"] != 0).any()
    for steps, fast in [([8.0], True), ([0.37] * 21 + [0.23], True), ([1.0, 0.005, 2.5, 4.495], True),
                        ([0.37] * 21 + [0.23], False)]:
        got, totals = delivered(steps, fast, monkeypatch)
        key = lambda a: np.lexsort((a["key"], a["birth"]))
        o, r = key(got), key(ref)
        for f in ref:
            assert np.array_equal(got[f][o], ref[f][r]), (steps, fast, f)
        assert totals == ref_totals


def test_numpy_fallback_process_gives_the_same_results():
    """SCALELAB_JIT=0 in a fresh interpreter (no kernel at all) against this one (kernels loaded)."""
    code = ("import sys, json; sys.path.insert(0, %r)\n"
            "from tests.simulation.test_arrival_generation import shop\n"
            "from simulation.engine import Simulation\n"
            "s = Simulation(shop()); s.advance(5.0); print(json.dumps(s.totals(), sort_keys=True))") % str(ROOT)
    env = dict(os.environ, SCALELAB_JIT="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    from simulation import compiled
    compiled.warm()
    sim = Simulation(shop())
    sim.advance(5.0)
    import json
    assert json.loads(out.stdout) == json.loads(json.dumps(sim.totals(), sort_keys=True))


def test_live_edit_takes_new_rates_the_same_way_on_both_paths(monkeypatch):
    """A live edit (rate ×3, another pattern) in the middle of a second: both paths switch at once."""
    runs = []
    for fast in (True, False):
        monkeypatch.setattr(arrivals, "FAST_ARRIVALS", fast)
        sim = Simulation(shop())
        times = []
        original = sim._deliver
        sim._deliver = lambda batch, inbox: (times.append(np.array(batch.birth)), original(batch, inbox))[1]
        sim.advance(2.37)
        edited = shop()
        edited.node("a").params.update(rate_rps=2100.0, pattern=PATTERNS[1])
        sim.update_document(edited)
        sim.advance(3.0)
        t = np.sort(np.concatenate(times))
        runs.append(t)
    assert np.array_equal(runs[0], runs[1])
    late = runs[0][(runs[0] >= 3.0) & (runs[0] < 5.0)]
    early = runs[0][runs[0] < 2.0]
    assert len(late) / 2.0 > 1.5 * len(early) / 2.0   # the new rate shows


def test_a_live_edit_of_the_rate_gives_every_later_request_its_own_key(monkeypatch):
    """A second regenerated with another rate draws its keys from the same random words as
    before, shifted: without mixing in the edit, 82 of 1,880 requests in three seconds after
    a rate edit of a ramping client repeated a key of that second (and what follows a
    request by its key, its held worker or its trace, confused the two). On both paths."""
    from simulation.fileformat import dumps, loads
    runs = []
    for fast in (True, False):
        monkeypatch.setattr(arrivals, "FAST_ARRIVALS", fast)
        d = Document()
        d.add_node(NodeData("users", "client", params={"rate_rps": 2000.0, "pattern": {
            "type": "ramp", "start_s": 0.0, "end_s": 10.0, "from_factor": 0.2, "to_factor": 1.5}}))
        d.add_node(NodeData("web", "server", params={"capacity_rps": 5000.0, "workers": 8}))
        d.add_edge("users", "web")
        d.set_settings(seed=3, duration_s=5.0)
        sim = Simulation(d)
        keys = []
        original = sim._deliver
        sim._deliver = lambda batch, inbox: (keys.append(np.array(batch.key)), original(batch, inbox))[1]
        sim.run_until(1.13)
        edited = loads(dumps(d))
        edited.set_params("users", {"rate_rps": 1500.0})
        sim.update_document(edited)
        sim.run_until(1.83)
        sim.update_document(loads(dumps(edited)))   # the same parameters: the same arrivals go on
        sim.run_until(3.0)
        k = np.concatenate(keys)
        assert len(np.unique(k)) == len(k) == sim.totals()["arrived"] > 1500
        runs.append(k)
    assert np.array_equal(np.sort(runs[0]), np.sort(runs[1]))
