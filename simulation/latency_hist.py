"""Latency histograms: log-spaced bins and their percentiles.

Bins are 1 % wide from 10 µs to 10⁷ ms (like HdrHistogram), so a percentile is
accurate to about half a percent whatever the rate. A q-quantile lies in the first
bin whose cumulative count reaches ``q · total``; it is interpolated within that bin
on the log scale: ``LAT_MIN_MS · BIN_RATIO ** (i + frac)``.

Finding the bin is integer arithmetic, so it can run compiled: the metrics' stored
histograms (hist_rows.py) are scanned by the kernel :func:`percentile_exponents` once
numba has loaded it (one pass per row, stopping at the highest quantile), else in
numpy (:func:`exponents_numpy`: one cumulative sum and one ``searchsorted`` for all
rows). Both find the same bin and fraction, and the power is numpy's in both (see
:func:`ms_of`): the same numbers.
"""
from __future__ import annotations

import math

import numpy as np

from .compiled import kernel

LAT_MIN_MS = 0.01
BIN_RATIO = 1.01
N_BINS = int(math.ceil(math.log(1e7 / LAT_MIN_MS) / math.log(BIN_RATIO))) + 1
_LOG_RATIO = math.log(BIN_RATIO)
_BLOCK = 16         # the kernel skips bins below a quantile this many at a time
_EXACT = 2**53      # float64 holds every integer below this: counts compare exactly


def latency_bins(latency_s: np.ndarray) -> np.ndarray:
    """The bin of each latency (seconds): ``floor(log(ms / LAT_MIN_MS) / log(BIN_RATIO))``, clipped
    to the bins (in place on one temporary: the same operations, and so the same bins, as written out)."""
    ms = np.multiply(latency_s, 1000.0, dtype=np.float64)
    np.maximum(ms, LAT_MIN_MS, out=ms)
    np.divide(ms, LAT_MIN_MS, out=ms)
    np.log(ms, out=ms)
    np.divide(ms, _LOG_RATIO, out=ms)
    bins = ms.astype(np.int64)
    return np.minimum(bins, N_BINS - 1, out=bins)


def percentile_ms(hist: np.ndarray, q: float) -> float:
    """The q-quantile (0..1) of a latency histogram, interpolated within its bin."""
    return float(percentiles_ms(np.asarray(hist)[None, :], (q,))[0, 0])


def percentiles_ms(hists: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles of each row of ``hists`` (rows × bins): an array rows × len(qs); NaN for empty rows."""
    return ms_of(*exponents_numpy(np.asarray(hists), np.asarray(qs, dtype=np.float64)))


def ms_of(expo: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Quantiles in ms (rows × len(qs)) from their bin exponents ``i + frac`` (len(qs) × rows)
    and the rows' totals: NaN for an empty row."""
    out = np.empty((expo.shape[1], expo.shape[0]))
    for j in range(len(expo)):      # one contiguous row of exponents per quantile
        out[:, j] = np.where(total > 0, LAT_MIN_MS * BIN_RATIO ** expo[j], np.nan)
    return out


def exponents_numpy(hists: np.ndarray, qs: np.ndarray, lo: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``i + frac`` of each quantile (len(qs) × rows) and each row's total, for histograms whose
    first column is bin ``lo`` (the bins before it empty: then ``0 < q <= 1``, see hist_rows.py).

    The cumulative counts of all rows, each row shifted above the previous one, form one
    sorted array: one ``searchsorted`` finds, for every row and quantile, how many bins
    hold fewer than ``q · total`` requests (an integer ``c`` is below a target ``t``
    exactly when ``c < ceil(t)``)."""
    hists = np.asarray(hists)
    rows, bins = hists.shape
    if hists.dtype.kind not in "ui" or not bins:
        return _exponents_by_comparison(hists, qs, lo)
    cum = np.cumsum(hists, axis=1, dtype=np.int64)
    total = cum[:, -1].copy()
    big = int(total.max()) + 1 if rows else 1
    if big >= _EXACT or big * rows >= 2**62:
        return _exponents_by_comparison(hists, qs, lo)
    target = qs[:, None] * total.astype(np.float64)[None, :]        # len(qs) × rows: q · total
    shift = np.arange(rows, dtype=np.int64) * big
    cum += shift[:, None]
    keys = np.ceil(target).astype(np.int64) + shift[None, :]
    flat = np.searchsorted(cum.reshape(-1), keys.reshape(-1), side="left").reshape(keys.shape)
    i = np.minimum(flat - np.arange(rows, dtype=np.int64)[None, :] * bins, bins - 1)
    r = np.broadcast_to(np.arange(rows), i.shape)
    below = np.where(i > 0, cum[r, np.maximum(i - 1, 0)] - shift[None, :], 0).astype(np.float64)
    here = hists[r, i].astype(np.float64)
    frac = np.where(here > 0, (target - below) / np.where(here > 0, here, 1.0), 0.0)
    return (i + lo) + frac, total


def _exponents_by_comparison(hists: np.ndarray, qs: np.ndarray, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """The same in float arithmetic, one comparison per bin (float counts, counts beyond 2**53)."""
    hists = np.asarray(hists, dtype=np.float64)
    rows, bins = hists.shape
    if not bins:
        return np.zeros((len(qs), rows)), np.zeros(rows)
    cum = np.cumsum(hists, axis=1)
    total = cum[:, -1]
    r = np.arange(rows)
    expo = np.empty((len(qs), rows))
    for j, q in enumerate(qs):
        target = q * total
        i = np.minimum((cum < target[:, None]).sum(axis=1), bins - 1)
        below = np.where(i > 0, cum[r, np.maximum(i - 1, 0)], 0.0)
        here = hists[r, i]
        expo[j] = (i + lo) + np.where(here > 0, (target - below) / np.where(here > 0, here, 1.0), 0.0)
    return expo, total


def _sample() -> tuple:
    h = np.zeros((2, 8), dtype=np.uint32)
    h[1, 2:5] = (3, 0, 4)
    return h, 5, np.array([0.5, 0.95, 0.99]), np.empty((3, 2)), np.empty(2, dtype=np.int64)


@kernel(sample=_sample)
def percentile_exponents(hists, lo, qs, expo, total):
    """:func:`exponents_numpy` compiled, for ``uint32`` rows (rows × bins, C order) whose first
    column is bin ``lo``: per row its total into ``total`` and, per quantile ``qs[j]``,
    ``i + frac`` into ``expo[j, row]``: ``i`` the first bin whose cumulative count reaches
    ``qs[j] · total`` (the last column at most), ``frac`` the part of that bin's count needed
    to get there (0 for an empty bin; an empty row gives ``lo``). Ascending quantiles continue
    the scan where the previous one stopped. Counts compare as integers: ``c < t`` exactly
    when ``c < ceil(t)``."""
    rows, bins = hists.shape
    for r in range(rows):
        row = hists[r]
        n = 0
        for b in range(bins):
            n += np.int64(row[b])
        total[r] = n
        tot = np.float64(n)
        i = 0            # the column the scan is at
        below = 0        # requests in the columns before it
        last = -1.0
        for j in range(len(qs)):
            target = qs[j] * tot
            if target < last:   # a smaller quantile after a larger one: scan again
                i = 0
                below = 0
            last = target
            if bins == 0:
                expo[j, r] = np.float64(lo)
                continue
            need = np.int64(np.ceil(target))
            while i + _BLOCK <= bins - 1:      # whole blocks of bins all below the target
                s = 0
                for b in range(i, i + _BLOCK):
                    s += np.int64(row[b])
                if below + s >= need:
                    break
                below += s
                i += _BLOCK
            while i < bins - 1 and below + np.int64(row[i]) < need:
                below += np.int64(row[i])
                i += 1
            here = np.float64(row[i])
            frac = (target - np.float64(below)) / here if here > 0 else 0.0
            expo[j, r] = np.float64(lo + i) + frac
