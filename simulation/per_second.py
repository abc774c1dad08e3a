"""Closing seconds: the ledger's rows become metric rows, all at once.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import numpy as np

from .compiler import SERVER
from .ledger import COUNTERS
from .machines import station_prices
from .page_views import page_view_columns
from .state import CAUSE_INDEX


class PerSecond:
    def _station_prices(self) -> np.ndarray:
        """Dollars per second of each station (its server's price per hour / 3600), per compiled network."""
        cached = getattr(self, "_prices", None)
        if cached is None or cached[0] is not self.net:
            net = self.net
            self._prices = (net, station_prices(self.document, net.node_ids, net.st_node, net.st_kind == SERVER))
        return self._prices[1]

    def _close_seconds(self, k: int) -> None:
        """Turn the ledger's k oldest seconds into metric rows (all at once)."""
        net = self.net
        sec = self.ledger.pop_seconds(k)
        first = self.metrics.seconds + 1
        up = self.stations.up
        n_nodes = len(net.node_ids)
        node_of = net.st_node
        cap = np.bincount(node_of, weights=net.st_workers * up, minlength=n_nodes)
        ups = np.bincount(node_of, weights=up.astype(float), minlength=n_nodes)

        # a node's stations are contiguous and in node order: sum them by segments
        has = self._node_count > 0
        starts = self._node_first[has]

        def per_node(rows: np.ndarray) -> np.ndarray:  # rows × stations -> rows × nodes
            out = np.zeros((k, n_nodes))
            if len(starts):
                out[:, has] = np.add.reduceat(rows, starts, axis=1)
            return out

        busy = per_node(sec["busy"])
        util = np.where(cap > 0, np.minimum(busy / np.where(cap > 0, cap, 1.0), 1.0), 0.0)
        # the busiest replica that is up: a saturated primary is not hidden by idle copies
        st_cap = net.st_workers * up
        with np.errstate(invalid="ignore", divide="ignore"):
            st_util = np.where(st_cap > 0, np.minimum(sec["busy"] / np.where(st_cap > 0, st_cap, 1), 1.0), -np.inf)
        util_max = np.full((k, n_nodes), -np.inf)
        if len(starts):
            util_max[:, has] = np.maximum.reduceat(st_util, starts, axis=1)
        util_max = np.where(np.isfinite(util_max), util_max, 0.0)
        waiting = np.zeros((k, net.n_stations))    # requests waiting at each whole second (engine._snap_waiting)
        snaps = self._queue_snap
        if snaps:
            for r in range(k):
                snap = snaps.pop(first + r, None)
                if snap is not None:
                    waiting[r] = snap
        queue = per_node(waiting)
        self._last_done = per_node(sec["done"].astype(float))[-1]
        keep = [i for i in range(n_nodes) if net.node_kind[i] != "client"]
        nodes = [net.node_ids[i] for i in keep]
        servers_up = float(((net.st_kind == SERVER) & up).sum())
        existing = (net.st_kind == SERVER) & self.stations.provisioned & ~self.stations.failed
        provisioned = float(existing.sum())
        cost_usd = float(self._station_prices()[existing].sum())   # $ per second (machines.py)
        served = sec["served"].astype(float)
        pct = np.full((k, 3), np.nan)   # Metrics sets the percentiles from the exact histograms (_finish_rows)
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
            "cost_usd": np.full(k, cost_usd),
            **{name: sec["counts"][:, i].astype(float) for i, name in enumerate(COUNTERS)},
            **page_view_columns(sec["offered"], sec["served"], sec["lat_sum"], sec["counts"]),
        }
        util, queue, ups, util_max = util[:, keep], queue[:, keep], np.repeat(ups[None, keep], k, axis=0), util_max[:, keep]
        if net.shards:   # each shard (its primary and replicas) of a sharded database as "<node>#<shard>"
            groups = [(a, sd.group) for sd in net.shards for a in (sd.first + sd.group * np.arange(sd.n)).tolist()]
            nodes = nodes + [f"{net.node_ids[sd.node_index]}#{s}" for sd in net.shards for s in range(sd.n)]

            def per_shard(rows: np.ndarray) -> np.ndarray:  # rows × stations -> rows × shards
                return np.stack([rows[..., a:a + g].sum(axis=-1) for a, g in groups], axis=-1)

            g_cap = per_shard(st_cap.astype(float))
            su = np.where(g_cap > 0, np.minimum(per_shard(sec["busy"]) / np.where(g_cap > 0, g_cap, 1.0), 1.0), 0.0)
            util, util_max = np.hstack([util, su]), np.hstack([util_max, su])
            queue = np.hstack([queue, per_shard(waiting)])
            ups = np.hstack([ups, np.repeat(per_shard(up.astype(float))[None, :], k, axis=0)])
        self.metrics.extend(columns, failed, nodes, util, queue, ups, list(net.edges), sec["edges"].astype(float),
                            hist=sec["hist"], lat_ns=sec["lat_sum"], util_max=util_max)
