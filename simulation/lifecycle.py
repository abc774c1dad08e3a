"""What happens at window boundaries: scheduled events, failures and recoveries,
autoscaling decisions, boots and drains, database failover.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import math

import numpy as np

from .request_state import ORPHANED


class Lifecycle:
    def _boundary_actions(self) -> None:
        # While nothing can change, checks are skipped; keep their grid in step first.
        for bs in self.balancers:
            if bs.health.steady(self.stations.up[bs.bal.backends]):
                bs.health.skip_to(self.now + 1e-9)
        if self.net.databases:
            self._monitors_skip()
        while self._event_pos < len(self._events) and self._events[self._event_pos].at_s <= self.now + 1e-9:
            ev = self._events[self._event_pos]
            self._event_pos += 1
            if ev.node in self.net.node_ids:
                self._set_node(ev.node, ev.replica, up=(ev.action == "recover"))
        if self.scalers:
            self._autoscale()
        if self.net.databases:
            self._database_boundary()
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
        self._remove_drained()
        for a in self.scalers:
            if a.next_decision > now + 1e-9:
                continue
            a.next_decision = (math.floor(now / a.sc.interval_s + 1e-9) + 1) * a.sc.interval_s
            recent = self._recent_node_util(a.sc.node_index, int(round(a.sc.interval_s)))
            if len(recent) == 0:
                continue
            u = float(np.nanmean(recent))
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
        self._remove_drained()   # a replica with nothing left to do leaves at once
        self._apply_up()

    def _draining(self) -> np.ndarray:
        st = self.stations
        return np.nonzero(st.provisioned & ~st.registered & st.booted)[0]

    def _remove_drained(self) -> None:
        """Draining replicas whose last request is done leave. Requests still pending
        end at or after now (finished ones left at the end of their window)."""
        draining = self._draining()
        if not len(draining):
            return
        st = self.stations
        busy = np.zeros(self.net.n_stations, dtype=bool)
        for p in self.pending:
            busy[p.st] = True
        if self._holding:   # a blocking server's worker stays held until its request leaves the network
            busy[self._h_st] = True
        empty = draining[~busy[draining]]
        st.provisioned[empty] = False
        st.booted[empty] = False
        st.failed[empty] = False

    def _drain_done(self, a) -> float | None:
        """When the first draining replica of this autoscaler finishes its last request:
        just after that request's end, so that it has left the replica by then. (Before
        2026-12-01 a blocking server's replica left as soon as its own services ended,
        with workers still held for requests downstream, at whichever window boundary
        came next: its server-hours changed with how the run was stepped; fuzz noop 908.)"""
        draining = self._draining()
        draining = draining[(draining >= a.sc.first) & (draining < a.sc.end)]
        if not len(draining):
            return None
        if self._holding and np.isin(draining, self._h_st).any():
            # a worker held for a request downstream: when it is released is known only once
            # that request leaves, so look again at the next tick (the grid: however the run
            # is stepped, the replica leaves at the same tick, at most one tick late)
            return self._grid_floor(self.now) + self.tick_s
        last = np.full(self.net.n_stations, -np.inf)
        for p in self.pending:
            if len(p):
                np.maximum.at(last, p.st, p.fin)
        t = float(last[draining].min())
        return float(np.nextafter(t, np.inf)) if np.isfinite(t) else None
    def _apply_up(self) -> None:
        """Stations that stopped serving lose their requests and their local sessions."""
        st = self.stations
        if self._holding:   # what was decided before the failure is not lost to it (blocking.py)
            self._decide_before_failure(np.flatnonzero(st.up & ~(st.provisioned & st.booted & ~st.failed)))
        down, _ = self.stations.refresh_up(self.now)
        if len(down) == 0:
            return
        self._drop_holds(down)   # blocking servers (blocking.py)
        for lv, batch in enumerate(self.pending):
            hit = np.isin(batch.st, down)
            if hit.any():
                gone = batch.take(hit).users_only()
                self.pending[lv] = batch.take(~hit)
                waited = np.isinf(gone.start)   # undecided at a blocking server: traced only now
                if self._tracer is not None and waited.any():
                    self._tracer.admitted(gone.take(waited), self.net)
                self._fail("node_failed", np.full(len(gone), self.now), gone.key)
        orphan = np.isin(self.sessions, down.astype(np.int32))
        self.sessions[orphan] = ORPHANED
