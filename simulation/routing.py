"""Where finished requests go: load balancers choose a backend (request by request
when they look at connections: exact_balance.py), servers call downstream nodes, caches answer hits,
and the rest are answered.

A part of :class:`simulation.engine.Simulation` (a mixin: it works on the
simulation's own state)."""
from __future__ import annotations

import numpy as np

from .compiler import CACHE, LB, SERVER
from .dispatch import BalancerState, choose_shared
from .exact_balance import LOAD_AWARE_ALL, balance_exact, exact_applies, update_ewma
from .flight import Batch, FLAG_NOT_MODIFIED, FLAG_SESSION_LOST
from .ledger import DenseEdges
from .randomness import CACHE_HIT, CACHE_STALE, ROUTE, uniform

LOAD_AWARE = LOAD_AWARE_ALL   # on the slower path (exact_balance.py says when): decided tick by tick


class _ByTick:
    """The other requests for a deferred balancer's backends (contested.py), handed out
    tick by tick in arrival order: ``upto(k)`` those arriving by the end of tick ``k``."""

    def __init__(self, others: Batch | None, dt: float) -> None:
        self.b = Batch.empty() if others is None else others.take(np.argsort(others.arr, kind="stable"))
        self.tick = np.floor(self.b.arr / dt + 1e-9).astype(np.int64)
        self.i = 0

    def upto(self, k: int) -> Batch:
        j = int(np.searchsorted(self.tick, k, side="right"))
        part, self.i = self.b.take(slice(self.i, j)), max(self.i, j)
        return part

    def back(self, net, inbox: list[list[Batch]] | None) -> None:
        """The ones after the last tick: admitted with their level, as usual."""
        if self.i < len(self.b):
            rest = self.b.take(slice(self.i, len(self.b)))
            for lv in np.unique(net.st_level[rest.st]).tolist():
                inbox[lv].append(rest.take(net.st_level[rest.st] == lv))


class Routing:
    def _route(self, out: Batch, inbox: list[list[Batch]], lb_only: bool = False) -> None:
        """Send finished requests on; ``lb_only``: all of them are at load balancers."""
        net = self.net
        is_lb = None if lb_only else net.st_kind[out.st] == LB
        if lb_only or is_lb.any():
            lb_out, out = (out, Batch.empty()) if lb_only else out.split(is_lb)
            fin = lb_out.fin
            if len(fin) > 1 and (fin[1:] < fin[:-1]).any():
                lb_out = lb_out.take(np.argsort(fin, kind="stable"))
            self._balance(lb_out, inbox)
        if not len(out):
            return
        cont = self._has_route[out.st]
        if ((out.flags & FLAG_NOT_MODIFIED) != 0).any():   # a 304 Not Modified: the server answers without calling the database
            nm = ((out.flags & FLAG_NOT_MODIFIED) != 0) & (net.st_kind[out.st] == SERVER)
            cont &= ~nm
            self._count("not_modified", out.fin[nm])
        hit = np.zeros(len(out), dtype=bool)
        if self._caches:
            at_cache = (net.st_kind[out.st] == CACHE) & (out.cls == 0)
            if self._joins_on and at_cache.any():   # a cache holds items, not joins (table_routing.py)
                at_cache &= ~self._is_join(out)
            if at_cache.any():
                u_hit = uniform(out.key, out.hop, CACHE_HIT)
                u_stale = uniform(out.key, out.hop, CACHE_STALE)
                for st, model in self._caches.items():
                    mine = at_cache & (out.st == st)
                    if not mine.any():
                        continue
                    idx = np.nonzero(mine)[0]
                    sec = np.floor(out.arr[idx]).astype(np.int64)
                    for s in np.unique(sec).tolist():   # the cache as the seconds before s left it
                        part = idx[sec == s] if sec[0] != sec[-1] or (sec != s).any() else idx
                        p_hit, p_stale = model.state_at(s)
                        items = np.minimum(out.item[part], len(p_hit) - 1)
                        h = u_hit[part] < p_hit[items]
                        hit[part] = h
                        stale = h & (u_stale[part] < p_stale[items])
                        self._count("stale_reads", out.fin[part][stale])
        cont &= ~hit
        fwd, end = out.split(cont)
        if len(fwd):
            key = fwd.st + uniform(fwd.key, fwd.hop, ROUTE)   # elementwise: the same numbers as drawn for all
            idx = np.minimum(np.searchsorted(self._route_key, key, side="left"), len(self._route_key) - 1)
            target = self._registered_only(net.route_target[idx], fwd.key, fwd.hop)
            if self._parts is not None:   # only the database that holds the table (table_routing.py)
                target = self._partition_targets(target, fwd)
            if self._sharded:   # the shard that owns the key; cross-shard queries to every shard (sharding.py)
                target, copies, src = self._shard_targets(target, fwd)
                if len(copies):
                    self._flow(src, copies.st, copies.fin)
                    self._deliver(copies, inbox)
            if self._replicated:   # writes to the primary, reads to the copies the proxy believes up
                target = self._database_targets(target, fwd)
                nowhere = target < 0
                if nowhere.any():
                    self._fail("no_healthy_backend", fwd.fin[nowhere], fwd.key[nowhere])
                    fwd, target = fwd.take(~nowhere), target[~nowhere]
            self._flow(fwd.st, target, fwd.fin)
            nxt = fwd.forward(target)
            self._deliver(nxt, inbox)
        if self._joins_on:   # a join's first query answered: its second one now (table_routing.py)
            end = self._join_onward(end, inbox)
        self._finish(end)
    def _flow(self, src_st: np.ndarray, dst_st: np.ndarray, times: np.ndarray) -> None:
        lookup = self._node_edge
        st_node = self.net.st_node
        if isinstance(lookup, DenseEdges) and self.ledger.book_flows(lookup.table, st_node, src_st, dst_st, times):
            return   # one compiled pass
        self.ledger.book_edges(lookup[st_node[src_st], st_node[dst_st]], times)
    def _balance(self, out: Batch, inbox: list[list[Batch]], others: Batch | None = None,
                 peers: list[int] | None = None) -> None:
        """Route requests finishing at balancers. ``others`` (with ``peers``, the balancers
        that choose together): the window's other requests for their backends, admitted
        in time order with theirs (contested.py)."""
        if self._ev_bal is not None:   # chosen in the blocking servers' event window (balanced_window.py)
            out = self._divert(out)
            if not len(out):
                return
        net = self.net
        several = len(self.balancers) > 1
        which = net.st_balancer[out.st] if several else None
        present = np.unique(which).tolist() if several else [0]
        # how they decide: by the balancers that can have requests in this window, not by the
        # ones that had (a window in which one of them had none decided otherwise: the
        # numbers changed with how the run was stepped)
        if peers is None:
            peers = self._peers(present) if several else present
            at = self._defer_level(peers)
            if at is not None:   # their backends have other senders: choose with them (contested.py)
                self._deferred.setdefault(at, []).append((out, peers))
                return
        if any(self.balancers[b].bal.algorithm in LOAD_AWARE_ALL for b in peers) and exact_applies(self, peers):
            which = net.st_balancer[out.st] if which is None else which
            balance_exact(self, out, which, present, others)   # request by request (exact_balance.py)
            return
        if len(self.balancers) > 1 and self._together(peers):
            self._balance_together(out, which, others, inbox)
            return
        shared = self._shared_jars(peers) if several else {}
        done: set[int] = set()
        for bi in (np.unique(which) if len(self.balancers) > 1 else (0,)):
            if int(bi) in done:
                continue
            bs = self.balancers[int(bi)]
            group = shared.get(int(bi))
            if group is not None:   # blind sticky balancers sharing cookies: together, in time order
                done.update(group)
                self._balance_shared(out.take(np.isin(which, group)), group, inbox)
                continue
            mine = out.take(which == bi) if len(self.balancers) > 1 else out
            backends = bs.bal.backends
            if bs.bal.algorithm in LOAD_AWARE:
                self._balance_by_tick(bs, mine, others, inbox)
                continue
            pos = bs.choose(mine.user, mine.key, mine.hop, None, None, int(round(self.now / self.tick_s)),
                            self.stations.registered[backends])
            none = pos < 0
            if none.any():
                self._fail("no_healthy_backend", mine.fin[none], mine.key[none])
                mine = mine.take(~none)
                pos = pos[~none]
            target = backends[pos]
            edges = self._edges_to_backends(int(bi))
            if edges is None:
                self._flow(mine.st, target, mine.fin)
            else:   # the same edge numbers as _flow, looked up once per backend instead of per request
                self.ledger.book_edges(edges[pos], mine.fin)
            levels = net.st_level[backends]
            if len(mine) and (levels == levels[0]).all():   # the backends are on one level (as usual)
                inbox[int(levels[0])].append(mine.forward(target))
            else:
                self._deliver(mine.forward(target), inbox)
    def _edges_to_backends(self, bi: int) -> np.ndarray | None:
        """Balancer ``bi``'s edge (number, or -1) to each backend position, when all its
        stations are on its own node (else None: ``_flow`` looks them up per request)."""
        cache = self.__dict__.get("_backend_edges")
        if cache is None or cache[0] is not self.net:
            cache = self._backend_edges = (self.net, {})
        if bi not in cache[1]:
            net, bal = self.net, self.balancers[bi].bal
            own = np.flatnonzero(net.st_balancer == bi)
            src = np.full(len(bal.backends), bal.node_index, dtype=np.int64)
            cache[1][bi] = (np.ascontiguousarray(self._node_edge[src, net.st_node[bal.backends]], dtype=np.int64)
                            if len(own) and (net.st_node[own] == bal.node_index).all() else None)
        return cache[1][bi]

    def _peers(self, present: list[int]) -> list[int]:
        """The balancers (indices) at the levels of those ``present`` that requests reach:
        the ones whose requests a window's pass can hold together."""
        net = self.net
        cache = self.__dict__.get("_peer_levels")
        if cache is None or cache[0] is not net:
            reached = net.reached()
            by_level: dict[int, list[int]] = {}
            for i, b in enumerate(self.balancers):
                if reached[b.bal.station]:
                    by_level.setdefault(int(net.st_level[b.bal.station]), []).append(i)
            cache = self._peer_levels = (net, by_level)
        levels = {int(net.st_level[self.balancers[b].bal.station]) for b in present}
        return sorted(set(present).union(*(cache[1].get(lv, ()) for lv in levels)))

    def _together(self, peers: list[int]) -> bool:
        """Whether these balancers must decide together, tick by tick: a load-aware one
        among several (its connection counts must see the others' requests in time order)."""
        return len(peers) > 1 and any(self.balancers[int(b)].bal.algorithm in LOAD_AWARE for b in peers)

    def _shared_jars(self, peers: list[int]) -> dict[int, list[int]]:
        """Blind sticky balancers among ``peers`` that share their users' cookies: each
        one's group (of two or more)."""
        jars: dict[int, list[int]] = {}
        for b in peers:
            bs = self.balancers[int(b)]
            if bs.cookie is not None:
                jars.setdefault(id(bs.cookie), []).append(int(b))
        return {b: g for g in jars.values() if len(g) > 1 for b in g}

    def _balance_shared(self, out: Batch, group: list[int], inbox: list[list[Batch]]) -> None:
        """Blind sticky balancers sharing their users' cookies decide request by request in
        time order (dispatch.choose_shared): a user's first request pins them for the
        others, whichever balancer gets it, however the window is cut (before 2026-11-30
        they decided tick by tick: the numbers changed with ``tick_ms``)."""
        net = self.net
        out = out.take(np.lexsort((out.key, out.fin)))
        which = np.searchsorted(np.asarray(group), net.st_balancer[out.st])
        states = [self.balancers[b] for b in group]
        target = choose_shared(states, which, out.user, out.key, out.hop,
                               [self.stations.registered[bs.bal.backends] for bs in states])
        none = target < 0
        if none.any():
            self._fail("no_healthy_backend", out.fin[none], out.key[none])
            out, target = out.take(~none), target[~none]
        if len(out):
            self._flow(out.st, target, out.fin)
            self._deliver(out.forward(target), inbox)

    def _balance_together(self, out: Batch, which: np.ndarray, others: Batch | None = None,
                          inbox: list[list[Batch]] | None = None) -> None:
        """Several balancers, tick by tick: each decides for its requests of the tick
        (load-aware ones with the connection counts at the tick's start), then the
        tick's requests of all of them are admitted at once, in time order. Windows end
        on the tick grid, so nothing here depends on how the run was sliced. ``others``:
        the window's other requests for their backends, admitted with the ticks they
        arrive in (contested.py); those after the last tick go back to ``inbox``."""
        dt = self.tick_s
        tick = np.floor(out.fin / dt + 1e-9).astype(np.int64)
        cuts = np.flatnonzero(np.diff(tick)) + 1
        rest = _ByTick(others, dt)
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(out)]):
            chunk = out.take(slice(int(a), int(b)))
            w = which[int(a):int(b)]
            o = np.lexsort((chunk.key, chunk.fin))   # in time order (ties by key), whatever the nodes' order
            chunk, w = chunk.take(o), w[o]
            k = int(tick[a])
            self._admit_now(rest.upto(k - 1))   # the others of earlier ticks count at this one's start
            forwarded = []
            # each balancer decides its stretch of consecutive requests in turn, in time order:
            # a user's first request pins them (sticky cookies shared by the balancers) for their
            # next ones at the other balancer in the same tick (before 2026-12-01 the balancers
            # went in the order of the nodes in the file, which changed the numbers; fuzz order 670)
            runs = np.flatnonzero(np.diff(w)) + 1
            for ra, rb in zip(np.r_[0, runs].tolist(), np.r_[runs, len(w)].tolist()):
                bi = int(w[ra])
                bs = self.balancers[bi]
                mine = chunk.take(slice(ra, rb))
                backends = bs.bal.backends
                conn = lat = None
                if bs.bal.algorithm in LOAD_AWARE:
                    conn, lat = self._tick_view(bi, k, backends)
                pos = bs.choose(mine.user, mine.key, mine.hop, conn, lat, k, self.stations.registered[backends])
                none = pos < 0
                if none.any():
                    self._fail("no_healthy_backend", mine.fin[none], mine.key[none])
                    mine, pos = mine.take(~none), pos[~none]
                if len(mine):
                    if bs.bal.algorithm in LOAD_AWARE:
                        self._placed_in_tick(bi, pos, len(backends))
                    target = backends[pos]
                    self._flow(mine.st, target, mine.fin)
                    forwarded.append(mine.forward(target))
            forwarded.append(rest.upto(k))
            self._admit_now(Batch.concat(forwarded))
        rest.back(self.net, inbox)

    def _tick_view(self, bi: int, k: int, backends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What balancer ``bi`` sees of ``backends`` on the slower path in tick ``k``: the
        connections at the tick's start (behind blocking servers, counted as the one-tick
        window began: ``_conn_start``) plus those it placed earlier in the tick (each
        algorithm counts each placement, as the compiled pass does), and the response times as the window began. The blocking servers' sweeps may
        route a tick's requests in several calls, as their horizons fall: split so, the
        choices are those of one call (before 2026-12-01 a later call saw neither the
        earlier placements, which the sweeps admit later, nor the same response times,
        and an edit that changed nothing, moving those horizons, changed the numbers)."""
        memo = self.__dict__.get("_tick_memo")
        if memo is None or memo[0] != k or memo[1] is not self.net:
            memo = self._tick_memo = (k, self.net, {})
        placed = memo[2].get(bi)
        snap = self.__dict__.get("_conn_start")
        if snap is not None and snap[1] is self.net and abs(snap[0] - k * self.tick_s) < 1e-9:
            conn = snap[2][backends]   # as the window (this tick) began: the sweeps settle on
        else:                          # while they route, and a settled request leaves pending
            conn = self._connections_at(k * self.tick_s, backends)
        if placed is not None:
            conn = conn + placed
        start = self.__dict__.get("_ewma_start")
        lat = (start if start is not None and len(start) == len(self.ewma) else self.ewma)[backends]
        return conn, lat

    def _placed_in_tick(self, bi: int, pos: np.ndarray, n: int) -> None:
        """Balancer ``bi`` placed requests at positions ``pos`` of its ``n`` backends (``_tick_view``)."""
        placed = self._tick_memo[2].setdefault(bi, np.zeros(n))
        placed += np.bincount(pos, minlength=n)

    def _connections_at(self, tau: float, backends: np.ndarray) -> np.ndarray:
        """Requests in each backend (waiting or in service) at time ``tau``."""
        net = self.net
        conn = np.zeros(net.n_stations)
        for lv in np.unique(net.st_level[backends]):
            p = self.pending[int(lv)]
            if len(p):
                conn += np.bincount(p.st, weights=((p.arr <= tau) & (p.fin > tau)).astype(float),
                                    minlength=net.n_stations)
        if self._holding:
            conn += self._held_count(tau)
        return conn[backends]

    def _balance_by_tick(self, bs: BalancerState, out: Batch, others: Batch | None = None,
                         inbox: list[list[Batch]] | None = None) -> None:
        """The slower path of the load-aware balancers (exact_balance.py says when): decide
        tick by tick with the connection counts at the start of each tick (plus the
        requests placed in the tick), and admit each tick's requests at once, so the next
        tick's counts include them. ``others``: as ``_balance_together``."""
        net = self.net
        backends = bs.bal.backends
        bi = int(net.st_balancer[bs.bal.station])
        dt = self.tick_s
        tick = np.floor(out.fin / dt + 1e-9).astype(np.int64)
        cuts = np.flatnonzero(np.diff(tick)) + 1
        rest = _ByTick(others, dt)
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(out)]):
            mine = out.take(slice(int(a), int(b)))
            k = int(tick[a])
            self._admit_now(rest.upto(k - 1))   # the others of earlier ticks count at this one's start
            conn, lat = self._tick_view(bi, k, backends)
            pos = bs.choose(mine.user, mine.key, mine.hop, conn, lat, k, self.stations.registered[backends])
            none = pos < 0
            if none.any():
                self._fail("no_healthy_backend", mine.fin[none], mine.key[none])
                mine = mine.take(~none)
                pos = pos[~none]
            if len(mine):
                self._placed_in_tick(bi, pos, len(backends))
                target = backends[pos]
                self._flow(mine.st, target, mine.fin)
                mine = mine.forward(target)
            self._admit_now(Batch.concat([mine, rest.upto(k)]))
        rest.back(net, inbox)
    def _admit_now(self, batch: Batch) -> None:
        """Admit requests at their stations right away (they join the pending requests)."""
        self._admit_all(batch, take_checks=True)

    def _admit_all(self, batch: Batch, take_checks: bool = False) -> None:
        """Admit requests at their stations right away, with the health checks due there
        by then (``take_checks``) or with the ones the batch holds."""
        if not len(batch):
            return
        lv_of = self.net.st_level[batch.st]
        for lv in np.unique(lv_of):
            lv = int(lv)
            part = batch if len(np.unique(lv_of)) == 1 else batch.take(lv_of == lv)
            if take_checks and not (self._holding and lv >= self._lb):
                part = Batch.concat([part, self._due_checks(lv, float(part.arr.max()), part.st)])   # checks due by now
            if self._holding and lv >= self._lb:   # blocking servers admit in their sweeps (blocking.py)
                self._cur_inbox[lv].append(part)
                continue
            admitted, full, down = self._admit_users(part, self._in_system(lv))
            full, down = full.users_only(), down.users_only()
            self._fail("queue_full", full.arr, full.key)
            self._fail("backend_down", down.arr, down.key)
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
        if self._holding:
            total += self._held_count(self.now)
        return waiting, total
    def _deliver(self, batch: Batch, inbox: list[list[Batch]]) -> None:
        if not len(batch):
            return
        lv = self.net.st_level[batch.st]
        if (lv == lv[0]).all():
            inbox[int(lv[0])].append(batch)
            return
        for level in np.unique(lv):
            inbox[int(level)].append(batch.take(lv == level))
    def _finish(self, done: Batch) -> None:
        if not len(done):
            return
        if self._holding:
            self._release(done.key, done.fin)
        lost = (done.flags & FLAG_SESSION_LOST) != 0
        if self._tracer is not None:
            self._tracer.answered(done.key, done.fin, lost)
        if lost.any():
            self._fail("session_lost", done.fin[lost])
            done = done.take(~lost)
        n = len(done)
        if n == 0:
            return
        lat = done.fin - done.birth
        if self._parts is not None:   # served per table (table_routing.py)
            self._count_tables(done)
        self.served += n
        self._lat_ns_total += self.ledger.book_answered(done.fin, lat, self._hist_total)
    def _update_ewma(self, out: Batch) -> None:
        """Recent response time per station (for least_response_time): each response
        into its station's EWMA when it completes, in time order (exact_balance.py)."""
        update_ewma(self, out)
    def _forget_cache_states(self) -> None:
        """Cache states older than any request still waiting at the cache are not needed."""
        for st, model in self._caches.items():
            p = self.pending[int(self.net.st_level[st])]
            mine = p.arr[p.st == st] if len(p) else p.arr
            oldest = float(mine.min()) if len(mine) else self.now
            model.forget_before(int(np.floor(min(oldest, self.now))) - 1)
