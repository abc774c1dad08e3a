"""The stepping engine: windows of simulated time over numpy arrays.

Time advances in *windows* (up to 10 s, or ~100,000 arrivals) that never
cross a scheduled event, an autoscaling or failover decision, or a health check
that can change something. Least connections and power of two decide tick by
tick inside a window (each tick's requests are admitted at once, so the next
tick sees them); least response time advances one tick per window. In a
window, clients draw Poisson arrivals, then the levels of the network are
processed in order: the arrivals of
a level are admitted to its stations (``stations.py``), the requests that
finish inside the window are routed to the next levels (balancers choose a
backend, servers split over their downstream nodes, caches answer hits) and
the rest stay in flight. Requests keep exact continuous times, so latency is
not rounded to the tick.

Conservation holds by construction and is checked by the tests: every request
that arrived is served, failed with a cause, or in flight.
"""
from __future__ import annotations

import math

import numpy as np

from .compiler import CACHE, DATABASE, LB, SERVER, Network, SimulationError, compile_document
from .autoscaling import Autoscaler
from .caching import CacheModel, zipf_cdf
from .dispatch import BalancerState
from .document import Document
from .flight import FLAG_DB_SESSION, FLAG_FORGED, FLAG_NOT_MODIFIED, FLAG_SESSION_LOST, FLAG_TIMEOUT, Batch
from .ledger import COUNTERS, Ledger
from .metrics import N_BINS, Metrics, latency_bins, percentile_ms, percentiles_ms
from .patterns import rate_factor
from .randomness import BROWSER, CACHE_HIT, CACHE_STALE, ENTRY, NOT_MODIFIED, FORGE, REPLICA, ROUTE, block_generator, uniform
from .state import FAILURE_CAUSES, NodeState
from .stations import Stations

__all__ = ["Simulation", "SimulationError"]

CAUSE_INDEX = {c: i for i, c in enumerate(FAILURE_CAUSES)}
LOAD_AWARE = ("least_connections", "power_of_two")   # decided tick by tick inside a window
EWMA_ALPHA = 0.1
NO_SESSION, ORPHANED = -1, -2


def _peak_factor(pattern: dict) -> float:
    kind = pattern.get("type")
    if kind == "spike":
        return max(1.0, float(pattern.get("factor", 5.0)))
    if kind == "ramp":
        return max(float(pattern.get("from_factor", 0.1)), float(pattern.get("to_factor", 1.0)), 1e-3)
    if kind == "diurnal":
        return 1.0 + float(pattern.get("amplitude", 0.5))
    if kind == "steps":
        return max(max(pattern.get("factors", [1.0])), 1e-3)
    return 1.0


class Simulation:
    """A running simulation of a document. See ``docs/engine-api.md``."""

    def __init__(self, document: Document, seed: int | None = None, max_window_s: float = 10.0) -> None:
        self.document = document
        self.seed = int(document.settings["seed"] if seed is None else seed)
        self.rng = np.random.default_rng(self.seed)
        self.tick_s = float(document.settings["tick_ms"]) / 1000.0
        self.max_window_s = max_window_s
        self.now = 0.0
        self.metrics = Metrics()
        self.arrived = 0
        self.served = 0
        self.failed_by_cause = np.zeros(len(FAILURE_CAUSES), dtype=np.int64)
        self._lat_ns_total = 0  # exact integer nanoseconds: sums do not depend on slicing
        self._hist_total = np.zeros(N_BINS, dtype=np.int64)
        self.counts = dict.fromkeys(COUNTERS, 0)    # forged cookies, stale reads
        self._clients_down: set[str] = set()
        self._setup(compile_document(document))
        self._events = sorted(document.events, key=lambda e: e.at_s)
        self._event_pos = 0

    # ----- setup ----------------------------------------------------------------------
    def _setup(self, net: Network) -> None:
        self.net = net
        self.stations = Stations(net, self.now)
        self.balancers = [BalancerState(b, [f"{net.node_ids[net.st_node[s]]}#{net.st_replica[s]}" for s in b.backends],
                                        net.total_users, self.rng) for b in net.balancers]
        for bs in self.balancers:
            bs.health.next_check += self.now
        self.pending = [Batch.empty() for _ in net.levels]
        self.scalers = [Autoscaler(sc, self.now) for sc in net.scalers]
        self.sessions = np.full(net.total_users, NO_SESSION, dtype=np.int32)
        self.ewma = net.st_mean_read.copy()
        self._replicated = bool((net.st_lag > 0).any() or (net.st_primary != np.arange(net.n_stations)).any())
        self.primary = net.st_primary.copy()    # changes when a replica is promoted
        self.lag = net.st_lag.copy()
        self._down_since: dict[int, float] = {}   # database node -> when its primary went down
        if self._replicated and len(getattr(self, "last_write", ())) != net.total_users:
            self.last_write = np.full(net.total_users, -np.inf)   # when each user's last write committed
        self._cdf = {c.node_id: zipf_cdf(c.items, c.zipf_s) for c in net.clients
                     if net.caches or c.max_age_s > 0 or c.etag}
        self._caches = self._cache_models(net)
        self._cache_seen = {st: [0, 0] for st in self._caches}
        self._track_latency = any(b.algorithm == "least_response_time" for b in net.balancers)
        # routing lookup: row s owns (s, s+1] in the shifted cumulative array
        rows = np.repeat(np.arange(net.n_stations), np.diff(net.route_ptr))
        self._route_key = rows + net.route_cum
        self._has_route = np.diff(net.route_ptr) > 0
        self._is_local_server = (net.st_kind == SERVER) & (net.st_sessions == 0)
        self._is_db_server = (net.st_kind == SERVER) & (net.st_sessions == 1)
        self._node_edge = np.full((len(net.node_ids), len(net.node_ids)), -1, dtype=np.int64)
        for (a, b), k in net.edge_index.items():
            self._node_edge[a, b] = k
        self._node_workers = np.zeros(len(net.node_ids))
        np.add.at(self._node_workers, net.st_node, net.st_workers)
        self._last_done = np.zeros(len(net.node_ids))
        self._node_first = np.array([s[0] if len(s) else -1 for s in net.node_stations], dtype=np.int64)
        self._node_count = np.array([len(s) for s in net.node_stations], dtype=np.int64)
        if not hasattr(self, "ledger"):
            self.ledger = Ledger(0, len(FAILURE_CAUSES), net.n_stations, len(net.edges))
        self._queue_snap: dict[int, np.ndarray] = {}
        self._blocks: dict[str, tuple] = {}
        # A window holds its requests in memory (~400 bytes each): keep it to ~100,000 arrivals.
        peak = sum(c.rate_rps * _peak_factor(c.pattern) for c in net.clients)
        self._window_cap = min(self.max_window_s, max(self.tick_s, 100_000.0 / peak if peak > 0 else self.max_window_s))

    def _cache_models(self, net: Network) -> dict[int, CacheModel]:
        if not net.caches:
            return {}
        n_items = max((c.items for c in net.clients), default=1)
        pop = np.zeros(n_items)
        total = sum(c.rate_rps for c in net.clients) or 1.0
        for c in net.clients:
            pmf = np.diff(np.r_[0.0, self._cdf[c.node_id]])
            pop[:len(pmf)] += (c.rate_rps or total / len(net.clients)) / total * pmf
        pop /= pop.sum()
        old = getattr(self, "_caches", {})
        models = {}
        for st, size, ttl, on_write in net.caches:
            m = CacheModel(pop, size, ttl, on_write)
            prev = next((o for o in old.values() if o is not None and len(o.popularity) == len(pop)
                         and (o.size, o.ttl, o.on_write) == (size, ttl, on_write)), None) if len(net.caches) == 1 else None
            if prev is not None:
                m.read_rate, m.write_rate = prev.read_rate, prev.write_rate
                m._compute()
            models[st] = m
        return models

    # ----- public API -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return int(sum(len(p) for p in self.pending))

    @property
    def failed(self) -> int:
        return int(self.failed_by_cause.sum())

    def step(self) -> None:
        """Advance by one tick."""
        self.run_until(self.now + self.tick_s)

    def advance(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until(self, t_end: float) -> None:
        while self.now < t_end - 1e-9:
            self._boundary_actions()
            t1 = min(t_end, self.now + self._window_cap)
            if self.net.dynamic:  # one tick at a time, on the tick grid
                t1 = min(t1, (math.floor(self.now / self.tick_s + 1e-9) + 1) * self.tick_s)
            if self._event_pos < len(self._events):
                t1 = min(t1, max(self._events[self._event_pos].at_s, self.now + 1e-9))
            for bs in self.balancers:
                if not bs.health.steady(self.stations.up[bs.bal.backends]):
                    t1 = min(t1, max(bs.health.next_check, self.now + 1e-9))
            if self._down_since:
                t1 = min(t1, max(self._next_failover(), self.now + 1e-9))
            for a in self.scalers:
                t1 = min(t1, max(a.next_decision, self.now + 1e-9))
                booting = self.stations.ready_at[a.sc.first:a.sc.end]
                if np.isfinite(booting).any():
                    t1 = min(t1, max(float(booting.min()), self.now + 1e-9))
            self._window(self.now, t1)
            self.now = t1
            closed = math.floor(self.now + 1e-9) - self.metrics.n
            if closed > 0:
                self._close_seconds(closed)
        self._boundary_actions()

    def fail(self, node_id: str, replica: int | None = None) -> None:
        self._set_node(node_id, replica, up=False)

    def recover(self, node_id: str, replica: int | None = None) -> None:
        self._set_node(node_id, replica, up=True)

    def update_document(self, document: Document) -> None:
        """Take an edited document into a running simulation, keeping time and metrics.

        Requests in flight at stations that still exist stay where they are; those
        at removed stations fail (node_failed)."""
        from .live_update import migrate
        migrate(self, document)

    def node_states(self) -> dict[str, NodeState]:
        net = self.net
        waiting, in_system = self._occupancy()
        last = self.metrics.n - 1
        util = self.metrics.util
        out = {}
        for i, node in enumerate(net.node_ids):
            st = net.node_stations[i]
            st = st[self.stations.provisioned[st]] if len(st) else st   # autoscaled: the replicas that exist
            up = self.stations.up[st]
            out[node] = NodeState(
                utilization=float(util[node][last]) if node in util and last >= 0 and not math.isnan(util[node][last]) else 0.0,
                queue=float(waiting[st].sum()) if len(st) else 0.0,
                in_system=float(in_system[st].sum()) if len(st) else 0.0,
                throughput_rps=float(self._last_done[i]),
                replicas=max(len(st), 1),
                replicas_up=int(up.sum()) if len(st) else 1,
                failed_replicas=tuple(int(r) for r in net.st_replica[st][self.stations.failed[st]]),
            )
        return out

    def edge_flows(self) -> dict[tuple[str, str], float]:
        flows = self.metrics.flow
        last = self.metrics.n - 1
        if last < 0:
            return {e: 0.0 for e in self.net.edges}
        return {e: float(flows[e][last]) if e in flows else 0.0 for e in self.net.edges}

    def totals(self) -> dict:
        served = self.served
        return {
            "arrived": int(self.arrived),
            "served": int(served),
            "failed": self.failed,
            "failed_by_cause": {c: int(v) for c, v in zip(FAILURE_CAUSES, self.failed_by_cause)},
            "in_flight": self.in_flight,
            "mean_ms": self._lat_ns_total / served / 1e6 if served else math.nan,
            "p50_ms": percentile_ms(self._hist_total, 0.50),
            "p95_ms": percentile_ms(self._hist_total, 0.95),
            "p99_ms": percentile_ms(self._hist_total, 0.99),
            "sessions_lost": int(self.failed_by_cause[CAUSE_INDEX["session_lost"]]),
            **{name: int(v) for name, v in self.counts.items()},
        }

    # ----- events and failures ------------------------------------------------------------
    def _boundary_actions(self) -> None:
        # While nothing can change, checks are skipped; keep their grid in step first.
        for bs in self.balancers:
            if bs.health.steady(self.stations.up[bs.bal.backends]):
                bs.health.skip_to(self.now + 1e-9)
        while self._event_pos < len(self._events) and self._events[self._event_pos].at_s <= self.now + 1e-9:
            ev = self._events[self._event_pos]
            self._event_pos += 1
            if ev.node in self.net.node_ids:
                self._set_node(ev.node, ev.replica, up=(ev.action == "recover"))
        if self.scalers:
            self._autoscale()
        if self.net.failovers:
            self._failover()
        for bs in self.balancers:
            up = self.stations.up[bs.bal.backends]
            while bs.health.next_check <= self.now + 1e-9:
                bs.health.check(up)

    def _set_node(self, node_id: str, replica: int | None, up: bool) -> None:
        net = self.net
        if node_id not in net.node_ids:
            raise KeyError(f'there is no node "{node_id}"')
        i = net.node_ids.index(node_id)
        st = net.node_stations[i]
        if len(st) == 0:   # a client: failing it takes its users offline (no requests)
            (self._clients_down.discard if up else self._clients_down.add)(node_id)
            return
        if replica is not None:
            if not 0 <= replica < len(st):
                raise ValueError(f'"{node_id}" has no replica {replica} (it has {len(st)})')
            st = st[replica:replica + 1]
        self.stations.failed[st] = not up
        self._apply_up()

    def _autoscale(self) -> None:
        """Boots that finished, drains that emptied, and the autoscalers' decisions."""
        st = self.stations
        now = self.now
        done = np.nonzero(st.ready_at <= now + 1e-9)[0]
        if len(done):
            st.ready_at[done] = np.inf
            st.booted[done] = True
            st.registered[done] = True
        draining = np.nonzero(st.provisioned & ~st.registered & st.booted)[0]
        if len(draining):
            busy = np.zeros(self.net.n_stations, dtype=bool)
            for p in self.pending:
                busy[p.st] = True
            empty = draining[~busy[draining]]
            st.provisioned[empty] = False
            st.booted[empty] = False
            st.failed[empty] = False
        util = self.metrics.util
        for a in self.scalers:
            if a.next_decision > now + 1e-9:
                continue
            a.next_decision = (math.floor(now / a.sc.interval_s + 1e-9) + 1) * a.sc.interval_s
            node = self.net.node_ids[a.sc.node_index]
            if node not in util or self.metrics.n == 0:
                continue
            k = max(1, min(self.metrics.n, int(round(a.sc.interval_s))))
            u = float(np.nanmean(util[node][-k:]))
            slots = a.slots
            # replicas that count: provisioned, not failed (a failed one is replaced), not draining
            active = slots[st.provisioned[slots] & ~st.failed[slots] & (st.registered[slots] | ~st.booted[slots])]
            current = len(active)
            ready = int((st.up[slots] & st.registered[slots]).sum())
            want = a.desired(now, current, ready, u)
            if want > current:
                free = slots[~st.provisioned[slots]][:want - current]
                st.provisioned[free] = True
                st.failed[free] = False
                if a.sc.boot_s > 0:
                    st.booted[free] = False
                    st.ready_at[free] = now + a.sc.boot_s
                else:
                    st.booted[free] = True
                    st.registered[free] = True
            elif want < current:
                # remove the newest first: booting ones stop at once, serving ones drain
                victims = active[::-1][:current - want]
                booting = victims[~st.booted[victims]]
                st.provisioned[booting] = False
                st.ready_at[booting] = np.inf
                st.registered[victims] = False
        self._apply_up()

    def _failover(self) -> None:
        """Promote a live read replica when a primary has been down for failover_s."""
        net, up = self.net, self.stations.up
        for node, after in net.failovers:
            st = net.node_stations[node]
            primary = int(self.primary[st[0]])
            if up[primary]:
                self._down_since.pop(node, None)
                continue
            since = self._down_since.setdefault(node, self.now)
            live = st[up[st]]
            if self.now + 1e-9 >= since + after and len(live):
                new = int(live[0])
                self.lag[primary] = self.lag[new] if self.lag[new] > 0 else float(net.st_lag[st].max())
                self.lag[new] = 0.0
                self.primary[st] = new
                self._down_since.pop(node, None)

    def _next_failover(self) -> float:
        return min((self._down_since[n] + after for n, after in self.net.failovers if n in self._down_since),
                   default=math.inf)

    def _apply_up(self) -> None:
        """Stations that stopped serving lose their requests and their local sessions."""
        down, _ = self.stations.refresh_up(self.now)
        if len(down) == 0:
            return
        for lv, batch in enumerate(self.pending):
            hit = np.isin(batch.st, down)
            if hit.any():
                self.pending[lv] = batch.take(~hit)
                self._fail("node_failed", np.full(int(hit.sum()), self.now))
        orphan = np.isin(self.sessions, down.astype(np.int32))
        self.sessions[orphan] = ORPHANED

    def _count(self, counter: str, times: np.ndarray) -> None:
        if len(times):
            self.counts[counter] += len(times)
            self.ledger.book_count(counter, times)

    def _fail(self, cause: str, times: np.ndarray) -> None:
        if len(times):
            k = CAUSE_INDEX[cause]
            self.failed_by_cause[k] += len(times)
            self.ledger.book_failed(k, times)

    # ----- one window ---------------------------------------------------------------------
    def _window(self, t0: float, t1: float) -> None:
        net = self.net
        inbox: list[list[Batch]] = [[] for _ in net.levels]
        self._generate(t0, t1, inbox)
        marks = [float(k) for k in range(math.floor(t0) + 1, math.floor(t1 + 1e-9) + 1)]
        for lv in range(len(net.levels)):
            if inbox[lv]:
                in_system = np.bincount(self.pending[lv].st, minlength=net.n_stations)
                admitted, full, down = self.stations.admit(Batch.concat(inbox[lv]), in_system)
                self._fail("queue_full", full.arr)
                self._fail("backend_down", down.arr)
                self._sessions(admitted)
                self.pending[lv] = Batch.concat([self.pending[lv], admitted])
            p = self.pending[lv]
            if not len(p):
                continue
            served_here = (p.flags & FLAG_TIMEOUT) == 0
            self.ledger.book_busy(p.st[served_here], p.start[served_here], p.fin[served_here], t0, t1)
            for k in marks:
                w = (p.arr <= k) & (p.start > k)
                if w.any():
                    snap = self._queue_snap.setdefault(int(round(k)), np.zeros(net.n_stations))
                    snap += np.bincount(p.st[w], minlength=net.n_stations)
            done = p.fin < t1
            if not done.any():
                continue
            out, self.pending[lv] = p.split(done)
            self.ledger.book_done(out.st, out.fin)
            gave_up = (out.flags & FLAG_TIMEOUT) != 0
            if gave_up.any():
                self._fail("timeout", out.fin[gave_up])
                out = out.take(~gave_up)
            if len(out):
                if self._track_latency:
                    self._update_ewma(out)
                self._route(out, inbox)
        if self._caches:
            self._observe_caches(t1 - t0)

    def _observe_caches(self, seconds: float) -> None:
        for st, model in self._caches.items():
            reads, writes = self._cache_seen[st]
            model.observe(reads, writes, seconds)
            self._cache_seen[st] = [0, 0]

    def _update_ewma(self, out: Batch) -> None:
        """Recent response time per station (for least_response_time)."""
        n = self.net.n_stations
        k = np.bincount(out.st, minlength=n)
        seen = k > 0
        mean = np.bincount(out.st, weights=out.fin - out.arr, minlength=n)[seen] / k[seen]
        w = 1.0 - (1.0 - EWMA_ALPHA) ** k[seen]
        self.ewma[seen] += w * (mean - self.ewma[seen])

    def _generate(self, t0: float, t1: float, inbox: list[list[Batch]]) -> None:
        net = self.net
        for c in net.clients:
            if not c.entries or c.rate_rps <= 0 or c.node_id in self._clients_down:
                continue
            blocks = range(math.floor(t0), math.ceil(t1))
            if len(blocks) == 1:   # the usual case: slices of one cached second, no copies
                bt, bu, bc, bk, bf, bi, bb = self._client_block(c, blocks[0])
                i, j = np.searchsorted(bt, (t0, t1))
                if i == j:
                    continue
                times, users, cls, keys, flags, items, browser = (bt[i:j], bu[i:j], bc[i:j], bk[i:j], bf[i:j],
                                                                  bi[i:j], bb[i:j])
            else:
                parts = [self._client_block(c, blk) for blk in blocks]
                times = np.concatenate([p[0] for p in parts])
                sel = (times >= t0) & (times < t1)
                if not sel.any():
                    continue
                times = times[sel]
                users, cls, keys, flags, items, browser = (np.concatenate([p[f] for p in parts])[sel]
                                                           for f in range(1, 7))
            if browser.any():   # answered by the browser's cache: never sent
                self._count("browser_hits", times[browser])
                keep = ~browser
                times, users, cls, keys, flags, items = (a[keep] for a in (times, users, cls, keys, flags, items))
                if not len(times):
                    continue
            n = len(times)
            entry_nodes = np.asarray(c.entries)
            if c.failover:
                alive = [j for j in c.entries if self.stations.up[net.node_stations[j]].any()]
                node = np.full(n, alive[0] if alive else c.entries[0])
            elif len(entry_nodes) == 1:
                node = np.full(n, entry_nodes[0])
            else:
                node = entry_nodes[np.minimum((uniform(keys, 0, ENTRY) * len(entry_nodes)).astype(np.int64),
                                              len(entry_nodes) - 1)]
            st = self._registered_only(self._pick_replica(node, keys), keys, 0)
            self.arrived += n
            self.ledger.book_offered(times)
            self.ledger.book_edges(self._node_edge[c.node_index, node], times)
            self._deliver(Batch(st=st, birth=times, arr=times, cls=cls, user=users, key=keys, flags=flags,
                                item=items), inbox)

    def _client_block(self, c, block: int) -> tuple[np.ndarray, ...]:
        """One client's arrivals in the simulated second ``block`` (cached): a Poisson
        process whose rate follows the pattern tick by tick; users, reads/writes, keys."""
        cache = self._blocks.get(c.node_id)
        if cache is not None and cache[0] == block:
            return cache[1]
        rng = block_generator(self.seed, c.stream, block)
        dt = self.tick_s
        inner = np.arange(math.floor(block / dt + 1e-9) + 1, math.ceil((block + 1) / dt - 1e-9)) * dt
        edges = np.concatenate([[block], inner[(inner > block) & (inner < block + 1)], [block + 1.0]])
        lens = np.diff(edges)
        if c.pattern["type"] == "constant":
            lam = c.rate_rps * lens
        else:
            lam = c.rate_rps * np.maximum(rate_factor(c.pattern, 0.5 * (edges[:-1] + edges[1:])), 0.0) * lens
        # A Poisson process with a piecewise-constant rate, in time order without a sort:
        # N ~ Poisson(Λ); sorted uniforms on [0, Λ) as normalised sums of exponentials;
        # mapped through the inverse of the cumulative rate.
        cum = np.concatenate([[0.0], np.cumsum(lam)])
        n = int(rng.poisson(cum[-1]))
        gaps = np.cumsum(rng.standard_exponential(n + 1))
        times = np.interp(gaps[:n] * (cum[-1] / gaps[n]), cum, edges)
        users = c.user_offset + rng.integers(0, c.users, size=n)
        cls = (rng.random(n) >= c.read_ratio).astype(np.int8)
        keys = rng.integers(0, 2**64, size=n, dtype=np.uint64)
        if c.node_id in self._cdf:   # items matter only where something caches them
            cdf = self._cdf[c.node_id]
            items = np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)
        else:
            items = np.zeros(n, dtype=np.int64)
        flags = np.zeros(n, dtype=np.int8)
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

    def _deliver(self, batch: Batch, inbox: list[list[Batch]]) -> None:
        if not len(batch):
            return
        lv = self.net.st_level[batch.st]
        if (lv == lv[0]).all():
            inbox[int(lv[0])].append(batch)
            return
        for level in np.unique(lv):
            inbox[int(level)].append(batch.take(lv == level))

    def _sessions(self, b: Batch) -> None:
        if not len(b):
            return
        forged = ((b.flags & FLAG_FORGED) != 0) & (self.net.st_kind[b.st] == SERVER)
        if forged.any():
            # A tampered cookie is believed only where sessions live in unsigned cookies;
            # everywhere else the user just gets an empty session (Flask's BadSignature).
            st = b.st[forged]
            believed = (self.net.st_sessions[st] == 2) & ~self.net.st_signed[st]
            times = b.arr[forged]
            self._count("forged_accepted", times[believed])
            self._count("forged_rejected", times[~believed])
            b.flags[forged] &= ~FLAG_FORGED
        if self._replicated:
            self._replication(b)
        if self._caches:
            at_cache = self.net.st_kind[b.st] == CACHE
            if at_cache.any():
                for st in np.unique(b.st[at_cache]).tolist():
                    mine = b.st == st
                    writes = int((b.cls[mine] == 1).sum())
                    self._cache_seen[st][0] += int(mine.sum()) - writes
                    self._cache_seen[st][1] += writes
        local = np.nonzero(self._is_local_server[b.st])[0]
        if len(local):
            # A user's requests in time order: each one finds the session where the
            # previous one left it (the first one finds it where the last window did).
            order = local[np.lexsort((b.arr[local], b.user[local]))]
            u = b.user[order]
            s = b.st[order].astype(np.int32)
            first = np.ones(len(order), dtype=bool)
            first[1:] = u[1:] != u[:-1]
            prev = np.empty(len(order), dtype=np.int32)
            prev[first] = self.sessions[u[first]]
            prev[~first] = s[np.nonzero(~first)[0] - 1]
            lost = (prev == ORPHANED) | ((prev >= 0) & (prev != s))
            if lost.any():
                b.flags[order[lost]] |= FLAG_SESSION_LOST
            last = np.ones(len(order), dtype=bool)
            last[:-1] = first[1:]
            self.sessions[u[last]] = s[last]
        dbs = self._is_db_server[b.st]
        if dbs.any():
            b.flags[dbs] |= FLAG_DB_SESSION

    def _replication(self, b: Batch) -> None:
        """Writes committed at a primary reach its replicas ``lag`` later; a user who
        reads from a replica in between gets old data (counted as a stale read)."""
        net = self.net
        writes = np.nonzero((b.cls == 1) & (net.st_kind[b.st] == DATABASE) & (self.primary[b.st] == b.st))[0]
        lag = self.lag[b.st]
        reads = np.nonzero((b.cls == 0) & (lag > 0))[0]
        if len(reads):
            # For each read, the user's latest write committed before it (this batch's
            # writes included): a running maximum over the user's events in time order.
            user = np.concatenate([b.user[writes], b.user[reads]])
            t = np.concatenate([b.fin[writes], b.arr[reads]])
            is_read = np.concatenate([np.zeros(len(writes), bool), np.ones(len(reads), bool)])
            order = np.lexsort((is_read, t, user))
            user, t, is_read = user[order], t[order], is_read[order]
            seed = np.maximum(self.last_write[user], -1e6)
            value = np.where(is_read, seed, np.maximum(t, seed))
            group = np.cumsum(np.r_[True, user[1:] != user[:-1]])
            span = 4.0 * (float(np.abs(value).max()) + 1.0)
            latest = np.maximum.accumulate(value + group * span) - group * span
            since = t[is_read] - latest[is_read]
            read_idx = reads[order[is_read] - len(writes)]
            stale = (since >= 0) & (since < lag[read_idx])
            self._count("stale_reads", b.arr[read_idx][stale])
        if len(writes):
            np.maximum.at(self.last_write, b.user[writes], b.fin[writes])

    def _route(self, out: Batch, inbox: list[list[Batch]]) -> None:
        net = self.net
        is_lb = net.st_kind[out.st] == LB
        if is_lb.any():
            lb_out, out = out.split(is_lb)
            fin = lb_out.fin
            if len(fin) > 1 and (fin[1:] < fin[:-1]).any():
                lb_out = lb_out.take(np.argsort(fin, kind="stable"))
            self._balance(lb_out, inbox)
        if not len(out):
            return
        u = uniform(out.key, out.hop, ROUTE)
        cont = self._has_route[out.st]
        nm = ((out.flags & FLAG_NOT_MODIFIED) != 0) & (net.st_kind[out.st] == SERVER)
        if nm.any():   # a 304 Not Modified: the server answers without calling the database
            cont &= ~nm
            self._count("not_modified", out.fin[nm])
        hit = np.zeros(len(out), dtype=bool)
        if self._caches:
            at_cache = (net.st_kind[out.st] == CACHE) & (out.cls == 0)
            if at_cache.any():
                u_hit = uniform(out.key, out.hop, CACHE_HIT)
                u_stale = uniform(out.key, out.hop, CACHE_STALE)
                for st, model in self._caches.items():
                    mine = at_cache & (out.st == st)
                    if mine.any():
                        items = np.minimum(out.item[mine], len(model.hit) - 1)
                        h = u_hit[mine] < model.hit[items]
                        hit[mine] = h
                        stale = h & (u_stale[mine] < model.stale[items])
                        self._count("stale_reads", out.fin[mine][stale])
        cont &= ~hit
        fwd, end = out.split(cont)
        if len(fwd):
            key = fwd.st + (u[cont] if len(end) else u)
            idx = np.minimum(np.searchsorted(self._route_key, key, side="left"), len(self._route_key) - 1)
            target = self._registered_only(net.route_target[idx], fwd.key, fwd.hop)
            if self._replicated:   # writes go to the primary of a replicated database
                target = np.where(fwd.cls == 1, self.primary[target], target)
            self._flow(fwd.st, target, fwd.fin)
            nxt = fwd.forward(target)
            self._deliver(nxt, inbox)
        self._finish(end)

    def _flow(self, src_st: np.ndarray, dst_st: np.ndarray, times: np.ndarray) -> None:
        self.ledger.book_edges(self._node_edge[self.net.st_node[src_st], self.net.st_node[dst_st]], times)

    def _balance(self, out: Batch, inbox: list[list[Batch]]) -> None:
        net = self.net
        which = net.st_balancer[out.st]
        for bi in (np.unique(which) if len(self.balancers) > 1 else (0,)):
            bs = self.balancers[int(bi)]
            mine = out.take(which == bi) if len(self.balancers) > 1 else out
            backends = bs.bal.backends
            if bs.bal.algorithm in LOAD_AWARE:
                self._balance_by_tick(bs, mine)
                continue
            conn = lat = None
            if bs.bal.algorithm == "least_response_time":
                conn = self._connections()[backends]
                lat = self.ewma[backends]
            pos = bs.choose(mine.user, mine.key, mine.hop, conn, lat, int(round(self.now / self.tick_s)),
                            self.stations.registered[backends])
            none = pos < 0
            if none.any():
                self._fail("no_healthy_backend", mine.fin[none])
                mine = mine.take(~none)
                pos = pos[~none]
            target = backends[pos]
            self._flow(mine.st, target, mine.fin)
            self._deliver(mine.forward(target), inbox)

    def _balance_by_tick(self, bs: BalancerState, out: Batch) -> None:
        """Least connections and power of two: decide tick by tick with the connection
        counts at the start of each tick, and admit each tick's requests at once, so the
        next tick's counts include them. The window may be long; decisions stay fresh."""
        net = self.net
        backends = bs.bal.backends
        levels = np.unique(net.st_level[backends])
        dt = self.tick_s
        tick = np.floor(out.fin / dt + 1e-9).astype(np.int64)
        cuts = np.flatnonzero(np.diff(tick)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(out)]):
            mine = out.take(slice(int(a), int(b)))
            k = int(tick[a])
            tau = k * dt
            conn = np.zeros(net.n_stations)
            for lv in levels:
                p = self.pending[int(lv)]
                if len(p):
                    conn += np.bincount(p.st, weights=((p.arr <= tau) & (p.fin > tau)).astype(float),
                                        minlength=net.n_stations)
            pos = bs.choose(mine.user, mine.key, mine.hop, conn[backends], None, k, self.stations.registered[backends])
            none = pos < 0
            if none.any():
                self._fail("no_healthy_backend", mine.fin[none])
                mine = mine.take(~none)
                pos = pos[~none]
            if not len(mine):
                continue
            target = backends[pos]
            self._flow(mine.st, target, mine.fin)
            self._admit_now(mine.forward(target))

    def _admit_now(self, batch: Batch) -> None:
        """Admit requests at their stations right away (they join the pending requests)."""
        lv_of = self.net.st_level[batch.st]
        for lv in np.unique(lv_of):
            lv = int(lv)
            part = batch if len(np.unique(lv_of)) == 1 else batch.take(lv_of == lv)
            in_system = np.bincount(self.pending[lv].st, minlength=self.net.n_stations)
            admitted, full, down = self.stations.admit(part, in_system)
            self._fail("queue_full", full.arr)
            self._fail("backend_down", down.arr)
            self._sessions(admitted)
            self.pending[lv] = Batch.concat([self.pending[lv], admitted])

    def _connections(self) -> np.ndarray:
        return self._occupancy()[1]

    def _occupancy(self) -> tuple[np.ndarray, np.ndarray]:
        """(waiting, waiting + in service) per station, now."""
        n = self.net.n_stations
        waiting = np.zeros(n)
        total = np.zeros(n)
        for p in self.pending:
            if len(p):
                total += np.bincount(p.st, minlength=n)
                waiting += np.bincount(p.st, weights=(p.start > self.now).astype(float), minlength=n)
        return waiting, total

    def _finish(self, done: Batch) -> None:
        if not len(done):
            return
        lost = (done.flags & FLAG_SESSION_LOST) != 0
        self._fail("session_lost", done.fin[lost])
        ok = ~lost
        n = int(ok.sum())
        if n == 0:
            return
        lat = done.fin[ok] - done.birth[ok]
        self.served += n
        self._lat_ns_total += int(np.rint(lat * 1e9).astype(np.int64).sum())
        self._hist_total += np.bincount(latency_bins(lat), minlength=N_BINS)
        self.ledger.book_served(done.fin[ok], lat)

    # ----- per-second metrics ---------------------------------------------------------------
    def _close_seconds(self, k: int) -> None:
        """Turn the ledger's k oldest seconds into metric rows (all at once)."""
        net = self.net
        sec = self.ledger.pop_seconds(k)
        first = self.metrics.n + 1
        up = self.stations.up
        n_nodes = len(net.node_ids)
        node_of = net.st_node
        cap = np.bincount(node_of, weights=net.st_workers * up, minlength=n_nodes)
        ups = np.bincount(node_of, weights=up.astype(float), minlength=n_nodes)

        def per_node(rows: np.ndarray) -> np.ndarray:  # rows × stations -> rows × nodes
            out = np.zeros((k, n_nodes))
            np.add.at(out.T, node_of, rows.T)
            return out

        busy = per_node(sec["busy"])
        util = np.where(cap > 0, np.minimum(busy / np.where(cap > 0, cap, 1.0), 1.0), 0.0)
        waiting = np.stack([self._queue_snap.pop(first + r, np.zeros(net.n_stations)) for r in range(k)])
        queue = per_node(waiting)
        self._last_done = per_node(sec["done"].astype(float))[-1]
        keep = [i for i in range(n_nodes) if net.node_kind[i] != "client"]
        nodes = [net.node_ids[i] for i in keep]
        servers_up = float(((net.st_kind == SERVER) & up).sum())
        provisioned = float(((net.st_kind == SERVER) & self.stations.provisioned & ~self.stations.failed).sum())
        served = sec["served"].astype(float)
        pct = percentiles_ms(sec["hist"], (0.5, 0.95, 0.99))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(served > 0, sec["lat_sum"] / np.maximum(served, 1) / 1e6, np.nan)
        failed = sec["failed"].astype(float)
        columns = {
            "time_s": np.arange(first, first + k, dtype=float),
            "offered_rps": sec["offered"].astype(float),
            "served_rps": served,
            "failed_rps": failed.sum(axis=1),
            "p50_ms": pct[:, 0], "p95_ms": pct[:, 1], "p99_ms": pct[:, 2],
            "mean_ms": mean,
            "active_servers": np.full(k, servers_up),
            "sessions_lost": failed[:, CAUSE_INDEX["session_lost"]],
            "cost_server_s": np.full(k, provisioned),
            **{name: sec["counts"][:, i].astype(float) for i, name in enumerate(COUNTERS)},
        }
        self.metrics.extend(columns, failed, nodes, util[:, keep], queue[:, keep],
                            np.repeat(ups[None, keep], k, axis=0), list(net.edges), sec["edges"].astype(float))
