"""The stations' admission in numpy (the path without numba, and until the kernels load).

Single-worker stations whose waiting room cannot overflow in the window are admitted in
closed form (Lindley's recursion as a running maximum over whole groups); the others in
*rounds* (round ``j`` admits the ``j``-th arrival of every station at once, so the Python
loop runs over the deepest per-station batch, never over requests or stations), or one
by one in Python when the rounds would be many and small. All in whole nanoseconds with
the same tie rules as the compiled path (admission_kernel.py): the same numbers.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from .admission_kernel import ADMITTED, DOWN, NEVER_NS, NS, QUEUE_FULL, RING_CAP, TIE_NS, TIE_S
from .flight import FLAG_CHECK, FLAG_TIMEOUT, Batch

if TYPE_CHECKING:
    from .compiler import Network

SCALAR_PER_ROUND = 20   # below this many requests per round, admit one by one (same arithmetic, in Python ints)


def to_ns(seconds: np.ndarray) -> np.ndarray:
    """Times in s -> int64 ns (infinite -> NEVER_NS)."""
    seconds = np.asarray(seconds, dtype=float)
    return np.where(np.isfinite(seconds), np.rint(np.where(np.isfinite(seconds), seconds, 0.0) * NS),
                    float(NEVER_NS)).astype(np.int64)


class NumpyAdmission:
    """The numpy admission of ``Stations`` (a mixin: it works on the stations' state)."""

    net: Network
    up: np.ndarray
    free: np.ndarray
    ring: np.ndarray
    ring_off: np.ndarray
    ring_len: np.ndarray
    count: np.ndarray
    hold: np.ndarray
    rate: np.ndarray
    new_holds: list[tuple[np.ndarray, ...]]

    def _admit_numpy(self, b: Batch, in_system: np.ndarray, service: np.ndarray, group_start: np.ndarray,
                     group_of: np.ndarray, rank: np.ndarray, status: np.ndarray) -> None:
        """Admit ``b`` (sorted by station, then arrival; ``service`` in ns): writes
        ``b.start``, ``b.fin``, ``status`` and FLAG_TIMEOUT into ``b.flags``."""
        net = self.net
        n = len(b)
        st = b.st
        gst = st[group_start]
        a_ns = to_ns(b.arr)
        # Single-worker stations whose waiting room cannot overflow in this window:
        # the whole batch in closed form (Lindley's recursion as a running maximum).
        sizes = np.diff(np.append(group_start, n))
        easy = (net.st_workers[gst] == 1) & self.up[gst] & (in_system[gst] + sizes <= net.st_queue_limit[gst]) \
            & ~self.hold[gst]
        if easy.all():
            bad = self._closed_form(b, None, a_ns, service, group_of, rank, sizes)
            rounds = bad if bad is not None else np.zeros(n, dtype=bool)
        else:
            rounds = ~easy[group_of]
            if easy.any():
                sel = np.nonzero(easy[group_of])[0]
                gsel = np.cumsum(rank[sel] == 0) - 1
                bad = self._closed_form(b, sel, a_ns[sel], service[sel], gsel, rank[sel], sizes[easy])
                if bad is not None:
                    rounds[sel[bad]] = True
        dead = rounds & ~self.up[st]
        if dead.any():   # a station that is down admits nothing: no need to take its arrivals one by one
            status[dead] = DOWN
            b.start[dead] = b.fin[dead] = b.arr[dead]
            rounds &= ~dead
        if rounds.any():
            idx = np.nonzero(rounds)[0]
            if len(idx) <= SCALAR_PER_ROUND * (int(rank[idx].max()) + 1):   # few requests, many rounds
                self._one_by_one(b, idx, a_ns[idx], service[idx], status)
            else:
                self._rounds(b, idx, a_ns[idx], rank[idx], service[idx], status)

    def _closed_form(self, b: Batch, sel: np.ndarray | None, a: np.ndarray, service: np.ndarray, gid: np.ndarray,
                     rank: np.ndarray, sizes: np.ndarray) -> np.ndarray | None:
        """FIFO single worker: D_k = max(D_{k-1}, a_k) + S_k for whole groups at once.

        ``sel`` picks the requests (None: all of ``b``), ``a`` and ``service`` are their
        arrivals and service times in ns, ``gid`` numbers their groups 0.., ``sizes``
        gives each group's size. Commits the groups without violations and returns a
        mask (over the selection) of the requests whose group broke the patience or a
        zero waiting room, or None."""
        net = self.net
        s = b.st if sel is None else b.st[sel]
        first = rank == 0
        heads = np.nonzero(first)[0]
        gst = s[heads]                                                    # station of each group
        csum = np.cumsum(service)
        c_incl = csum - np.repeat(csum[heads] - service[heads], sizes)    # C_k within the group
        x = a - (c_incl - service)                                        # a_k - C_{k-1}
        g_free = to_ns(self.free[gst, 0])
        # groups are kept apart by an offset larger than any value inside a group (exact in int64)
        base = min(int(x.min()), int(g_free.min()))
        span = max(int(x.max()), int(g_free.max())) - base + 1
        if span * (len(heads) + 1) >= 2**62:
            return np.ones(len(s), dtype=bool)                            # (never in practice) the rounds do it
        offset = np.repeat(np.arange(len(heads), dtype=np.int64) * span, sizes)
        m = np.maximum(np.maximum.accumulate(x - base + offset) - offset + base, np.repeat(g_free, sizes))
        fin = m + c_incl
        start = fin - service
        wait = start - a
        g_wait = np.maximum.reduceat(wait, heads)                         # longest wait per group
        timeout = np.rint(net.st_timeout[gst] * NS).astype(np.int64)
        g_bad = (g_wait > timeout + TIE_NS) | ((net.st_queue_limit[gst] == 0) & (g_wait > TIE_NS))
        bad = None
        good = slice(None)
        if g_bad.any():
            bad = np.repeat(g_bad, sizes)
            good = ~bad
            if bad.all():
                return bad
        start_s, fin_s = start / NS, fin / NS
        if sel is None and bad is None:
            b.start, b.fin = start_s, fin_s
        else:
            target = np.arange(len(b)) if sel is None else sel
            b.start[target[good]] = start_s[good]
            b.fin[target[good]] = fin_s[good]
        tails = np.append(heads[1:], len(s)) - 1
        g_ok = ~g_bad
        self.free[gst[g_ok], 0] = fin_s[tails[g_ok]]
        # the ring keeps the starts of the last ring_len requests of each station
        g_rlen = self.ring_len[gst]
        g_keep = g_ok & (g_rlen > 0)
        if g_keep.any():
            from_rank = np.maximum(sizes - g_rlen, 0)
            keep = np.repeat(g_keep, sizes) & (rank >= np.repeat(from_rank, sizes))
            gi = gid[keep]
            self.ring[self.ring_off[gst][gi] + (self.count[gst][gi] + rank[keep]) % g_rlen[gi]] = start_s[keep]
        self.count[gst[g_ok]] += sizes[g_ok]
        return bad

    def _rounds(self, b: Batch, idx_all: np.ndarray, a_all: np.ndarray, rank: np.ndarray, service: np.ndarray,
                status: np.ndarray) -> None:
        """General case: round j admits the j-th arrival of every station (times in ns)."""
        net = self.net
        ranks = np.unique(rank)
        by_rank = np.argsort(rank, kind="stable")
        sorted_rank = rank[by_rank]
        bounds = np.searchsorted(sorted_rank, np.append(ranks, ranks[-1] + 1))
        for j in range(len(ranks)):
            local = by_rank[bounds[j]:bounds[j + 1]]
            idx = idx_all[local]
            s = b.st[idx]
            a = a_all[local]
            a_s = b.arr[idx]
            alive = self.up[s]
            fr = self.free[s]
            w = fr.argmin(axis=1)
            f = to_ns(fr[np.arange(len(s)), w])
            t0 = np.maximum(f, a)
            limit = net.st_queue_limit[s]
            rlen = self.ring_len[s]
            cnt = self.count[s]
            slot = self.ring_off[s] + np.where(rlen > 0, cnt % np.maximum(rlen, 1), 0)
            if len(self.ring):
                oldest = np.where(rlen > 0, self.ring[np.minimum(slot, len(self.ring) - 1)], np.inf)
            else:
                oldest = np.full(len(s), np.inf)
            full = np.where(limit == 0, t0 > a + TIE_NS, (cnt >= rlen) & (oldest > a_s + TIE_S))
            big = limit > RING_CAP
            if big.any():  # beyond the ring: estimate the waiting line from the wait itself
                full = np.where(big, (t0 - a) / NS * self.rate[s] >= limit, full)
            late = (t0 - a) > np.rint(net.st_timeout[s] * NS).astype(np.int64) + TIE_NS
            ok = alive & ~full & ~late
            give_up = alive & ~full & late
            status[idx] = np.where(alive, np.where(full, QUEUE_FULL, ADMITTED), DOWN)
            t0_s = t0 / NS
            t1_s = (t0 + service[local]) / NS
            patience = a_s + net.st_timeout[s]
            b.start[idx] = np.where(give_up, patience, t0_s)
            b.fin[idx] = np.where(give_up, patience, t1_s)
            if give_up.any():
                b.flags[idx[give_up]] |= FLAG_TIMEOUT
                # it keeps its place in the waiting room until it gives up (admit_one)
                sg = s[give_up]
                g_ring = rlen[give_up] > 0
                if g_ring.any():
                    give_up_ns = a[give_up] + np.rint(net.st_timeout[sg] * NS).astype(np.int64)
                    self.ring[slot[give_up][g_ring]] = give_up_ns[g_ring] / NS
                self.count[sg] += 1
            if ok.any():
                so, wo = s[ok], w[ok]
                held = self.hold[so] & ((b.flags[idx[ok]] & FLAG_CHECK) == 0)
                self.free[so, wo] = np.where(held, np.inf, t1_s[ok])
                if held.any():
                    self.new_holds.append((b.key[idx[ok]][held], so[held], wo[held], t1_s[ok][held]))
                has_ring = rlen[ok] > 0
                if has_ring.any():
                    self.ring[slot[ok][has_ring]] = t0_s[ok][has_ring]
                self.count[so] += 1

    def _one_by_one(self, b: Batch, idx: np.ndarray, a_ns: np.ndarray, service: np.ndarray,
                    status: np.ndarray) -> None:
        """The rounds' arithmetic, request by request (``idx`` is in station, arrival order):
        the same integer nanoseconds and tie rules, without numpy's per-call cost. A station's
        constants, workers and count are read once into Python objects and written back at
        the end. The workers are a heap of (free time, worker index): its top is the first
        worker with the earliest free time, as ``argmin`` picks (``int(round(x))`` is
        ``int(np.rint(x))``: both round half to even)."""
        net = self.net
        n_ring = len(self.ring)
        never = int(NEVER_NS)
        inf = np.inf
        ring = self.ring
        sts, arr_s, flags = b.st[idx].tolist(), b.arr[idx].tolist(), b.flags[idx].tolist()
        stations: dict[int, tuple] = {}     # s -> (up, limit, rlen, ring_off, timeout_s, timeout_ns, rate, hold)
        heaps: dict[int, list[tuple[float, int]]] = {}   # s -> (free time in s, worker), a heap
        counts: dict[int, int] = {}
        done_i: list[int] = []
        starts: list[float] = []
        fins: list[float] = []
        full_i: list[int] = []
        down_i: list[int] = []
        late_i: list[int] = []
        for k, (i, s, a, a_s, svc) in enumerate(zip(idx.tolist(), sts, a_ns.tolist(), arr_s, service.tolist())):
            const = stations.get(s)
            if const is None:
                timeout_s = float(net.st_timeout[s])
                const = stations[s] = (bool(self.up[s]), int(net.st_queue_limit[s]), int(self.ring_len[s]),
                                       int(self.ring_off[s]), timeout_s, int(round(timeout_s * NS)),
                                       float(self.rate[s]), bool(self.hold[s]))
                heap = [(f, w) for w, f in enumerate(self.free[s].tolist())]
                heapq.heapify(heap)
                heaps[s] = heap
                counts[s] = int(self.count[s])
            up, limit, rlen, ring_off, timeout_s, timeout_ns, rate, hold = const
            if not up:
                down_i.append(i)
                done_i.append(i)
                starts.append(a_s)
                fins.append(a_s)
                continue
            heap = heaps[s]
            free, w = heap[0]
            f = int(round(free * NS)) if free != inf else never
            t0 = max(f, a)
            cnt = counts[s]
            slot = ring_off + (cnt % rlen if rlen > 0 else 0)
            oldest = float(ring[min(slot, n_ring - 1)]) if rlen > 0 and n_ring else inf
            full = (t0 > a + TIE_NS) if limit == 0 else (cnt >= rlen and oldest > a_s + TIE_S)
            if limit > RING_CAP:
                full = (t0 - a) / NS * rate >= limit
            late = (t0 - a) > timeout_ns + TIE_NS
            if full:
                full_i.append(i)
                done_i.append(i)
                starts.append(t0 / NS)
                fins.append((t0 + svc) / NS)
                continue
            if late:   # it keeps its place in the waiting room until it gives up
                late_i.append(i)
                done_i.append(i)
                starts.append(a_s + timeout_s)
                fins.append(a_s + timeout_s)
                if rlen > 0:
                    ring[slot] = (a + timeout_ns) / NS
                counts[s] = cnt + 1
                continue
            t0_s, t1_s = t0 / NS, (t0 + svc) / NS
            done_i.append(i)
            starts.append(t0_s)
            fins.append(t1_s)
            held = hold and not (flags[k] & FLAG_CHECK)
            heapq.heapreplace(heap, (inf if held else t1_s, w))
            if held:
                self.new_holds.append((b.key[i:i + 1].copy(), np.array([s]), np.array([w]), np.array([t1_s])))
            if rlen > 0:
                ring[slot] = t0_s
            counts[s] = cnt + 1
        for s, heap in heaps.items():
            row = [inf] * len(heap)
            for f, w in heap:
                row[w] = f
            self.free[s] = row
            self.count[s] = counts[s]
        if done_i:
            b.start[done_i] = starts
            b.fin[done_i] = fins
        if full_i:
            status[full_i] = QUEUE_FULL
        if down_i:
            status[down_i] = DOWN
        if late_i:
            b.flags[late_i] |= FLAG_TIMEOUT
