"""Batches of requests as structs of numpy arrays.

A :class:`Batch` is a set of requests, one entry per request: the station it
is at, when it was born (arrived at its first node), when it arrived at this
station, when its service starts and finishes, whether it reads or writes,
its user and flags. The engine keeps the requests in flight at each level as
one Batch and moves them with vectorised masks, never one at a time.
"""
from __future__ import annotations

import numpy as np

FIELDS: dict[str, type] = {
    "st": np.int64,      # station
    "birth": np.float64,  # arrival at the first node, s
    "arr": np.float64,   # arrival at this station, s
    "start": np.float64,  # service start, s
    "fin": np.float64,   # service end (or give-up time), s
    "cls": np.int8,      # 0 read, 1 write
    "user": np.int64,    # global user id
    "flags": np.int8,    # FLAG_* bits
    "key": np.uint64,    # random key: every random choice about it hashes this (randomness.py)
    "hop": np.int8,      # stations visited before this one
    "item": np.int64,    # the data item it reads or writes (Zipf popularity of its client)
}

FLAG_SESSION_LOST = 1   # its session was lost at a server: counted failed when done
FLAG_DB_SESSION = 2     # its server keeps sessions in the database: the next store reads one
FLAG_TIMEOUT = 4        # it gives up at ``fin`` instead of being served
FLAG_FORGED = 8         # its session cookie was tampered with (not yet checked by a server)
FLAG_NOT_MODIFIED = 16  # a conditional request for an unchanged item: the server answers 304
FLAG_CHECK = 32         # a load balancer's health check, not a user request (``item``: the balancer)
FLAG_INTERNAL = 64      # work the system makes for itself (a replica applying a write): not a user request


class Batch:
    __slots__ = tuple(FIELDS)

    def __init__(self, **arrays: np.ndarray) -> None:
        n = None
        for name, dtype in FIELDS.items():
            a = arrays.get(name)
            if a is None:
                a = np.zeros(0 if n is None else n, dtype=dtype)
            a = np.asarray(a, dtype=dtype)
            if n is None:
                n = len(a)
            setattr(self, name, a)

    @classmethod
    def empty(cls) -> "Batch":
        return cls._raw(_EMPTY_ARRAYS)   # fresh zero-length arrays are never written to: share them

    @classmethod
    def _raw(cls, values: tuple) -> "Batch":
        """Build from arrays already of the right dtypes, in FIELDS order (hot path)."""
        b = object.__new__(cls)
        b.st, b.birth, b.arr, b.start, b.fin, b.cls, b.user, b.flags, b.key, b.hop, b.item = values
        return b

    def __len__(self) -> int:
        return len(self.st)

    def take(self, index: np.ndarray) -> "Batch":
        """The requests selected by a boolean mask or an index array."""
        return Batch._raw((self.st[index], self.birth[index], self.arr[index], self.start[index],
                           self.fin[index], self.cls[index], self.user[index], self.flags[index],
                           self.key[index], self.hop[index], self.item[index]))

    def forward(self, target: np.ndarray) -> "Batch":
        """These requests, finished here, arriving at ``target`` stations now."""
        return Batch._raw((target, self.birth, self.fin, self.start, self.fin, self.cls, self.user, self.flags,
                           self.key, self.hop + 1, self.item))

    def split(self, mask: np.ndarray) -> tuple["Batch", "Batch"]:
        """(selected, rest) for a boolean mask, without copying when one side is empty."""
        if mask.all():
            return self, _EMPTY
        if not mask.any():
            return _EMPTY, self
        return self.take(mask), self.take(~mask)

    def users_only(self) -> "Batch":
        """The user requests among these (internal work left out)."""
        internal = (self.flags & FLAG_INTERNAL) != 0
        return self if not internal.any() else self.take(~internal)

    def user_count(self) -> int:
        return int(len(self) - np.count_nonzero(self.flags & FLAG_INTERNAL))

    @staticmethod
    def concat(batches: list["Batch"]) -> "Batch":
        bs = [b for b in batches if len(b.st)]
        if len(bs) < 2:
            return bs[0] if bs else Batch.empty()
        cat = np.concatenate   # one call per field, written out (this is a hot path)
        return Batch._raw((cat([b.st for b in bs]), cat([b.birth for b in bs]), cat([b.arr for b in bs]),
                           cat([b.start for b in bs]), cat([b.fin for b in bs]), cat([b.cls for b in bs]),
                           cat([b.user for b in bs]), cat([b.flags for b in bs]), cat([b.key for b in bs]),
                           cat([b.hop for b in bs]), cat([b.item for b in bs])))


_EMPTY_ARRAYS = tuple(np.zeros(0, dtype=d) for d in FIELDS.values())
_EMPTY = Batch()
