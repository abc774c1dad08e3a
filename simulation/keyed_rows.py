"""Rows of values by key (one column per node, edge or column name), for metrics.py.

A key that appears later has NaN in the rows before it; rows merge by span-weighted
means that ignore NaN (a key absent for part of a span).
"""
from __future__ import annotations

import numpy as np


def mean_of(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """Span-weighted mean of two rows of values, ignoring NaN (a key absent for part of the span)."""
    wa = np.where(np.isnan(a), 0.0, wa)
    wb = np.where(np.isnan(b), 0.0, wb)
    w = wa + wb
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, (np.nan_to_num(a) * wa + np.nan_to_num(b) * wb) / np.where(w > 0, w, 1.0), np.nan)


def group_mean(block: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group of consecutive rows (one second each): the mean of each column, NaN ignored."""
    ok = ~np.isnan(block)
    total = np.add.reduceat(np.where(ok, block, 0.0), starts, axis=0)
    count = np.add.reduceat(ok.astype(float), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)


class Keyed:
    """Rows × keys series (one column per node or edge), NaN before a key appeared."""

    def __init__(self) -> None:
        self.keys: dict = {}
        self.data = np.full((0, 0), np.nan)
        self._last_keys: list = []
        self._last_idx: list[int] | np.ndarray = []
        self._last_in_order = False    # the last keys are all the keys, in column order
        self._last_size = 0            # len(self.keys) when they were looked up

    @property
    def width(self) -> int:
        return len(self.keys)

    def write(self, i0: int, keys: list, block: np.ndarray, limit: int) -> None:
        """Write ``block`` (rows × len(keys)) at rows i0.. for these keys; grow to at most ``limit`` rows
        beyond what is needed."""
        # the same keys as last time (the usual case): no lookups
        if len(self.keys) != self._last_size or keys != self._last_keys:
            for k in keys:
                if k not in self.keys:
                    self.keys[k] = len(self.keys)
            idx = [self.keys[k] for k in keys]
            self._last_keys, self._last_size = list(keys), len(self.keys)
            self._last_in_order = len(idx) == len(self.keys) and idx == list(range(len(idx)))
            self._last_idx = np.array(idx, dtype=np.int64)
        rows, cols = i0 + block.shape[0], len(self.keys)
        if rows > self.data.shape[0] or cols > self.data.shape[1]:
            grow = max(rows, min(2 * self.data.shape[0], limit), 64) if rows > self.data.shape[0] else self.data.shape[0]
            new = np.full((grow, max(cols, self.data.shape[1])), np.nan)
            new[:self.data.shape[0], :self.data.shape[1]] = self.data
            self.data = new
        if self._last_in_order and self.data.shape[1] == cols:
            self.data[i0:rows] = block
        else:
            self.data[i0:rows, self._last_idx] = block

    def combine(self, row: int, wa: float, block_row: np.ndarray, keys: list, wb: float) -> None:
        """Merge one row of new values (for ``keys``) into ``row``, weighted by spans."""
        for k in keys:
            if k not in self.keys:
                self.write(row, [k], np.full((1, 1), np.nan), row + 1)
        idx = [self.keys[k] for k in keys]
        cur = self.data[row, idx]
        self.data[row, idx] = mean_of(cur, np.full(len(idx), wa), block_row, np.full(len(idx), wb))

    def merge_pairs(self, n: int, spans: np.ndarray) -> None:
        """Rows (0,1), (2,3), ... of the first ``n`` become rows 0, 1, ...; an odd last row moves alone."""
        half = n // 2
        a, b = self.data[0:2 * half:2], self.data[1:2 * half:2]
        sa, sb = spans[0:2 * half:2, None], spans[1:2 * half:2, None]
        self.data[:half] = mean_of(a, np.broadcast_to(sa, a.shape), b, np.broadcast_to(sb, b.shape))
        if n % 2:
            self.data[half] = self.data[n - 1]
        self.data[(n + 1) // 2:n] = np.nan

    def view(self, n: int) -> dict:
        return {k: self.data[:n, j] for k, j in self.keys.items()}
