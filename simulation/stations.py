"""Queueing stations: FIFO, ``c`` workers, a waiting room and a patience.

Admission is the Kiefer–Wolfowitz recursion in continuous time: a request
arriving at ``a`` is taken by the earliest free worker at
``start = max(free_w, a)`` and keeps it until ``start + service``. Because
the start and end of a FIFO request are fixed the moment it is admitted, a
batch of arrivals is processed in *rounds*: round ``j`` admits the ``j``-th
arrival of every station at once, so the Python loop runs over the deepest
per-station batch, never over requests or stations.

A request is rejected (queue full) when ``queue_limit`` admitted requests are
still waiting at its arrival; it gives up (timeout) when it would wait longer
than ``timeout_s``: it then stays in flight until ``a + timeout_s`` and fails.
"""
from __future__ import annotations

import heapq

import numpy as np

from .admission_kernel import admit_sequential, load_in_background
from .compiler import CACHE, DATABASE, SERVER, Network
from .flight import FLAG_CHECK, FLAG_DB_SESSION, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from .randomness import SERVICE, SESSION_READ, exponential

RING_CAP = 4096  # exact waiting-room accounting up to this many waiting requests per replica
# Ties (a wait exactly equal to the patience, a start exactly at an arrival) are common
# with deterministic service. The closed form and the rounds compute the same times up
# to rounding, so every comparison decides a tie the same way with this margin: the
# result never depends on which of the two admitted a request (i.e. on the windows).
TIE_S = 1e-7
# Admission works in whole nanoseconds (int64): sums of integers are exact in any
# order, so the closed form and the rounds give bit-identical times.
NS = 1e9
TIE_NS = int(TIE_S * NS)
NEVER_NS = np.int64(2**62)


def to_ns(seconds: np.ndarray) -> np.ndarray:
    """Times in s -> int64 ns (infinite -> NEVER_NS)."""
    seconds = np.asarray(seconds, dtype=float)
    return np.where(np.isfinite(seconds), np.rint(np.where(np.isfinite(seconds), seconds, 0.0) * NS),
                    float(NEVER_NS)).astype(np.int64)


def to_s(ns: np.ndarray) -> np.ndarray:
    return np.where(ns >= NEVER_NS, np.inf, ns / NS)

ADMITTED, QUEUE_FULL, DOWN = 0, 1, 2
SCALAR_PER_ROUND = 20   # below this many requests per round, admit one by one (same arithmetic, in Python ints)


class Stations:
    """Mutable state of all stations of a compiled network."""

    def __init__(self, net: Network, now: float) -> None:
        self.net = net
        n, c = net.n_stations, max(net.max_workers, 1)
        # A station serves when it is provisioned, booted and not failed. Only
        # autoscaled servers have slots that are not provisioned or still booting.
        self.provisioned = np.ones(n, dtype=bool)
        self.booted = np.ones(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self.registered = np.ones(n, dtype=bool)   # balancers and clients may send it requests
        self.ready_at = np.full(n, np.inf)
        for sc in net.scalers:
            self.provisioned[sc.first + sc.start:sc.end] = False
            self.booted[sc.first + sc.start:sc.end] = False
            self.registered[sc.first + sc.start:sc.end] = False
        self.up = self.provisioned & self.booted
        self.free = np.full((n, c), np.inf)
        self.worker_mask = np.arange(c)[None, :] < net.st_workers[:, None]
        self.free[self.worker_mask & self.up[:, None]] = now
        limit = net.st_queue_limit
        self.ring_len = np.minimum(limit, RING_CAP).astype(np.int64)
        self.ring_off = np.concatenate([[0], np.cumsum(self.ring_len)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        self.ring = np.full(int(self.ring_len.sum()), -np.inf)
        self.count = np.zeros(n, dtype=np.int64)
        self.is_store = (net.st_kind == DATABASE) | (net.st_kind == CACHE)
        self.rate = net.st_workers / net.st_mean_read if n else np.zeros(0)
        self.same_rw = net.st_mean_read == net.st_mean_write
        self.check_cost = np.array([b.check_cost_s for b in net.balancers] or [0.0])   # per balancer, s
        # blocking servers (blocking.py): a worker that took a user request stays held (free = +inf)
        # until its downstream answer returns; each admission lists (key, station, worker, end of service)
        self.hold = np.asarray(getattr(net, "st_blocking", np.zeros(n, dtype=bool)), dtype=bool)
        self.new_holds: list[tuple[np.ndarray, ...]] = []
        self.last: tuple[Batch, np.ndarray] | None = None   # (sorted batch, status) of the last admission
        self.compiled = True   # the compiled kernel admits one by one, once it is loaded (admission_kernel.py)
        load_in_background()
        self._timeout_ns = np.rint(net.st_timeout * NS).astype(np.int64)

    # ----- failures -----------------------------------------------------------------
    def refresh_up(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Recompute which stations serve; returns (went_down, came_up) station indices."""
        up = self.provisioned & self.booted & ~self.failed
        down = np.nonzero(self.up & ~up)[0]
        came = np.nonzero(~self.up & up)[0]
        self.up = up
        self.free[down] = np.inf
        if len(came):
            self.free[came] = np.where(self.worker_mask[came], now, np.inf)
            self.count[came] = 0
            for s in came.tolist():  # only when a station comes up, never in a tick
                a = self.ring_off[s]
                self.ring[a:a + self.ring_len[s]] = -np.inf
        return down, came

    # ----- admission ----------------------------------------------------------------
    def admit(self, batch: Batch, in_system: np.ndarray) -> tuple[Batch, Batch, Batch]:
        """Admit a batch of arrivals (any stations, any order within the window).

        ``in_system`` is the number of requests at each station when the window
        starts. Returns ``(admitted, rejected_full, rejected_down)``. Admitted
        requests carry their start and end times; those that will give up carry
        ``FLAG_TIMEOUT`` and end at their give-up time.
        """
        n = len(batch)
        if n == 0:
            e = Batch.empty()
            return e, e, e
        net = self.net
        arr0 = batch.arr
        in_order = n == 1 or not (arr0[1:] < arr0[:-1]).any()
        if in_order and batch.st.min() == batch.st.max():
            b = batch.take(slice(None))          # one station, already in time order (e.g. a load balancer)
        elif in_order:  # a stable (radix) sort by station keeps the time order
            b = batch.take(np.argsort(batch.st, kind="stable"))
        else:
            b = batch.take(np.lexsort((arr0, batch.st)))
        st = b.st
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        np.not_equal(st[1:], st[:-1], out=new_group[1:])
        group_start = np.nonzero(new_group)[0]
        group_of = np.cumsum(new_group) - 1
        rank = np.arange(n) - group_start[group_of]

        gst = st[group_start]
        if self.same_rw[gst].all():
            mean = net.st_mean_read[st]
        else:
            mean = np.where(b.cls == 1, net.st_mean_write[st], net.st_mean_read[st])
        det = net.st_deterministic[gst]
        if det.all():
            service = mean
        else:
            service = exponential(b.key, b.hop, SERVICE) * mean
            if det.any():
                service = np.where(net.st_deterministic[st], mean, service)
        if self.is_store[gst].any():
            extra = ((b.flags & FLAG_DB_SESSION) != 0) & self.is_store[st]
            if extra.any():
                b.flags = b.flags.copy()
                b.flags[extra] &= ~FLAG_DB_SESSION
                service = service.copy()
                service[extra] += exponential(b.key[extra], b.hop[extra], SESSION_READ) * net.st_mean_read[st[extra]]
        not_modified = ((b.flags & FLAG_NOT_MODIFIED) != 0) & (net.st_kind[st] == SERVER)
        if not_modified.any():   # a 304 costs a share of the work of a full answer
            service = np.where(not_modified, service * net.st_nm_cost[st], service)
        check = (b.flags & FLAG_CHECK) != 0
        if check.any():   # a health check: its balancer's check cost at a server, one request elsewhere
            cost = self.check_cost[np.where(check, b.item, 0)]
            service = np.where(check, np.where(net.st_kind[st] == SERVER, cost, mean), service)
        b.start = np.empty(n)
        b.fin = np.empty(n)
        status = np.zeros(n, dtype=np.int8)
        a_ns = to_ns(b.arr)
        service = np.maximum(np.rint(service * NS), 0).astype(np.int64)   # ns from here on

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
            if self.compiled and admit_sequential.compiled:   # one by one, compiled: cheaper than rounds
                self._one_by_one_compiled(b, idx, a_ns[idx], service[idx], status)
            elif len(idx) <= SCALAR_PER_ROUND * (int(rank[idx].max()) + 1):   # few requests, many rounds
                self._one_by_one(b, idx, a_ns[idx], service[idx], status)
            else:
                self._rounds(b, idx, a_ns[idx], rank[idx], service[idx], status)
        self.last = (b, status)
        if not status.any():
            e = Batch.empty()
            return b, e, e
        return b.take(status == ADMITTED), b.take(status == QUEUE_FULL), b.take(status == DOWN)

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

    def _one_by_one_compiled(self, b: Batch, idx: np.ndarray, a_ns: np.ndarray, service: np.ndarray,
                             status: np.ndarray) -> None:
        """``_one_by_one`` in the compiled kernel (admission_kernel.py): the same numbers."""
        net = self.net
        m = len(idx)
        start, fin = np.empty(m), np.empty(m)
        st_status = np.empty(m, dtype=np.int8)
        late = np.empty(m, dtype=np.int64)
        worker = np.empty(m, dtype=np.int64)
        st = b.st[idx]
        holds = admit_sequential(st, a_ns, b.arr[idx], service, ((b.flags[idx] & FLAG_CHECK) != 0).astype(np.int64),
                                 self.free, self.ring, self.ring_off, self.ring_len, self.count,
                                 self.up.astype(np.int64), net.st_queue_limit, net.st_timeout, self._timeout_ns,
                                 self.rate, self.hold.astype(np.int64), start, fin, st_status, late, worker)
        b.start[idx] = start
        b.fin[idx] = fin
        status[idx] = st_status
        if late.any():
            b.flags[idx[late != 0]] |= FLAG_TIMEOUT
        if holds:
            h = worker >= 0
            self.new_holds.append((b.key[idx[h]], st[h], worker[h], fin[h]))

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
            if late:
                late_i.append(i)
                done_i.append(i)
                starts.append(a_s + timeout_s)
                fins.append(a_s + timeout_s)
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
