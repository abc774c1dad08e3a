"""The stepping engine: windows of simulated time over numpy arrays.

Time advances in *windows* (up to 60 s, or ~100,000 arrivals) that never
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

from .allocator import keep_freed_memory
from .arrivals import Arrivals
from .autoscaling import Autoscaler
from .blocking import Blocking
from .budget import MAX_IN_FLIGHT, BudgetError, check_work, in_flight_message, peak_factor as _peak_factor
from .caching import CacheModel, may_store, zipf_cdf
from .contested import Contested
from .compiler import SERVER, EdgeLookup, Network, SimulationError, compile_document
from .dispatch import BalancerState, share_cookies
from .document import Document
from .flight import Batch
from .ledger import COUNTERS, DenseEdges, Ledger
from .lifecycle import Lifecycle
from .metrics import N_BINS, Metrics, percentile_ms
from .table_routing import Partitioning
from .page_views import page_view_totals
from .randomness import named_uniform
from .tracing import Tracing
from .window import Window
from .per_second import PerSecond
from .replication import Replication
from .request_state import RequestState
from .routing import LOAD_AWARE, Routing
from .sharding import Sharding
from .state import CAUSE_INDEX, FAILURE_CAUSES, NodeState
from .stations import Stations

__all__ = ["Simulation", "SimulationError"]

NO_SESSION = -1   # a user without a session yet (see request_state.py)


def session_slots(net: Network) -> tuple[np.ndarray, int]:
    """Each station's row of the users' sessions (-1: it keeps none in memory) and the
    number of rows: one per level with servers that keep sessions in memory."""
    local = (net.st_kind == SERVER) & (net.st_sessions == 0)
    levels = np.unique(net.st_level[local])
    slot = np.full(net.n_stations, -1, dtype=np.int64)
    slot[local] = np.searchsorted(levels, net.st_level[local])
    return slot, len(levels)
SHORT_WINDOW_S = 10.0   # the longest window with blocking servers or load-aware balancers
LONG_WINDOW_IN_FLIGHT = 10_000   # longer windows only after one that ended with at most this many in flight


def _last(series: dict, node: str) -> float:
    v = series.get(node, math.nan)
    return 0.0 if math.isnan(v) else float(v)


def _check_work(document: Document, duration_s: float) -> None:
    """Refuse a run whose work is beyond the budget (budget.py), as a SimulationError."""
    try:
        check_work(document, float(duration_s))
    except BudgetError as e:
        compile_document(document)   # what is beyond a budget of the file itself is said first
        raise SimulationError(str(e)) from None


class Simulation(Window, Arrivals, Lifecycle, RequestState, Replication, Routing, PerSecond, Sharding, Partitioning,
                 Blocking, Tracing, Contested):
    """A running simulation of a document. See ``docs/engine-api.md``."""

    def __init__(self, document: Document, seed: int | None = None, max_window_s: float = 60.0,
                 duration_s: float | None = None) -> None:
        keep_freed_memory()   # the engine's arrays reuse freed memory instead of fresh pages (allocator.py)
        self.document = document
        self.seed = int(document.settings["seed"] if seed is None else seed)
        self.tick_s = float(document.settings["tick_ms"]) / 1000.0
        self.max_window_s = max_window_s
        self.now = 0.0
        self._clock = 0.0          # the time callers asked for (now lags it by less than a tick)
        self._few_in_flight = False   # the first window is short: a run that piles up stops early
        self.metrics = Metrics()
        self.arrived = 0
        self.served = 0
        self.failed_by_cause = np.zeros(len(FAILURE_CAUSES), dtype=np.int64)
        self._lat_ns_total = 0  # exact integer nanoseconds: sums do not depend on slicing
        self._hist_total = np.zeros(N_BINS, dtype=np.int64)
        self.counts = dict.fromkeys(COUNTERS, 0)    # forged cookies, stale reads
        self._clients_down: set[str] = set()
        _check_work(document, document.settings["duration_s"] if duration_s is None else duration_s)
        self._setup(compile_document(document))
        self._events = sorted(document.events, key=lambda e: e.at_s)
        self._event_pos = 0

    # ----- setup ----------------------------------------------------------------------
    def _setup(self, net: Network) -> None:
        self.net = net
        self.stations = Stations(net, self.now)
        self.balancers = share_cookies([BalancerState(b, [f"{net.node_ids[net.st_node[s]]}#{net.st_replica[s]}"
                                                          for s in b.backends], net.total_users,
                                                      named_uniform(self.seed, net.node_ids[b.node_index]))
                                        for b in net.balancers])
        for bs in self.balancers:   # (a balancer added during a run: its first check on its grid, from now on)
            h = bs.health
            h.next_check = h.anchor + max(0, math.ceil((self.now - h.anchor) / h.interval - 1e-9)) * h.interval
        self.pending = [Batch.empty() for _ in net.levels]
        self._deferred: dict[int, list] = {}   # per level: balancers' requests choosing there (contested.py)
        self.scalers = [Autoscaler(sc, self.now) for sc in net.scalers]
        self._session_slot, n_slots = session_slots(net)
        self.sessions = np.full((n_slots, net.total_users), NO_SESSION, dtype=np.int32)   # per level, per user
        self._moves_later: list[Batch] | None = None   # admitted requests whose sessions move later (blocking.py)
        self.ewma = net.st_mean_read.copy()
        self._replicated = bool(net.databases)
        self.primary = net.st_primary.copy()    # changes when a replica is promoted
        self.lag = net.st_lag.copy()
        self._down_since: dict[int, float] = {}   # database node -> when its primary went down
        self._setup_replication()
        self._setup_sharding()
        self._setup_partitioning()
        self._cdf = {c.node_id: zipf_cdf(c.items, c.zipf_s) for c in net.clients
                     if net.caches or net.databases or net.shards or c.max_age_s > 0 or c.etag}
        self._caches = self._cache_models(net)
        self._track_latency = any(b.algorithm == "least_response_time" for b in net.balancers)
        # routing lookup: row s owns (s, s+1] in the shifted cumulative array
        rows = np.repeat(np.arange(net.n_stations), np.diff(net.route_ptr))
        self._route_key = rows + net.route_cum
        self._has_route = np.diff(net.route_ptr) > 0
        self._is_local_server = (net.st_kind == SERVER) & (net.st_sessions == 0)
        self._is_db_server = (net.st_kind == SERVER) & (net.st_sessions == 1)
        n_nodes = len(net.node_ids)   # [a, b] -> edge number or -1
        self._node_edge = (DenseEdges if n_nodes <= DenseEdges.MAX_NODES else EdgeLookup)(n_nodes, net.edge_index)
        self._last_done = np.zeros(len(net.node_ids))
        self._node_first = np.array([s[0] if len(s) else -1 for s in net.node_stations], dtype=np.int64)
        self._node_count = np.array([len(s) for s in net.node_stations], dtype=np.int64)
        if not hasattr(self, "ledger"):
            self.ledger = Ledger(0, len(FAILURE_CAUSES), net.n_stations, len(net.edges))
        self._queue_snap: dict[int, np.ndarray] = {}
        self._state_snap: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # per open second (per_second.py)
        self._blocks: dict[str, tuple] = {}
        # A window holds its requests in memory (~400 bytes each): keep it to ~100,000 arrivals.
        peak = sum(c.rate_rps * _peak_factor(c.pattern) for c in net.clients)
        self._window_cap = min(self.max_window_s, max(self.tick_s, 100_000.0 / peak if peak > 0 else self.max_window_s))
        self._setup_blocking()   # servers whose workers wait for their downstream calls (blocking.py)
        if self._holding or any(b.algorithm in LOAD_AWARE for b in net.balancers):
            # blocking sweeps and tick-by-tick balancing look at the window's arrivals again and again
            self._window_cap = min(self._window_cap, SHORT_WINDOW_S)

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
        models = {}
        for st, size, ttl, on_write in net.caches:   # (a live edit carries their state: live_update.py)
            m = CacheModel(pop, size, ttl, on_write)
            m.stores = may_store(self.document, net.node_ids[net.st_node[st]])   # Cache-Control: private
            models[st] = m
        return models

    # ----- public API -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return int(sum(p.user_count() for p in self.pending))

    @property
    def failed(self) -> int:
        return int(self.failed_by_cause.sum())

    def step(self) -> None:
        """Advance by one tick."""
        self.run_until(self._clock + self.tick_s)

    def advance(self, seconds: float) -> None:
        self.run_until(self._clock + seconds)

    def run_until(self, t_end: float) -> None:
        """Simulate up to ``t_end``.

        Windows end only where simulated time says so (an event, a health check,
        a failover, an autoscaling decision, a boot or drain, or a tick of the grid
        ``tick_ms``), never where a caller happens to stop: so one call and many
        small calls give identical numbers. A ``t_end`` between two ticks is
        reached at the tick before it (``now`` ≤ ``t_end``, less than one tick
        behind); the next call goes on from there."""
        self._clock = max(self._clock, t_end)
        stalls = 0
        while self.now < t_end - 1e-9:
            self._boundary_actions()
            t1, why = self._next_boundary()
            if t1 > t_end + 1e-9:
                t1 = self._grid_floor(t_end)
                if t1 <= self.now + 1e-9:
                    break
            if t1 <= self.now + 1e-12:
                stalls += 1
                if stalls > 3:   # never spin: a decision that is always due is a bug, not a hang
                    raise SimulationError(f"the simulation cannot advance past t = {self.now:.6f} s: {why} "
                                          "is due again and again")
                continue
            stalls = 0
            self._window(self.now, t1)
            self._note_state(self.now, t1)   # the state each second's metric row shows (per_second.py)
            self.now = t1
            n_in_flight = self.in_flight
            if n_in_flight > MAX_IN_FLIGHT:
                self._too_many_in_flight()
            self._few_in_flight = n_in_flight <= LONG_WINDOW_IN_FLIGHT
            closed = math.floor(self.now + 1e-9) - self.metrics.seconds
            if self._holding:   # a second stays open while a request that arrived in it is undecided
                closed = min(closed, self._undecided_from() - self.metrics.seconds)
            if closed > 0:
                self._close_seconds(closed)
        # What is due exactly at the stop (an event at t_end) happens when the run goes on:
        # stopped there, the state is the one its plots describe.

    def _grid_floor(self, t: float) -> float:
        """The last tick of the grid at or before ``t``."""
        return math.floor(t / self.tick_s + 1e-9) * self.tick_s

    def _next_boundary(self) -> tuple[float, str]:
        """The end of the next window and what sets it. Only future decisions count:
        one that is still due after the boundary actions ran would be skipped here."""
        now = self.now
        grid_next = self._grid_floor(now) + self.tick_s
        if self._one_tick:  # least response time, ...: one tick at a time (balanced_window.py says which)
            best = (grid_next, "the tick grid")
        else:
            cap = self._window_cap if self._few_in_flight else min(self._window_cap, SHORT_WINDOW_S)
            best = (max(self._grid_floor(now + cap), grid_next), "the window size")
            if self._mp_cap is not None and self._mp_cap < cap:   # set by a test or a benchmark (blocking.py)
                best = (max(self._grid_floor(now + self._mp_cap), grid_next), "the window cap")

        def consider(t: float, why: str) -> None:
            nonlocal best
            if now + 1e-9 < t < best[0]:
                best = (t, why)

        if self._ev_caches:   # blocking servers in front of a cache decided event by event (blocking_window.py)
            consider(math.floor(now + 1e-9) + 1.0, "a whole second (a cache behind blocking servers)")
        if self._event_pos < len(self._events):
            ev = self._events[self._event_pos]
            consider(ev.at_s, f'the scheduled event at {ev.at_s:g} s ("{ev.node}")')
        consider(self._entry_failover(), "the takeover of a redundant load balancer pair")   # redundancy.py
        for bs in self.balancers:
            if not bs.health.steady(self.stations.up[bs.bal.backends]):
                consider(bs.health.next_check, f'the health checks of "{self.net.node_ids[bs.bal.node_index]}"')
        for node, t in self._timed_database_decisions():
            consider(t, f'the failover or monitoring of database "{self.net.node_ids[node]}"')
        for a in self.scalers:
            name = self.net.node_ids[a.sc.node_index]
            consider(a.next_decision, f'the autoscaler of "{name}"')
            booting = self.stations.ready_at[a.sc.first:a.sc.end]
            if np.isfinite(booting).any():
                consider(float(booting.min()), f'a replica of "{name}" booting')
            drained = self._drain_done(a)
            if drained is not None:
                consider(drained, f'a replica of "{name}" draining')
        return best

    def _too_many_in_flight(self) -> None:
        """Memory stays bounded: stop with one line naming the node that holds the most."""
        st = np.concatenate([p.st for p in self.pending])
        per_node = np.bincount(self.net.st_node[st], minlength=len(self.net.node_ids))
        i = int(per_node.argmax())
        node = f'{self.net.node_kind[i].replace("_", " ")} "{self.net.node_ids[i]}"'
        raise SimulationError(in_flight_message(len(st), node, int(per_node[i]), self.now))

    def fail(self, node_id: str, replica: int | None = None) -> None:
        self._set_node(node_id, replica, up=False)

    def recover(self, node_id: str, replica: int | None = None) -> None:
        self._set_node(node_id, replica, up=True)

    def update_document(self, document: Document) -> None:
        """Take an edited document into a running simulation, keeping time and metrics.

        Requests in flight at stations that still exist stay where they are; those
        at removed stations fail (node_failed)."""
        from .live_update import migrate
        _check_work(document, document.settings["duration_s"])
        migrate(self, document)

    def node_states(self) -> dict[str, NodeState]:
        net = self.net
        waiting, in_system = self._occupancy()
        util = self.metrics.latest("util")    # the last closed second
        util_max = self.metrics.latest("util_max")
        out = {}
        for i, node in enumerate(net.node_ids):
            st = net.node_stations[i]
            st = st[self.stations.provisioned[st]] if len(st) else st   # autoscaled: the replicas that exist
            up = self.stations.up[st]
            out[node] = NodeState(
                utilization=float(util[node]) if node in util and not math.isnan(util[node]) else 0.0,
                queue=float(waiting[st].sum()) if len(st) else 0.0,
                in_system=float(in_system[st].sum()) if len(st) else 0.0,
                throughput_rps=float(self._last_done[i]),
                replicas=max(len(st), 1),
                replicas_up=int(up.sum()) if len(st) else 1,
                failed_replicas=tuple(int(r) for r in net.st_replica[st][self.stations.failed[st]]),
                utilization_max=_last(util_max, node),
            )
        return out

    def edge_flows(self) -> dict[tuple[str, str], float]:
        flows = self.metrics.latest("flow")   # the last closed second
        return {e: float(flows.get(e, 0.0)) for e in self.net.edges}

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
            **({"served_by_table": dict(self._served_by_view)} if self._parts is not None else {}),
            **page_view_totals(self.arrived, served, self._lat_ns_total, self.counts["browser_hits"]),
            **self.metrics.cost_totals(),
        }

    # ----- events and failures ------------------------------------------------------------

    def _count(self, counter: str, times: np.ndarray) -> None:
        if len(times):
            self.counts[counter] += len(times)
            self.ledger.book_count(counter, times)

    def _fail(self, cause: str, times: np.ndarray, keys: np.ndarray | None = None) -> None:
        """Count failures at ``times``; ``keys``: the failed requests (they free held workers)."""
        if len(times):
            if keys is not None and self._holding:
                self._release(keys, times)
            if keys is not None and self._tracer is not None:
                self._tracer.failed(cause, keys, times)
            k = CAUSE_INDEX[cause]
            self.failed_by_cause[k] += len(times)
            self.ledger.book_failed(k, times)
