"""Latency histograms of the metrics (latency_hist.py, hist_rows.py): the compiled bin scan,
its Python source and the numpy path give the same percentiles, bit for bit, as a direct
computation over full-width rows; the stored rows (a window of bins) sum, merge and
saturate exactly as full-width rows would."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulation import compiled
from simulation import latency_hist as lh
from simulation.hist_rows import CHUNK, HIST_MAX, HistRows

QS = (0.5, 0.95, 0.99)


def direct_ms(hists: np.ndarray, qs) -> np.ndarray:
    """The percentile rule written out, row by row: the first bin whose cumulative count
    reaches q · total, interpolated within it on the log scale; NaN for an empty row."""
    out = np.full((len(hists), len(qs)), np.nan)
    for r, row in enumerate(np.asarray(hists, dtype=np.float64)):
        cum = np.cumsum(row)
        total = cum[-1]
        if total <= 0:
            continue
        for j, q in enumerate(qs):
            target = q * total
            i = min(int((cum < target).sum()), len(row) - 1)
            below = cum[i - 1] if i > 0 else 0.0
            frac = (target - below) / row[i] if row[i] > 0 else 0.0
            # numpy's power of an array (vectorised; a Python float's ** may differ in the last bit)
            with np.errstate(over="ignore"):   # q > 1: beyond the last bin
                out[r, j] = (lh.LAT_MIN_MS * lh.BIN_RATIO ** np.array([i + frac]))[0]
    return out


def random_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Full-width int64 rows: empty seconds, one request, a few, many; narrow and wide
    spreads; now and then a bin at either end and counts beyond uint32."""
    h = np.zeros((rows, lh.N_BINS), dtype=np.int64)
    for r in range(rows):
        n = int(rng.choice([0, 0, 1, 2, 3, 17, 1000, 50_000]))
        if n:
            lat = rng.lognormal(rng.uniform(-12, 5), rng.uniform(0.001, 2.5), n)
            np.add.at(h[r], lh.latency_bins(lat), 1)
        if rng.random() < 0.05:
            h[r, 0] += 1
        if rng.random() < 0.05:
            h[r, -1] += 3
        if rng.random() < 0.03:
            h[r, rng.integers(0, lh.N_BINS)] = int(rng.integers(2**32, 2**34))
    return h


def stored(h: np.ndarray) -> HistRows:
    s = HistRows()
    s.grow(len(h), 0)
    s.write(0, h)
    return s


def kernel_as_python(s: HistRows, a: int, b: int, qs) -> np.ndarray:
    q = np.asarray(qs, dtype=np.float64)
    expo, total = np.empty((len(q), b - a)), np.empty(b - a, dtype=np.int64)
    lh.percentile_exponents.py(s.data[a:b], s.lo, q, expo, total)
    return lh.ms_of(expo, total)


def numpy_path(monkeypatch, s: HistRows, a: int, b: int, qs) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(lh.percentile_exponents, "_fn", None)     # not loaded: the numpy path
        assert not lh.percentile_exponents.compiled
        return s.percentiles_ms(a, b, qs)


@pytest.mark.parametrize("seed", range(6))
def test_all_paths_give_the_direct_percentiles_bit_for_bit(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    h = random_rows(rng, int(rng.integers(1, 40)))
    expect = direct_ms(np.minimum(h, HIST_MAX), QS)
    s = stored(h)
    got = {"stored": s.percentiles_ms(0, len(h), QS),
           "stored, numpy": numpy_path(monkeypatch, s, 0, len(h), QS),
           "stored, kernel source": kernel_as_python(s, 0, len(h), QS),
           "full width": lh.percentiles_ms(np.minimum(h, HIST_MAX), QS),
           "full width, uint32": lh.percentiles_ms(np.minimum(h, HIST_MAX).astype(np.uint32), QS),
           "full width, float": lh.percentiles_ms(np.minimum(h, HIST_MAX).astype(float), QS)}
    for name, x in got.items():
        assert np.array_equal(x, expect, equal_nan=True), name
    if compiled.numba_module() is not None:
        assert lh.percentile_exponents.compiled        # conftest warmed it: the compiled scan ran above


def test_the_bin_is_numpys_inverted_cdf_percentile():
    # an independent check: the quantile's bin is the inverted-CDF percentile of the binned
    # values, and the fraction lies within that bin
    rng = np.random.default_rng(11)
    for _ in range(60):
        bins = lh.latency_bins(rng.lognormal(rng.uniform(-8, 2), rng.uniform(0.01, 2), int(rng.integers(1, 400))))
        h = np.bincount(bins, minlength=lh.N_BINS)[None, :]
        qs = (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)
        expo, total = lh.exponents_numpy(h, np.array(qs))
        assert total[0] == len(bins)
        for j, q in enumerate(qs):
            i = int(np.percentile(bins, 100 * q, method="inverted_cdf"))
            assert i < expo[j, 0] <= i + 1


def test_one_request_and_empty_seconds():
    h = np.zeros((3, lh.N_BINS), dtype=np.int64)
    h[1, 700] = 1                      # one request: every quantile q is q of the way through its bin
    s = stored(h)
    p = s.percentiles_ms(0, 3, QS)
    assert np.isnan(p[0]).all() and np.isnan(p[2]).all()
    assert p[1] == pytest.approx([lh.LAT_MIN_MS * lh.BIN_RATIO ** (700 + q) for q in QS], rel=1e-12)
    assert np.array_equal(p, kernel_as_python(s, 0, 3, QS), equal_nan=True)
    nothing = stored(np.zeros((4, lh.N_BINS), dtype=np.int64))
    assert nothing.data.shape[1] == 0 and np.isnan(nothing.percentiles_ms(0, 4, QS)).all()
    assert np.isnan(kernel_as_python(nothing, 0, 4, QS)).all()


def test_quantiles_out_of_order_and_at_the_ends_match_full_width_rows(monkeypatch):
    rng = np.random.default_rng(3)
    h = random_rows(rng, 25)
    h[:, :CHUNK] = 0                  # the window starts after bin 0
    s = stored(h)
    assert s.lo >= CHUNK
    for qs in ((0.99, 0.5, 0.95), (0.0, 0.5), (1.0, 1.5), (0.3,)):
        expect = direct_ms(np.minimum(h, HIST_MAX), qs)
        with np.errstate(over="ignore"):
            assert np.array_equal(s.percentiles_ms(0, 25, qs), expect, equal_nan=True), qs
            assert np.array_equal(numpy_path(monkeypatch, s, 0, 25, qs), expect, equal_nan=True), qs
        if 0 < min(qs) and max(qs) <= 1:
            assert np.array_equal(kernel_as_python(s, 0, 25, qs), expect, equal_nan=True), qs


def test_stored_rows_widen_saturate_merge_and_sum_like_full_width_rows():
    rng = np.random.default_rng(5)
    full = np.zeros((40, lh.N_BINS), dtype=np.int64)
    s = HistRows()
    s.grow(40, 0)
    n = 0
    for block in range(6):            # latencies move: the window widens as they do
        k = int(rng.integers(1, 7))
        h = np.zeros((k, lh.N_BINS), dtype=np.int64)
        for r in range(k):
            centre = rng.uniform(-9, 4) + block
            np.add.at(h[r], lh.latency_bins(rng.lognormal(centre, 0.3, int(rng.integers(0, 300)))), 1)
        if block == 4:
            h[0, 1500] = 2**33        # saturates
        s.write(n, h)
        full[n:n + k] = np.minimum(h, HIST_MAX)
        n += k
    extra = np.zeros(lh.N_BINS, dtype=np.int64)
    extra[[3, 2000]] = (5, HIST_MAX)
    s.add(n - 1, extra)               # a partial row filled up (Metrics._fill_last)
    full[n - 1] = np.minimum(full[n - 1] + extra, HIST_MAX)
    assert s.lo % CHUNK == 0 and (s.hi % CHUNK == 0 or s.hi == lh.N_BINS)
    assert np.array_equal(s.dense(0, n), full[:n])
    mask = rng.random(n) < 0.5
    assert np.array_equal(s.sum_rows(mask), full[:n][mask].sum(axis=0))
    assert np.array_equal(s.percentiles_ms(0, n, QS), direct_ms(full[:n], QS), equal_nan=True)
    s.merge_pairs(n)                  # Metrics._merge_pairs
    half = n // 2
    merged = np.minimum(full[0:2 * half:2] + full[1:2 * half:2], HIST_MAX)
    if n % 2:
        merged = np.vstack([merged, full[n - 1:n]])
    m = len(merged)
    assert np.array_equal(s.dense(0, m), merged)
    assert not s.data[m:n].any()
    assert np.array_equal(s.percentiles_ms(0, m, QS), direct_ms(merged, QS), equal_nan=True)


def test_latency_bins_are_the_formula():
    rng = np.random.default_rng(2)
    lat = np.concatenate([rng.lognormal(-4, 3, 20_000), [0.0, 1e-12, 1e-5, 9.99e-6, 1.0, 1e4, 1e7, 1e9]])
    ms = np.maximum(lat * 1000.0, lh.LAT_MIN_MS)
    expect = np.minimum((np.log(ms / lh.LAT_MIN_MS) / math.log(lh.BIN_RATIO)).astype(np.int64), lh.N_BINS - 1)
    got = lh.latency_bins(lat)
    assert got.dtype == np.int64 and np.array_equal(got, expect)
    assert got[-8] == 0 and got[-1] == lh.N_BINS - 1
    # a latency lies within its bin's bounds (up to rounding at the edges)
    inner = (lat > 2e-5) & (lat < 1e6)
    lo_ms = lh.LAT_MIN_MS * lh.BIN_RATIO ** got[inner]
    assert (lo_ms <= lat[inner] * 1000 * (1 + 1e-12)).all() and (lat[inner] * 1000 < lo_ms * lh.BIN_RATIO * (1 + 1e-12)).all()
    assert lh.latency_bins(np.zeros(0)).shape == (0,)


def test_a_run_gives_the_same_rows_with_and_without_the_kernel(monkeypatch):
    # end to end: the per-second percentiles of a run with the compiled scan are those of the
    # numpy path (and a merged row's are those of its summed seconds)
    from simulation.document import Document, NodeData
    from simulation.engine import Simulation
    from simulation import metrics as metrics_module

    def run():
        d = Document()
        d.add_node(NodeData("users", "client", params={"rate_rps": 300.0}))
        d.add_node(NodeData("web", "server", params={"capacity_rps": 400, "workers": 2}))
        d.add_edge("users", "web")
        d.set_settings(seed=4, duration_s=200.0)
        sim = Simulation(d)
        sim.advance(200.0)
        m = sim.metrics
        return m, np.column_stack([m.p50_ms, m.p95_ms, m.p99_ms, m.mean_ms])

    monkeypatch.setattr(metrics_module, "MAX_ROWS", 64)    # 200 s in 64 rows: merged rows of 4 s
    m1, a = run()
    with monkeypatch.context() as mp:
        mp.setattr(lh.percentile_exponents, "_fn", None)
        m2, b = run()
    assert m1.width == 4 and np.array_equal(a, b, equal_nan=True)
    assert np.isfinite(a[:, 0]).all() and (a[:, 0] <= a[:, 1]).all() and (a[:, 1] <= a[:, 2]).all()
    r = 7                             # a merged row: the percentiles of its seconds' summed histogram
    hist, served, _ = m1.latency_of_rows(np.arange(m1.n) == r)
    assert hist.sum() == served
    assert np.array_equal(a[r, :3], lh.percentiles_ms(hist[None, :], QS)[0])
