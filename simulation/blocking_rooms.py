"""The waiting rooms of blocking servers at a window's end: refusals decided, seconds closed.

A part of :class:`simulation.blocking.Blocking`. A request waiting at a blocking server
stays *undecided* (start = +inf in ``pending``) until the releases it depends on are
known; its arrival second used to stay open until then, because a refusal is booked in
the second the request arrived in. With the default waiting room (1,000 places) and
patience (30 s) a saturated tier then kept its plots 4 to 10 s behind the clock.

Whether the room was full at an arrival does not wait for those releases where the
room is counted exactly (room_kernel.py): at the end of every window the refusals among
the undecided requests are decided and booked, and the others are known to be in the
room (``_room_keys``; a tampered cookie among them is counted now, as at an admission).
Those keep no second open: each whole second they wait through
is counted in its queue when the second closes (``_snap_room``), and only the last
whole second, if it is the current instant, waits for the next window (a worker
released exactly then would start one of them then, not wait).
"""
from __future__ import annotations

import math

import numpy as np

from .admission_kernel import RING_CAP
from .flight import FLAG_CHECK, FLAG_FORGED, FLAG_INTERNAL, Batch
from .room_kernel import room_refusals

MARGIN_S = 1e-6   # arrivals this close to the window's end wait for the next one (undecided starts: at most ~0.1 µs sooner)


class WaitingRooms:
    def _room_setup(self) -> None:
        self._room_keys = np.zeros(0, dtype=np.uint64)   # undecided requests known to be in their waiting rooms

    def _exact_rooms(self) -> np.ndarray:
        """The blocking stations up whose waiting room is counted exactly (a ring)."""
        st, lim = self.stations, self.net.st_queue_limit
        return st.hold & st.up & (lim > 0) & (lim <= RING_CAP)

    def _refusals_known(self, t1: float) -> None:
        """At the end of the window [.., t1): book the refusals among the undecided
        requests at blocking servers that arrived before ``t1`` (less ``MARGIN_S``), and
        note the others as in their rooms."""
        st, net = self.stations, self.net
        exact = self._exact_rooms()
        room = []
        for lv in sorted(self._hold_levels):
            p = self.pending[lv]
            if not len(p):
                continue
            und = np.isinf(p.start) & ((p.flags & (FLAG_CHECK | FLAG_INTERNAL)) == 0)
            cand_mask = und & exact[p.st] & (p.arr < t1 - MARGIN_S)
            if not cand_mask.any():
                continue
            parts = [p.take(cand_mask)]
            where = [np.flatnonzero(cand_mask)]   # each candidate's place in ``p`` (-1: a check)
            late = self._late_checks.get(lv)   # health checks waiting there take places too
            if late is not None and len(late):
                parts.append(late.take(exact[late.st] & (late.arr < t1 - MARGIN_S)))
                where.append(np.full(len(parts[-1]), -1, dtype=np.int64))
            cand = Batch.concat(parts)
            order = np.lexsort((cand.key, cand.arr, cand.st))   # the admission's order (ties by key)
            cand, where = cand.take(order), np.concatenate(where)[order]
            refused = np.zeros(len(cand), dtype=np.bool_)
            args = (cand.st, cand.arr, st.ring.copy(), st.ring_off, st.ring_len, st.count.copy(), net.st_queue_limit,
                    st._timeout_ns, st.rate, refused)
            room_refusals(*args) if room_refusals.compiled else room_refusals.py(*args)
            user = (cand.flags & FLAG_CHECK) == 0
            room.append(cand.key[user & ~refused])
            if ((cand.flags & FLAG_FORGED) != 0).any():   # counted where admitted, in the second they arrived in
                inside = cand.take(user & ~refused)
                forged = self._forged_cookies(inside)
                if forged.any():
                    p.flags = p.flags.copy()
                    p.flags[where[user & ~refused][forged]] &= ~p.flags.dtype.type(FLAG_FORGED)
            full = cand.take(user & refused)
            if len(full):   # (by place, not by key: a live edit of a client's rate may repeat a key)
                keep = np.ones(len(p), dtype=bool)
                keep[where[user & refused]] = False
                self.pending[lv] = p.take(keep)
                if self._tracer is not None:
                    self._tracer.admitted(full, net, rejected=True)
                self._fail("queue_full", full.arr, full.key)
        self._room_keys = np.sort(np.concatenate(room)) if room else self._room_keys[:0]

    def _in_room(self, p: Batch) -> np.ndarray:
        """Which of ``p``'s requests are undecided and known to be in their rooms."""
        if not len(self._room_keys) or not len(p):
            return np.zeros(len(p), dtype=bool)
        return np.isinf(p.start) & np.isin(p.key, self._room_keys)

    def _room_open_from(self) -> float:
        """The first second a request in its room keeps open: the one ending now, if now is
        a whole second (whether it still waits then is decided after it); else none."""
        if not any(self._in_room(self.pending[lv]).any() for lv in self._hold_levels):
            return math.inf
        return math.ceil(self.now - 1.0 - MARGIN_S)

    def _snap_room(self, first: int, k: int) -> None:
        """The seconds first … first + k - 1 close: count the requests waiting in their rooms
        at their ends (``_queue_snap``; their marks pass only once, as these close)."""
        marks = [float(s) for s in range(first, first + k)]
        for lv in self._hold_levels:
            p = self.pending[lv]
            m = self._in_room(p)
            if m.any():
                self._snap_waiting(p.take(m), marks)
