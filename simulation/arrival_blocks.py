"""One client's arrivals, a window of simulated seconds at a time.

Every second (a *block*) has its own generator (``arrival_seeds.py``), so the
numbers never depend on how the run is sliced. Per block the arrivals are a
Poisson process whose rate follows the pattern tick by tick: N ~ Poisson(Λ),
sorted uniforms on [0, Λ) as normalised sums of N + 1 exponentials, mapped
through the inverse of the cumulative rate (``np.interp`` over the tick grid);
then users, reads/writes, keys and (where something caches them) items.

This module gives exactly the numbers of the straightforward per-second code
(:func:`reference_block`, kept for tests and for rare redraws) with far less
work per second: the tick grids of all seconds of the window at once, one reused
bit generator, the draws after the exponentials as one ``random_raw`` call (the
32-bit words of ``Generator.integers``, the 53-bit doubles of ``random``, the
keys) and the arithmetic either in the compiled kernel (``arrival_kernel.py``) or
in numpy (the fallback: the same numbers).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from .arrival_kernel import constant_grid, finish_blocks
from .arrival_seeds import BlockSeeds
from .patterns import rate_factor

RAW_SLACK = 8          # raw words drawn beyond need, for the (rare) rejections of Lemire's method
FAST = sys.byteorder == "little"   # the users' 32-bit words are read as halves of the raw words


def tick_grid(b0: int, count: int, dt: float, rate: float, pattern: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tick grid of seconds ``b0 …`` (``count`` of them), as :func:`block_grid` builds it
    second by second: block i owns ``xp``/``fp[start[i]:start[i + 1]]`` (cumulative rate, time)."""
    bf = np.arange(b0, b0 + count, dtype=np.float64)
    klo = np.floor(bf / dt + 1e-9).astype(np.int64) + 1
    khi = np.ceil((bf + 1) / dt - 1e-9).astype(np.int64)
    cnt = np.maximum(khi - klo, 0)
    first = np.cumsum(cnt) - cnt
    owner = np.repeat(np.arange(count), cnt)
    inner = (np.repeat(klo - first, cnt) + np.arange(len(owner))) * dt
    keep = (inner > bf[owner]) & (inner < bf[owner] + 1)
    inner, owner = inner[keep], owner[keep]
    kept = np.bincount(owner, minlength=count)
    points = kept + 2
    start = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(points, out=start[1:])
    fp = np.empty(start[-1])
    fp[start[:-1]] = bf
    fp[start[1:] - 1] = bf + 1.0
    fp[start[owner] + 1 + np.arange(len(owner)) - np.repeat(np.cumsum(kept) - kept, kept)] = inner
    lens = fp[1:] - fp[:-1]
    if pattern["type"] == "constant":
        lam = rate * lens
    else:   # the pattern second by second, on exactly the arrays it saw before
        mid = 0.5 * (fp[:-1] + fp[1:])
        factor = np.concatenate([rate_factor(pattern, mid[start[i]:start[i + 1] - 1]) for i in range(count)]
                                + [np.zeros(0)])
        lam = np.zeros(len(lens))
        seg = np.ones(len(lens), dtype=bool)
        seg[start[1:-1] - 1] = False
        lam[seg] = rate * np.maximum(factor, 0.0) * lens[seg]
    xp = np.empty(start[-1])
    xp[start[:-1]] = 0.0
    if count and (points == points[0]).all():   # the usual case: rows of equal length, summed left to right
        rows = np.empty((count, points[0] - 1))
        rows[:] = np.append(lam, 0.0).reshape(count, points[0])[:, :-1]
        xp.reshape(count, points[0])[:, 1:] = np.cumsum(rows, axis=1)
    else:
        for i in range(count):
            a, b = start[i], start[i + 1]
            xp[a + 1:b] = np.cumsum(lam[a:b - 1])
    return xp, fp, start


def block_grid(block: int, dt: float, rate: float, pattern: dict) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative rate, times) at the ticks of one second: the reference for :func:`tick_grid`."""
    inner = np.arange(math.floor(block / dt + 1e-9) + 1, math.ceil((block + 1) / dt - 1e-9)) * dt
    edges = np.concatenate([[block], inner[(inner > block) & (inner < block + 1)], [block + 1.0]])
    lens = np.diff(edges)
    if pattern["type"] == "constant":
        lam = rate * lens
    else:
        lam = rate * np.maximum(rate_factor(pattern, 0.5 * (edges[:-1] + edges[1:])), 0.0) * lens
    return np.concatenate([[0.0], np.cumsum(lam)]), edges


def reference_block(rng: np.random.Generator, c, cum: np.ndarray, edges: np.ndarray,
                    cdf: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """One second's (times, users, cls, keys, items) the plain way, from its fresh generator."""
    n = int(rng.poisson(cum[-1]))
    gaps = np.cumsum(rng.standard_exponential(n + 1))
    times = np.interp(gaps[:n] * (cum[-1] / gaps[n]), cum, edges)
    users = c.user_offset + rng.integers(0, c.users, size=n)
    cls = (rng.random(n) >= c.read_ratio).astype(np.int8)
    keys = rng.bit_generator.random_raw(n)   # = rng.integers(0, 2**64, n, np.uint64), the same draws, faster
    if cdf is not None:
        items = np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)
    else:
        items = np.zeros(n, dtype=np.int64)
    return times, users, cls, keys, items


class ClientStream:
    """Arrivals of one client (its parameters fixed), generated for whole seconds; the
    last second is kept, as windows may end inside it."""

    def __init__(self, seed: int, c, dt: float, cdf: np.ndarray | None) -> None:
        self.c, self.dt, self.cdf = c, dt, cdf
        self.seeds = BlockSeeds(seed, c.stream)
        self.kinds = 3 if cdf is not None else 2
        self.cls_at = _threshold(c.read_ratio)
        self.last: tuple[int, tuple] | None = None   # the last second generated (set by the caller)
        self._scratch: dict[str, np.ndarray] = {}
        self.compiled: bool | None = None   # force a path (tests); None: the kernel once it is loaded

    def blocks(self, b0: int, b1: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, bool]:
        """(times, users, cls, keys, items) of seconds [b0, b1) end to end (items None without
        a cdf: all 0), where each second starts in them (b1 − b0 + 1 offsets), and whether
        the times are known to be in order."""
        count = b1 - b0
        c = self.c
        use_kernel = finish_blocks.compiled if self.compiled is None else self.compiled
        if use_kernel and c.pattern["type"] == "constant" and constant_grid.compiled:
            xp, fp, gs = constant_grid(b0, count, self.dt, float(c.rate_rps))
        else:
            xp, fp, gs = tick_grid(b0, count, self.dt, c.rate_rps, c.pattern)
        lam = xp[gs[1:] - 1].tolist()
        n = np.empty(count, dtype=np.int64)
        rs = []
        seeds, bg = self.seeds, self.seeds.bit_generator
        two = c.users > 1
        kinds = self.kinds
        expect = sum(lam)
        e = self._buffer("e", int(expect + 10 * math.sqrt(expect) + 2 * count + 64), np.float64)
        pos = 0
        for i in range(count):
            g = seeds.use(b0 + i)
            m = int(g.poisson(lam[i]))
            n[i] = m
            if pos + m + 1 > len(e):
                e = self._buffer("e", 2 * (pos + m + 1), np.float64, keep=pos)
            g.standard_exponential(out=e[pos:pos + m + 1])
            pos += m + 1
            rs.append(bg.random_raw(((m + 1) >> 1 if two else 0) + kinds * m + RAW_SLACK))
        r_len = ((n + 1) >> 1 if two else 0) + kinds * n + RAW_SLACK
        if count > 1:
            raw = self._buffer("r", int(r_len.sum()), np.uint64)[:int(r_len.sum())]
            np.concatenate(rs, out=raw)
        else:
            raw = rs[0]
        e_start = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(n + 1, out=e_start[1:])
        r_start = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(r_len, out=r_start[1:])
        out_start = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(n, out=out_start[1:])
        if use_kernel:
            total = int(out_start[-1])
            times, users = np.empty(total), np.empty(total, dtype=np.int64)
            cls, keys = np.empty(total, dtype=np.int8), np.empty(total, dtype=np.uint64)
            items = np.empty(total if self.cdf is not None else 0, dtype=np.int64)
            short = np.zeros(count, dtype=np.int64)
            in_order = finish_blocks(e, e_start, raw, r_start, n, xp, fp, gs, c.users, c.user_offset,
                                     np.uint64(self.cls_at or 0), self.cls_at is not None,
                                     self.cdf if self.cdf is not None else np.zeros(0), times, users, cls, keys, items,
                                     short)
            redo = np.flatnonzero(short).tolist()
        else:
            times, users, cls, keys, items, redo = self._finish_numpy(e, e_start, raw, r_start, n, lam, xp, fp, gs,
                                                                     out_start)
            in_order = False   # not checked: windows cut by masks
        for i in redo:   # more rejections than slack: draw that second the plain way
            a, b = out_start[i], out_start[i + 1]
            ref = reference_block(self.seeds.use(b0 + i), c, xp[gs[i]:gs[i + 1]], fp[gs[i]:gs[i + 1]], self.cdf)
            for arr, new in zip((times, users, cls, keys, items if self.cdf is not None else None), ref):
                if arr is not None:
                    arr[a:b] = new
            in_order = in_order and bool((times[max(a - 1, 0):b + 1][1:] >= times[max(a - 1, 0):b + 1][:-1]).all())
        return (times, users, cls, keys, items if self.cdf is not None else None), out_start, bool(in_order)

    def _buffer(self, name: str, size: int, dtype, keep: int = 0) -> np.ndarray:
        """A scratch array of at least ``size`` kept between windows (fresh memory from the
        system costs more than filling it); ``keep``: leading entries to carry over."""
        buf = self._scratch.get(name)
        if buf is None or len(buf) < size:
            new = np.empty(max(size, 2 * len(buf) if buf is not None else 0), dtype=dtype)
            if keep:
                new[:keep] = buf[:keep]
            self._scratch[name] = buf = new
        return buf

    def _finish_numpy(self, e, e_start, raw, r_start, n, lam, xp, fp, gs, out_start):
        """The kernel's arithmetic with numpy calls (one set per second, vectorised over the window)."""
        c = self.c
        count = len(n)
        ns = n.tolist()
        two = c.users > 1
        r32 = raw.view(np.uint32)
        times, words, cls_raw, keys_raw, item_raw = [], [], [], [], []
        for i in range(count):
            m, s, r0 = ns[i], e_start[i], r_start[i]
            g = e[s:s + m + 1]
            np.cumsum(g, out=g)
            times.append(np.interp(g[:m] * (lam[i] / g[m]), xp[gs[i]:gs[i + 1]], fp[gs[i]:gs[i + 1]]))
            h = (m + 1) >> 1 if two else 0
            words.append(r32[2 * r0:2 * r0 + (m if two else 0)])
            rest = raw[r0 + h:r0 + h + self.kinds * m].reshape(self.kinds, m)
            cls_raw.append(rest[0])
            keys_raw.append(rest[1])
            if self.cdf is not None:
                item_raw.append(rest[2])
        cat = (lambda parts: np.concatenate(parts)) if count > 1 else (lambda parts: parts[0])
        times = cat(times)
        cls_raw, keys = cat(cls_raw), np.concatenate(keys_raw)   # keys: never a view of the scratch buffer
        redo: list[int] = []
        if two:
            prod = np.multiply(cat(words), np.uint64(c.users), dtype=np.uint64)
            halves = prod.view(np.uint32)                  # (low, high) per product, little-endian
            threshold = (2**32 - c.users) % c.users
            users = np.add(halves[1::2], c.user_offset, dtype=np.int64)
            rejected = halves[0::2] < threshold if threshold else None
            if rejected is not None and rejected.any():   # Lemire's rejections: those seconds exactly
                bad = np.unique(np.searchsorted(out_start, np.flatnonzero(rejected), "right") - 1)
                cls_raw, keys = cls_raw.copy(), keys.copy()
                for i in bad.tolist():
                    part = self._exact_users(raw[r_start[i]:r_start[i + 1]], ns[i])
                    if part is None:
                        redo.append(i)
                        continue
                    a, b = out_start[i], out_start[i + 1]
                    users[a:b], cls_raw[a:b], keys[a:b] = part[0], part[1][0], part[1][1]
                    if self.cdf is not None:
                        item_raw[i] = part[1][2]
        else:
            users = np.full(len(times), c.user_offset, dtype=np.int64)
        cls = self._cls(cls_raw)
        if self.cdf is not None:
            u = (cat(item_raw) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
            items = np.minimum(np.searchsorted(self.cdf, u), len(self.cdf) - 1)
        else:
            items = None
        return times, users, cls, keys, items, redo

    def _exact_users(self, raw: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Users of one second whose 32-bit words had rejections, and the raw words that
        follow them (reads/writes, keys, items); None if more words were needed than drawn."""
        c = self.c
        words = raw.view(np.uint32)[:2 * (((m + 1) >> 1) + RAW_SLACK)]   # all that users may take
        prod = np.multiply(words, np.uint64(c.users), dtype=np.uint64)
        ok = (prod & np.uint64(0xFFFFFFFF)) >= (2**32 - c.users) % c.users
        pos = np.flatnonzero(ok)[:m]
        if len(pos) < m:
            return None
        p = (int(pos[-1]) + 2) >> 1 if m else 0
        if p + self.kinds * m > len(raw):
            return None
        users = c.user_offset + (prod[pos] >> np.uint64(32)).astype(np.int64)
        return users, raw[p:p + self.kinds * m].reshape(self.kinds, m)

    def _cls(self, raw: np.ndarray) -> np.ndarray:
        """(random >= read_ratio) as int8, with random = (raw >> 11) / 2**53: compared as integers."""
        if self.cls_at is None:
            return np.zeros(len(raw), dtype=np.int8)
        return (raw >= np.uint64(self.cls_at)).view(np.int8)


def _threshold(read_ratio: float) -> int | None:
    """The raw words w with (w >> 11) / 2**53 >= read_ratio are those w >= the result
    (None: no word is)."""
    k = math.ceil(read_ratio * 9007199254740992.0)
    k = max(k, 0)
    return None if k >= 2**53 else k << 11
