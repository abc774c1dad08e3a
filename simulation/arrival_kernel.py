"""Arrivals of a window, from the draws of its seconds to requests, compiled (compiled.py).

The arithmetic after numpy's draws, second by second, exactly as the numpy path of
``arrival_blocks.py`` does it: the running sum of the exponential gaps (``cumsum``,
left to right), their scaling to [0, Λ), ``np.interp`` through the second's tick grid
(the same slope, product and sum as numpy's C code), users by Lemire's method on
32-bit words (numpy's ``Generator.integers``, rejections included), reads/writes
and items from 53-bit doubles (``Generator.random``) and the keys (raw words). Only
IEEE additions, multiplications, divisions and integer operations: no log or exp,
so the compiled and the Python/numpy paths give the same bits.
"""
from __future__ import annotations

import math

import numpy as np

from .compiled import kernel

M32 = np.uint64(0xFFFFFFFF)
TO_DOUBLE = 1.0 / 9007199254740992.0


def _sample() -> tuple:
    i64, f64 = np.int64, np.float64
    e = np.array([0.5, 1.0, 0.7], dtype=f64)
    r = np.arange(1, 14, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return (e, np.array([0, 3], dtype=i64), r, np.array([0, 13], dtype=i64), np.array([2], dtype=i64),
            np.array([0.0, 1.0, 2.0], dtype=f64), np.array([5.0, 5.5, 6.0], dtype=f64), np.array([0, 3], dtype=i64),
            10, 0, np.uint64(2**63), True, np.array([0.5, 1.0], dtype=f64), np.zeros(2, dtype=f64), np.zeros(2, dtype=i64),
            np.zeros(2, dtype=np.int8), np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=i64), np.zeros(1, dtype=i64))


@kernel(sample=lambda: (3, 2, 0.3, 100.0))
def constant_grid(b0, count, dt, rate):
    """``arrival_blocks.tick_grid`` for a constant rate: (xp, fp, start), the same numbers."""
    total = 0
    for i in range(count):
        b = float(b0 + i)
        total += max(math.ceil((b + 1) / dt - 1e-9) - (math.floor(b / dt + 1e-9) + 1), 0) + 2
    xp = np.empty(total)
    fp = np.empty(total)
    start = np.empty(count + 1, dtype=np.int64)
    pos = 0
    for i in range(count):
        b = float(b0 + i)
        first = pos
        start[i] = pos
        fp[pos] = b
        xp[pos] = 0.0
        pos += 1
        for k in range(math.floor(b / dt + 1e-9) + 1, math.ceil((b + 1) / dt - 1e-9)):
            v = k * dt
            if v > b and v < b + 1.0:
                fp[pos] = v
                pos += 1
        fp[pos] = b + 1.0
        pos += 1
        acc = rate * (fp[first + 1] - fp[first])
        xp[first + 1] = acc
        for j in range(first + 2, pos):
            acc = acc + rate * (fp[j] - fp[j - 1])
            xp[j] = acc
    start[count] = pos
    return xp[:pos], fp[:pos], start


@kernel(sample=_sample)
def finish_blocks(e, e_start, raw, r_start, n, xp, fp, g_start, users, user_off, cls_at, reads_below_1, cdf,
                  times, user, cls, keys, item, short):
    """Block i (a simulated second) has ``n[i]`` arrivals, its ``n[i] + 1`` exponential
    draws at ``e[e_start[i]:]`` (summed in place), its raw words at ``raw[r_start[i]:
    r_start[i + 1]]`` (users' 32-bit words, then reads/writes, keys and, with a
    ``cdf``, items) and its tick grid at ``xp``/``fp[g_start[i]:g_start[i + 1]]``.
    A request writes (cls 1) when its raw word w has (w >> 11) / 2**53 >= read_ratio,
    i.e. w >= ``cls_at`` (``reads_below_1`` False: none does). Outputs go to position ``sum(n[:i])`` on (``item`` only with a ``cdf``). ``short[i] = 1``
    when rejections used more words than were drawn (the caller then draws that second
    again). Returns 1 if all times are in order (then windows may cut them by bisection)."""
    threshold = np.uint64((2**32 - users) % users) if users > 1 else np.uint64(0)
    span = np.uint64(users)
    with_items = len(cdf) > 0
    kinds = 3 if with_items else 2
    out = 0
    in_order = True
    prev = -np.inf
    slopes = np.empty(len(xp))
    for i in range(len(n)):
        m = n[i]
        short[i] = 0
        s = e_start[i]
        acc = e[s]
        for k in range(1, m + 1):
            acc = acc + e[s + k]
            e[s + k] = acc
        lo, hi = g_start[i], g_start[i + 1]
        for j in range(lo, hi - 1):   # as np.interp precomputes them (unused where xp does not grow)
            d = xp[j + 1] - xp[j]
            slopes[j] = (fp[j + 1] - fp[j]) / d if d != 0 else 0.0
        scale = xp[hi - 1] / e[s + m]
        # x = e[s + k] * scale does not decrease with k (sums of non-negative draws times a
        # non-negative number), so the segments are walked once, as np.interp's search finds
        # them: the last j with xp[j] <= x, then slope × (x − xp[j]) + fp[j] (fp[j] at x = xp[j]).
        k = 0
        x = e[s] * scale
        for j in range(lo, hi - 1):
            if k >= m:
                break
            upper = xp[j + 1]
            if not x < upper:
                continue
            base, f0, slope = xp[j], fp[j], slopes[j]
            while True:
                if x <= base:   # x = xp[j] (x < xp[lo] cannot happen: fp[lo] = f0 then anyway)
                    t = f0
                else:
                    t = slope * (x - base) + f0
                    if t != t:   # as numpy: from the other end, then the flat value
                        t = slope * (x - upper) + fp[j + 1]
                        if t != t and f0 == fp[j + 1]:
                            t = f0
                times[out + k] = t
                in_order &= t >= prev   # False for a NaN too
                prev = t
                k += 1
                if k >= m:
                    break
                x = e[s + k] * scale
                if not x < upper:
                    break
        while k < m:   # at or beyond the last point (numpy's right value), or NaN
            x = e[s + k] * scale
            t = x if x != x else fp[hi - 1]
            times[out + k] = t
            in_order &= t >= prev
            prev = t
            k += 1
        r0, r1 = r_start[i], r_start[i + 1]
        rp = r0   # raw words taken; each gives two 32-bit words, the low half first
        k = 0
        if users > 1:
            while k < m:
                if rp >= r1:
                    short[i] = 1
                    break
                word = raw[rp]
                rp += 1
                prod = (word & M32) * span
                if (prod & M32) >= threshold:   # else rejected: the next word instead
                    user[out + k] = user_off + np.int64(prod >> np.uint64(32))
                    k += 1
                    if k == m:   # the high half stays buffered, unused
                        break
                prod = (word >> np.uint64(32)) * span
                if (prod & M32) >= threshold:
                    user[out + k] = user_off + np.int64(prod >> np.uint64(32))
                    k += 1
        else:
            for k in range(m):
                user[out + k] = user_off
        p = rp
        if short[i] == 0 and p + kinds * m > r1:
            short[i] = 1
        if short[i] == 0:
            for k in range(m):
                cls[out + k] = 1 if raw[p + k] >= cls_at and reads_below_1 else 0
                keys[out + k] = raw[p + m + k]
            if with_items:
                last = len(cdf) - 1
                for k in range(m):
                    u = np.float64(np.int64(raw[p + 2 * m + k] >> np.uint64(11))) * TO_DOUBLE
                    a, b = 0, len(cdf)
                    while a < b:   # np.searchsorted(cdf, u), side "left"
                        mid = (a + b) >> 1
                        if cdf[mid] < u:
                            a = mid + 1
                        else:
                            b = mid
                    item[out + k] = min(a, last)
        out += m
    return 1 if in_order else 0
