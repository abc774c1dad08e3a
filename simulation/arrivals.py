"""Client arrivals: Poisson processes in time order, browser caches (Cache-Control,
ETag), entry nodes and replicas; the window's health checks (``health.py``).

Entry nodes: ``round_robin`` is DNS round robin, a uniform share per entry
whether it is up or not (no health-checked DNS: a dead entry's share fails
until it recovers); ``failover`` sends everything to the active entry of a
redundant pair, which changes only as VRRP detects it (``redundancy.py``).

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import math

import numpy as np

from .arrival_blocks import FAST, ClientStream, block_grid, reference_block
from .flight import Batch, FLAG_FORGED, FLAG_NOT_MODIFIED
from .health import CheckArrivals
from .page_views import stale_share
from .randomness import block_generator, BROWSER, BROWSER_STALE, ENTRY, FORGE, NOT_MODIFIED, REPLICA, mix64, uniform
from .redundancy import EntryFailover

_EDIT_SALT = np.uint64(0x2545F4914F6CDD1D)   # keys of a client's arrivals after a live edit

FAST_ARRIVALS = FAST   # whole windows of seconds at once; False: second by second (the same numbers)


class Arrivals(CheckArrivals, EntryFailover):
    def _generate(self, t0: float, t1: float, inbox: list[list[Batch]]) -> None:
        net = self.net
        self._queue_checks(t0, t1)
        for c in net.clients:
            if not c.entries or c.rate_rps <= 0 or c.node_id in self._clients_down:
                continue
            got = self._window_arrivals(c, t0, t1)
            if got is None:
                continue
            times, users, cls, keys, flags, items, browser = got
            if browser is not None and browser.any():   # answered by the browser's cache: never sent
                self._count("browser_hits", times[browser])
                self._count_stale_views(c, times[browser], keys[browser], items[browser])
                keep = ~browser
                times, users, cls, keys, flags, items = (a[keep] for a in (times, users, cls, keys, flags, items))
                if not len(times):
                    continue
            n = len(times)
            entry_nodes = np.asarray(c.entries)
            one = None   # the entry node of all of them, if there is one
            if c.failover:   # the active of the pair, dead or not (takeovers bound the windows)
                one = self._active_entry(c)
            elif len(entry_nodes) == 1:
                one = int(entry_nodes[0])
            if one is not None:
                first = int(self._node_first[one])
                st = self._pick_replica(np.full(n, one), keys) if self._node_count[one] != 1 else np.full(n, first)
                edge = np.full(n, self._node_edge[c.node_index, np.array([one])][0])
            else:
                node = entry_nodes[np.minimum((uniform(keys, 0, ENTRY) * len(entry_nodes)).astype(np.int64),
                                              len(entry_nodes) - 1)]
                st = self._pick_replica(node, keys)
                edge = self._node_edge[c.node_index, node]
            st = self._registered_only(st, keys, 0)
            self.arrived += n
            self.ledger.book_offered(times)
            self.ledger.book_edges(edge, times)
            self._deliver(Batch(st=st, birth=times, arr=times, cls=cls, user=users, key=keys, flags=flags,
                                item=items), inbox)
    def _window_arrivals(self, c, t0: float, t1: float) -> tuple[np.ndarray, ...] | None:
        """Client ``c``'s (times, users, cls, keys, flags, items, browser) in [t0, t1), or None:
        whole seconds generated together (arrival_blocks.py), the last one kept for the next
        window. ``browser`` is None where no browser caches."""
        if not FAST_ARRIVALS or c.users > 2**32:   # (users ≤ 10⁷ in a file: the Lemire words are 32-bit)
            return self._window_arrivals_plain(c, t0, t1)
        b0, b1 = math.floor(t0), math.ceil(t1)
        st = self._blocks.get((c.node_id, "stream"))
        if st is None or st.c is not c:   # (a live edit builds new clients, and _setup empties _blocks)
            st = self._blocks[(c.node_id, "stream")] = ClientStream(self.seed, c, self.tick_s, self._cdf.get(c.node_id))
        groups = []   # (arrays, times in order)
        if st.last is not None and st.last[0] == b0:
            groups.append(st.last[1:])
            b0 += 1
        if b0 < b1:
            groups.append(self._new_blocks(st, c, b0, b1))
        parts = []
        for g, in_order in groups:
            t = g[0]
            if in_order or b1 - math.floor(t0) == 1:   # one second: bisection, as it always was
                i, j = np.searchsorted(t, (t0, t1))
                parts.append(g if i == 0 and j == len(t) else tuple(None if a is None else a[i:j] for a in g))
            else:   # several: the requests in [t0, t1), in order or not
                sel = (t >= t0) & (t < t1)
                parts.append(g if sel.all() else tuple(None if a is None else a[sel] for a in g))
        n = sum(len(p[0]) for p in parts)
        if not n:
            return None
        out = []
        for k, zero in enumerate((None, None, None, None, np.int8, np.int64, None)):
            cols = [p[k] for p in parts]
            if all(a is None for a in cols):   # all 0 / False: made at the end, not carried along
                out.append(np.zeros(n, dtype=zero) if zero is not None else None)
            else:
                cols = [a if a is not None else np.zeros(len(p[0]), dtype=zero or bool) for a, p in zip(cols, parts)]
                out.append(cols[0] if len(cols) == 1 else np.concatenate(cols))
        return tuple(out)

    def _edited_keys(self, c, keys: np.ndarray) -> np.ndarray:
        """The request keys of a client whose arrivals a live edit changed (its rate, pattern,
        users, …): mixed with the edit's number. A second regenerated with other parameters
        draws its keys from the same words as before, shifted: without the mix, requests
        after the edit repeated the keys of requests before it in that second (82 of 1,880
        in three seconds after a rate edit of a ramp), and whatever follows a request by
        its key (held workers, traces, sessions) confused the two."""
        salt = getattr(self, "_key_salts", {}).get(c.node_id, 0)
        if not salt or not len(keys):
            return keys
        with np.errstate(over="ignore"):
            return mix64(keys ^ (np.uint64(salt) * _EDIT_SALT))

    def _new_blocks(self, st: ClientStream, c, b0: int, b1: int) -> tuple[tuple, bool]:
        """Seconds [b0, b1) of ``c``, with forged flags and browser caches (None: all 0/False),
        and whether their times are in order; keeps the last second for the next window."""
        (times, users, cls, keys, items), start, in_order = st.blocks(b0, b1)
        keys = self._edited_keys(c, keys)
        flags = None
        if c.forged_share > 0 or c.max_age_s > 0 or c.etag:
            flags = np.zeros(len(times), dtype=np.int8)
        if c.forged_share > 0:
            flags[uniform(keys, 0, FORGE) < c.forged_share] = FLAG_FORGED
        browser = None
        if c.max_age_s > 0 or c.etag:   # second by second, on the same arrays as ever
            s = start.tolist()
            items = items if items is not None else np.zeros(len(times), dtype=np.int64)
            browser = np.concatenate([self._browser_cache(c, times[a:b], cls[a:b], keys[a:b], items[a:b], flags[a:b])
                                      for a, b in zip(s[:-1], s[1:])])
        out = (times, users, cls, keys, flags, items, browser)
        a = start[-2]
        st.last = (b1 - 1, tuple(None if x is None else x[a:] for x in out), in_order)
        return out, in_order

    def _window_arrivals_plain(self, c, t0: float, t1: float) -> tuple[np.ndarray, ...] | None:
        """:meth:`_window_arrivals` second by second (the reference; big-endian machines)."""
        blocks = range(math.floor(t0), math.ceil(t1))
        if len(blocks) == 1:
            bt, bu, bc, bk, bf, bi, bb = self._client_block(c, blocks[0])
            i, j = np.searchsorted(bt, (t0, t1))
            if i == j:
                return None
            return bt[i:j], bu[i:j], bc[i:j], bk[i:j], bf[i:j], bi[i:j], bb[i:j]
        parts = [self._client_block(c, blk) for blk in blocks]
        times = np.concatenate([p[0] for p in parts])
        sel = (times >= t0) & (times < t1)
        if not sel.any():
            return None
        whole = bool(sel.all())
        return tuple(np.concatenate([p[f] for p in parts]) if whole else np.concatenate([p[f] for p in parts])[sel]
                     for f in range(7))

    def _client_block(self, c, block: int) -> tuple[np.ndarray, ...]:
        """One client's arrivals in the simulated second ``block`` (cached), the plain way: a
        Poisson process whose rate follows the pattern tick by tick; users, reads/writes, keys."""
        cache = self._blocks.get(c.node_id)
        if cache is not None and cache[0] == block:
            return cache[1]
        # A Poisson process with a piecewise-constant rate, in time order without a sort:
        # N ~ Poisson(Λ); sorted uniforms on [0, Λ) as normalised sums of exponentials;
        # mapped through the inverse of the cumulative rate. Items matter only where
        # something caches them.
        cum, edges = block_grid(block, self.tick_s, c.rate_rps, c.pattern)
        times, users, cls, keys, items = reference_block(block_generator(self.seed, c.stream, block), c, cum, edges,
                                                         self._cdf.get(c.node_id))
        keys = self._edited_keys(c, keys)
        flags = np.zeros(len(times), dtype=np.int8)
        if c.forged_share > 0:
            flags[uniform(keys, 0, FORGE) < c.forged_share] = FLAG_FORGED
        browser = self._browser_cache(c, times, cls, keys, items, flags)
        out = (times, users, cls, keys, flags, items, browser)
        self._blocks[c.node_id] = (block, out)
        return out
    def _browser_cache(self, c, times: np.ndarray, cls: np.ndarray, keys: np.ndarray, items: np.ndarray,
                       flags: np.ndarray) -> np.ndarray:
        """Which reads the browser answers itself (fresh copy, Cache-Control max-age), and
        which are sent as conditional requests that will get 304 Not Modified (ETag).

        Per user and item, reads come at rate r and writes (by anyone) at rate w. After a
        fetch the copy is fresh for M = max-age, so a share rM / (1 + rM) of the reads are
        browser hits once the user has fetched the item at all (probability 1 − e^{−rt}).
        An expired copy is revalidated; it is unchanged with probability e^{−wM} r / (r + w)."""
        n = len(times)
        browser = np.zeros(n, dtype=bool)
        if c.max_age_s <= 0 and not c.etag:
            return browser
        pmf = np.diff(np.r_[0.0, self._cdf[c.node_id]])[items]
        reads = cls == 0
        r = c.rate_rps * c.read_ratio / c.users * pmf
        w = c.rate_rps * (1.0 - c.read_ratio) * pmf
        m = c.max_age_s
        has_copy = -np.expm1(-r * times)
        fresh = has_copy * (r * m / (1.0 + r * m))
        browser = reads & (uniform(keys, 0, BROWSER) < fresh)
        if c.etag:
            with np.errstate(invalid="ignore", divide="ignore"):
                stale_copy = np.where(fresh < 1, (has_copy - fresh) / np.maximum(1.0 - fresh, 1e-12), 0.0)
                unchanged = np.exp(-w * m) * np.where(r + w > 0, r / np.maximum(r + w, 1e-300), 0.0)
            nm = reads & ~browser & (uniform(keys, 0, NOT_MODIFIED) < stale_copy * unchanged)
            flags[nm] |= FLAG_NOT_MODIFIED
        return browser
    def _count_stale_views(self, c, times: np.ndarray, keys: np.ndarray, items: np.ndarray) -> None:
        """Browser hits that show a copy the server has changed since (page_views.py): the item,
        written at rate w, was written during the copy's age, uniform on [0, max-age]."""
        pmf = np.diff(np.r_[0.0, self._cdf[c.node_id]])[items]
        w = c.rate_rps * (1.0 - c.read_ratio) * pmf
        stale = uniform(keys, 0, BROWSER_STALE) < stale_share(w, c.max_age_s)
        self._count("stale_page_views", times[stale])
    def _pick_replica(self, node: np.ndarray, keys: np.ndarray, hops: np.ndarray | int = 0) -> np.ndarray:
        first, count = self._node_first, self._node_count
        if (count[node] == 1).all():
            return first[node]
        return first[node] + np.minimum((uniform(keys, hops, REPLICA) * count[node]).astype(np.int64), count[node] - 1)
    def _registered_only(self, st: np.ndarray, keys: np.ndarray, hops) -> np.ndarray:
        """Requests aimed at an autoscaled slot that takes no traffic go to one that does."""
        if not self.scalers:
            return st
        reg = self.stations.registered
        bad = ~reg[st]
        if not bad.any():
            return st
        st = st.copy()
        for a in self.scalers:
            mine = bad & (st >= a.sc.first) & (st < a.sc.end)
            if not mine.any():
                continue
            ok = a.slots[reg[a.slots]]
            if len(ok):
                u = uniform(keys[mine], hops if np.isscalar(hops) else hops[mine], REPLICA + 100)
                st[mine] = ok[np.minimum((u * len(ok)).astype(np.int64), len(ok) - 1)]
        return st
