"""Closing seconds: the ledger's rows become metric rows, all at once.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import math

import numpy as np

from .compiler import SERVER
from .ledger import COUNTERS
from .machines import station_prices
from .state import CAUSE_INDEX


class PerSecond:
    def _station_prices(self) -> np.ndarray:
        """Dollars per second of each station (its server's price per hour / 3600), per compiled network."""
        cached = getattr(self, "_prices", None)
        if cached is None or cached[0] is not self.net:
            net = self.net
            self._prices = (net, station_prices(self.document, net.node_ids, net.st_node, net.st_kind == SERVER))
        return self._prices[1]

    def _net_rows(self) -> tuple[np.ndarray, list[str], list, np.ndarray]:
        """Per compiled network: the nodes that get metric rows (not clients), their ids, the
        edges, and which stations are servers."""
        cached = getattr(self, "_rows_of_net", None)
        if cached is None or cached[0] is not self.net:
            net = self.net
            keep = [i for i in range(len(net.node_ids)) if net.node_kind[i] != "client"]
            self._rows_of_net = (net, (np.array(keep, dtype=np.int64), [net.node_ids[i] for i in keep], list(net.edges),
                                       net.st_kind == SERVER))
        return self._rows_of_net[1]

    def _note_state(self, t0: float, t1: float) -> None:
        """The stations that served during the window [t0, t1) (and the servers that
        existed, for the cost): each second it overlaps keeps the state of its last window,
        whenever it is closed (a second stays open while a request that arrived in it is
        undecided at a blocking server, past failures and boots that change the state)."""
        st = self.stations
        snap = (st.up.copy(), st.provisioned & ~st.failed)
        for sec in range(int(np.floor(t0 + 1e-9)), int(np.ceil(t1 - 1e-9))):
            self._state_snap[sec] = snap

    def _states_of(self, first: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(up, existing) per station for the rows first … first + k - 1 (k × stations; row s
        is the second [s - 1, s)): as ``_note_state`` kept them, else as now."""
        st = self.stations
        now = (st.up, st.provisioned & ~st.failed)
        rows = [self._state_snap.pop(first - 1 + i, now) for i in range(k)]   # (a live edit re-indexes them)
        return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])

    def _per_node(self, rows: np.ndarray) -> np.ndarray:
        """Rows × stations summed into rows × nodes (a node's stations are contiguous and in
        node order: sums by segments; nodes without stations get 0)."""
        out = np.zeros((rows.shape[0], len(self.net.node_ids)))
        has = self._node_count > 0
        if has.any():
            out[:, has] = np.add.reduceat(rows, self._node_first[has], axis=1)
        return out

    def _node_util(self, busy: np.ndarray, up_rows: np.ndarray) -> np.ndarray:
        """Each node's utilization per second (rows × nodes) from its stations' busy seconds
        and which of them were up (rows × stations): busy time over the workers up, at most 1."""
        cap = self._per_node((self.net.st_workers * up_rows).astype(float))
        total = self._per_node(busy)
        return np.where(cap > 0, np.minimum(total / np.where(cap > 0, cap, 1.0), 1.0), 0.0)

    def _recent_node_util(self, node_index: int, seconds: int) -> np.ndarray:
        """A node's utilization in each of the last ``seconds`` whole seconds before now (fewer
        if the run is younger): the closed seconds' rows, and the seconds still open (a
        request that arrived in them is undecided at a blocking server) as their rows will
        show them, from the busy time booked so far and the state each second kept. A
        second before now has all its busy time booked whichever way the engine decides a
        blocking tier (event by event or in sweeps), while how many seconds it has closed
        differs: so the autoscaler, which reads this, decides the same on both."""
        end = int(np.floor(self.now + 1e-9))
        k = min(max(int(seconds), 1), end)
        closed = self.metrics.seconds
        first_open = max(closed, end - k)
        old = self.metrics.recent_util(self.net.node_ids[node_index], closed - (end - k)) \
            if end - k < closed else np.zeros(0)
        if first_open >= end:
            return np.asarray(old, dtype=float)
        st, n = self.stations, self.net.n_stations
        led = self.ledger
        busy = np.zeros((end - first_open, n))
        have = led.busy[first_open - led.base:end - led.base]   # (the ledger's base is the first open second)
        busy[:len(have)] = have / 1e9                            # (rows it has not grown to are idle)
        up = np.array([self._state_snap.get(s, (st.up, None))[0] for s in range(first_open, end)])
        return np.concatenate([old, self._node_util(busy, up)[:, node_index]])

    def _close_seconds(self, k: int) -> None:
        """Turn the ledger's k oldest seconds into metric rows (all at once)."""
        net = self.net
        sec = self.ledger.pop_seconds(k)
        sec["busy"] = sec["busy"] / 1e9   # seconds (booked in nanoseconds)
        first = self.metrics.seconds + 1
        if self._holding and len(self._room_keys):   # requests waiting undecided in their rooms (blocking_rooms.py)
            self._snap_room(first, k)
        up_rows, exist_rows = self._states_of(first, k)
        n_nodes = len(net.node_ids)
        st_cap = net.st_workers * up_rows                       # k × stations: each second's own state

        has = self._node_count > 0
        starts = self._node_first[has]
        ups = self._per_node(up_rows.astype(float))
        util = self._node_util(sec["busy"], up_rows)
        # the busiest replica that is up: a saturated primary is not hidden by idle copies
        with np.errstate(invalid="ignore", divide="ignore"):
            st_util = np.where(st_cap > 0, np.minimum(sec["busy"] / np.where(st_cap > 0, st_cap, 1), 1.0), -np.inf)
        util_max = np.full((k, n_nodes), -np.inf)
        if len(starts):
            util_max[:, has] = np.maximum.reduceat(st_util, starts, axis=1)
        util_max = np.where(np.isfinite(util_max), util_max, 0.0)
        # requests waiting at each whole second (engine._snap_waiting)
        none, pop = np.zeros(net.n_stations), self._queue_snap.pop
        waiting = np.array([pop(s, none) for s in range(first, first + k)], dtype=float).reshape(k, net.n_stations)
        queue = self._per_node(waiting)
        self._last_done = np.zeros(n_nodes)      # the last second's completions per node
        if len(starts):
            self._last_done[has] = np.add.reduceat(sec["done"][-1].astype(float), starts)
        keep, nodes, edges, is_server = self._net_rows()
        servers_up = (is_server & up_rows).sum(axis=1).astype(float)
        existing = is_server & exist_rows
        provisioned = existing.sum(axis=1).astype(float)
        prices = self._station_prices()
        # $ per second (machines.py); fsum: exactly rounded, so the same whatever the nodes' order
        cost_usd = np.array([math.fsum(prices[row].tolist()) for row in existing])
        offered = sec["offered"].astype(float)
        failed = sec["failed"].astype(float)
        counts = sec["counts"].astype(float)
        # Metrics sets the percentiles, means and shares from the exact histograms and sums (_finish_rows)
        later = np.full(k, np.nan)
        columns = {
            "time_s": np.arange(first, first + k, dtype=float),
            "offered_rps": offered,
            "served_rps": sec["served"].astype(float),
            "failed_rps": failed.sum(axis=1),
            "p50_ms": later, "p95_ms": later, "p99_ms": later, "mean_ms": later,
            "active_servers": servers_up,
            "sessions_lost": failed[:, CAUSE_INDEX["session_lost"]],
            "cost_server_s": provisioned,
            "cost_usd": cost_usd,
            **{name: counts[:, i] for i, name in enumerate(COUNTERS)},
            "page_views": offered + counts[:, COUNTERS.index("browser_hits")],   # as page_views.page_view_columns
            "page_view_mean_ms": later, "browser_hit_share": later,
        }
        util, queue, ups, util_max = util[:, keep], queue[:, keep], ups[:, keep], util_max[:, keep]
        if net.shards:   # each shard (its primary and replicas) of a sharded database as "<node>#<shard>"
            groups = [(a, sd.group) for sd in net.shards for a in (sd.first + sd.group * np.arange(sd.n)).tolist()]
            nodes = nodes + [f"{net.node_ids[sd.node_index]}#{s}" for sd in net.shards for s in range(sd.n)]

            def per_shard(rows: np.ndarray) -> np.ndarray:  # rows × stations -> rows × shards
                return np.stack([rows[..., a:a + g].sum(axis=-1) for a, g in groups], axis=-1)

            g_cap = per_shard(st_cap.astype(float))
            su = np.where(g_cap > 0, np.minimum(per_shard(sec["busy"]) / np.where(g_cap > 0, g_cap, 1.0), 1.0), 0.0)
            util, util_max = np.hstack([util, su]), np.hstack([util_max, su])
            queue = np.hstack([queue, per_shard(waiting)])
            ups = np.hstack([ups, per_shard(up_rows.astype(float))])
        self.metrics.extend(columns, failed, nodes, util, queue, ups, edges, sec["edges"].astype(float),
                            hist=sec["hist"], lat_ns=sec["lat_sum"], util_max=util_max)
