"""The table of held workers of blocking servers, and when they can be released.

A part of :class:`simulation.blocking.Blocking` (see there): each worker a blocking
server holds is listed with its request's key, and freed when that request leaves the
network (answered, failed, or its station failed). The sweeps need, for each worker
still held, a lower bound of its release (``_known_releases``).
"""
from __future__ import annotations

import numpy as np

from .compiler import CACHE, LB, SERVER
from .flight import FLAG_CHECK, FLAG_INTERNAL, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from .stations import ADMITTED, QUEUE_FULL, RING_CAP


class HeldWorkers:
    def _forget_bounds(self) -> None:
        """Some request in flight no longer holds its worker: the bound of
        ``_sure_next_stations`` no longer holds, for the rest of the run."""
        self._next_sure[:] = -1

    def _add_holds(self) -> None:
        nh = self.stations.new_holds
        if not nh:
            return
        self.stations.new_holds = []
        fin = np.concatenate([h[3] for h in nh])
        self._h_key = np.concatenate([self._h_key] + [h[0] for h in nh])
        self._h_st = np.concatenate([self._h_st] + [h[1] for h in nh])
        self._h_w = np.concatenate([self._h_w] + [h[2] for h in nh])
        self._h_from = np.concatenate([self._h_from, fin])
        self._h_booked = np.concatenate([self._h_booked, fin])

    def _free_held(self, idx: np.ndarray, t: np.ndarray) -> None:
        """Free the workers of entries ``idx`` at times ``t`` (booking their held time)."""
        if not len(idx):
            return
        s, w = self._h_st[idx], self._h_w[idx]
        t = np.maximum(t, self._h_from[idx])
        up = self.stations.up[s] & np.isinf(self.stations.free[s, w])
        self.stations.free[s[up], w[up]] = t[up]
        lo = self._h_booked[idx]
        if len(t) and (t > lo).any():
            self.ledger.book_busy(s, lo, t, float(lo.min()), float(t.max()))
        back = t < lo   # held time booked up to a window's end that its request left before
        if back.any():  # (refused downstream at its arrival, decided after the window: blocking_rooms.py)
            self.ledger.book_busy(s[back], t[back], lo[back], float(t[back].min()), float(lo[back].max()), sign=-1)
        keep = np.ones(len(self._h_key), dtype=bool)
        keep[idx] = False
        for name in ("_h_key", "_h_st", "_h_w", "_h_from", "_h_booked"):
            setattr(self, name, getattr(self, name)[keep])

    def _release(self, keys: np.ndarray, times: np.ndarray) -> None:
        """Requests leaving the network (answered or failed) at ``times`` free their workers."""
        if self._ev_expect is not None:   # an event window booked them already (blocking_window.py)
            self._check_release(keys, times)
        if not len(self._h_key) or not len(keys):
            return
        hit = np.nonzero(np.isin(self._h_key, keys))[0]
        if not len(hit):
            return
        order = np.argsort(keys, kind="stable")
        i = np.searchsorted(keys[order], self._h_key[hit])
        self._free_held(hit, np.asarray(times, dtype=float)[order][i])

    def _drop_holds(self, stations: np.ndarray) -> None:
        """Stations that went down lose their held workers (their requests go on)."""
        if len(self._h_key) and len(stations):
            gone = np.nonzero(np.isin(self._h_st, stations))[0]
            if len(gone):
                self._forget_bounds()
            self._free_held(gone, np.full(len(gone), self.now))

    def _held_count(self, tau: float) -> np.ndarray:
        """Workers held at each station at ``tau`` beyond their own service (connections)."""
        past = self._h_from <= tau
        return np.bincount(self._h_st[past], minlength=self.net.n_stations)

    def _known_releases(self, t1: float, in_hand: Batch | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Free the workers whose request will surely leave before ``t1`` at that time (at
        its last station, or giving up); return (station, worker, lower bound) of the others.
        ``in_hand``: the requests a sweep took out of the level it admits (neither pending nor
        in the inbox now). Behind a second tier of blocking servers they hold workers of the
        first: without them, those workers counted as lost and were freed at once."""
        keys, lbs, sure = [], [], []
        for lv in range(self._lb, len(self.net.levels)):
            parts = [(self.pending[lv], True)] + [(b, False) for b in self._cur_inbox[lv]]
            if in_hand is not None and lv == self._lb:   # taken out of their level, not admitted there yet
                parts.append((in_hand, False))
            for p, admitted in parts:
                if not len(p):
                    continue
                user = (p.flags & (FLAG_CHECK | FLAG_INTERNAL)) == 0
                keys.append(p.key[user])
                if admitted:
                    fin = p.fin[user]
                    lbs.append(self._later_bound(p, user, fin))
                    ends = (self._terminal[p.st[user]] & ~self._join_waits(p.key[user])) \
                        | ((p.flags[user] & FLAG_TIMEOUT) != 0)   # a join's first database: not its last
                    if self._w_sure.any():   # waiting undecided (start = +inf): _note_waiting may know
                        wait = np.isinf(fin)
                        ends[wait] = self._wait_bound(p.key[user][wait], p.arr[user][wait])[1]
                    sure.append(ends & (lbs[-1] < t1))
                else:
                    lb, gone = self._wait_bound(p.key[user], p.arr[user])
                    lbs.append(lb)
                    sure.append(gone & (lb < t1))
        n = len(self._h_key)
        if not n:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        k = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
        order = np.argsort(k, kind="stable")
        k = k[order]
        lb = np.concatenate(lbs)[order] if lbs else np.zeros(0)
        su = np.concatenate(sure)[order] if sure else np.zeros(0, dtype=bool)
        i = np.minimum(np.searchsorted(k, self._h_key), max(len(k) - 1, 0))
        found = (k[i] == self._h_key) if len(k) else np.zeros(n, dtype=bool)
        lost = np.nonzero(~found)[0]
        certain = np.nonzero(found & su[i])[0] if len(k) else np.zeros(0, dtype=np.int64)
        if len(lost):   # never expected: every request that leaves releases its worker
            self._held_lost += len(lost)
            self._forget_bounds()
        done = np.concatenate([certain, lost])
        self._free_held(done, np.concatenate([lb[i[certain]], self._h_booked[lost]]))
        if not len(self._h_key):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        i = np.minimum(np.searchsorted(k, self._h_key), len(k) - 1)
        return self._h_st, self._h_w, self._release_floor(np.maximum(lb[i], self.now), t1)

    def _wait_bound(self, keys: np.ndarray, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For requests not yet admitted at their station (arrived at ``arr``): a lower bound
        of when they leave the network (their arrival: they may be refused there, or what
        ``_note_waiting`` found), and whether they surely leave then."""
        lb = np.array(arr, dtype=float)
        sure = np.zeros(len(lb), dtype=bool)
        k = self._w_key
        if len(k) and len(keys):
            i = np.minimum(np.searchsorted(k, keys), len(k) - 1)
            hit = k[i] == keys
            lb[hit] = np.maximum(lb[hit], self._w_lb[i[hit]])
            sure[hit] = self._w_sure[i[hit]]
        return lb, sure

    def _note_waiting(self, cand: Batch, undecided: np.ndarray, bo: Batch, so: np.ndarray, sp: np.ndarray,
                      first: np.ndarray, low_at: np.ndarray) -> None:
        """What the sweep's trials tell of the requests it leaves undecided at blocking
        stations (``cand`` in the trials' order; ``so``/``sp``: their statuses in the
        optimistic/pessimistic trial; ``first``: per station, the position of the first
        request where the trials differ; ``low_at``: per station, no request from it on
        starts sooner, ``_first_start``). Behind a second tier of blocking servers these
        requests hold workers of the first tier, whose admission needs their release: with
        only their arrival as its bound, the first tier's horizon waited on the second's and
        the second's on the first's (the sweeps crept one nanosecond at a time).

        Before ``first`` the trials are the truth (left undecided only as they arrive past
        the horizon): a refusal or give-up is sure, a start a bound. From ``first`` on, a
        request that arrives before ``low_at`` and before the first one's give-up arrives
        while none of those from ``first`` on has left the waiting room: the room then holds
        what both trials count, so where they agree it is refused (surely, at its arrival)
        or admitted (it leaves no sooner than ``low_at``, or its give-up). The others may be
        refused at their arrival. All of this stays true as the bounds of releases rise."""
        idx = np.flatnonzero(undecided)
        s = cand.st[idx]
        a = cand.arr[idx]
        lb = a.copy()
        sure = np.zeros(len(idx), dtype=bool)
        o, p = so[idx], sp[idx]
        gave_up = (bo.flags[idx] & FLAG_TIMEOUT) != 0
        exact = idx < first[s]
        adm = o == ADMITTED
        lb[exact & adm] = np.where(gave_up, bo.fin[idx], bo.start[idx])[exact & adm]
        sure[exact] = (o[exact] == QUEUE_FULL) | (adm[exact] & gave_up[exact])
        j = np.minimum(first[s], len(cand) - 1)
        T = self.net.st_timeout[s]
        room = ~exact & (a < low_at[s]) & (a < cand.arr[j] + T) & (o == p)
        lb[room & adm] = np.minimum(np.maximum(a, low_at[s]), a + T)[room & adm]
        sure[room & (o == QUEUE_FULL)] = True
        keep = ~np.isin(self._w_key, cand.key)
        key = np.concatenate([self._w_key[keep], cand.key[idx]])
        order = np.argsort(key, kind="stable")
        self._w_key = key[order]
        self._w_lb = np.concatenate([self._w_lb[keep], lb])[order]
        self._w_sure = np.concatenate([self._w_sure[keep], sure])[order]

    def _release_floor(self, lb: np.ndarray, t1: float) -> np.ndarray:
        """Lower bounds of releases never beyond the window's end ``t1``: what happens there (a
        scheduled failure, or one a user clicks between two windows) can lose a request still
        in flight and free its worker at ``t1``, before the end its station has planned. A
        bound beyond ``t1`` let the sweeps commit give-ups and refusals that such a failure
        prevents (tests/simulation/test_blocking_reference.py)."""
        return np.minimum(lb, t1)

    def _later_bound(self, p: Batch, user: np.ndarray, fin: np.ndarray) -> np.ndarray:
        """A lower bound of when admitted requests leave the network: their end here (waiting
        undecided: ``_wait_bound``); for those whose only next station T cannot refuse them
        (``_sure_next_stations``), the earlier of their patience there and the moment a
        connection of T is free (FIFO: everyone already admitted at T goes first), less a
        microsecond for the rounding to whole nanoseconds. A bound that is higher lets a
        sweep commit more of the blocking servers' admissions at once; it never changes
        what is committed (the optimistic and pessimistic trials must still agree)."""
        lb = fin.copy()
        wait = np.isinf(fin)
        if wait.any():   # waiting undecided at a blocking server (start = +inf)
            lb[wait] = self._wait_bound(p.key[user][wait], p.arr[user][wait])[0]
        nxt = self._next_sure[p.st[user]]
        ok = (nxt >= 0) & np.isfinite(fin) & ((p.flags[user] & (FLAG_TIMEOUT | FLAG_NOT_MODIFIED)) == 0)
        if ok.any():
            t = nxt[ok]
            ok_t = self.stations.up[t]
            f = fin[ok]
            free = self.stations.free[t].min(axis=1)
            bound = np.minimum(f + self.net.st_timeout[t], np.maximum(f, free)) - 1e-6
            lb[np.nonzero(ok)[0][ok_t]] = np.maximum(f, bound)[ok_t]
        return lb



def _sure_next_stations(sim) -> np.ndarray:
    """Per station, the one station T its finished requests all go to next when T cannot
    refuse them, else -1. T: the last station of a request (not a balancer, cache or
    blocking server), with a waiting room counted exactly (0 < queue limit ≤ RING_CAP),
    fed only by blocking servers (no client, balancer or other station sends to it) whose
    workers together are at most T's waiting room. Each request at T then holds one of
    those workers (from its admission there until it leaves the network), so fewer than
    that many others are ever at T: T is never full. Not with autoscaling, replicated,
    sharded or partitioned databases, or joins (their targets change or multiply)."""
    net, st = sim.net, sim.stations
    n = net.n_stations
    out = np.full(n, -1, dtype=np.int64)
    if sim.scalers or sim._replicated or sim._sharded or sim._parts is not None or sim._joins_on:
        return out
    rows = np.repeat(np.arange(n), np.diff(net.route_ptr))
    feeders_of: dict[int, set[int]] = {}
    for src, dst in zip(rows.tolist(), net.route_target.tolist()):
        feeders_of.setdefault(dst, set()).add(src)
    fed_otherwise = np.zeros(n, dtype=bool)
    for b in net.balancers:
        fed_otherwise[b.backends] = True
    for c in net.clients:
        for node in c.entries:
            fed_otherwise[net.node_stations[node]] = True
    limit = net.st_queue_limit
    for t, feeders in feeders_of.items():
        f = np.fromiter(feeders, dtype=np.int64)
        if (not sim._terminal[t] or st.hold[t] or fed_otherwise[t] or net.st_kind[t] in (LB, CACHE)
                or not 0 < limit[t] <= RING_CAP or not (st.hold[f] & (net.st_kind[f] == SERVER)).all()
                or int(net.st_workers[f].sum()) > int(st.ring_len[t])):
            continue
        single = [s for s in feeders if net.route_ptr[s + 1] - net.route_ptr[s] == 1]
        out[single] = t
    return out
