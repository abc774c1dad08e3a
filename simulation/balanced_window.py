"""Load-aware balancers in front of blocking servers, request by request (balanced_events.py).

A part of :class:`simulation.blocking.Blocking`. When least-connections or power-of-two
balancers feed a tier of blocking servers B that the event window can follow
(``_event_depth``), their requests are not routed when they leave the balancer: the
window's kernel chooses each one's backend at that instant, with the requests in
progress at each backend then (those that wait, are served, or are held by their calls
downstream), in one discrete-event pass over the window. Windows then need not be one
tick long, and the choices do not depend on the tick. This module decides whether a
topology qualifies, keeps the balancers' requests aside (``_divert``), builds the
kernel's inputs and commits its results through ``_commit_events``, the event window's.

Qualifies: the balancers in front of B are load-aware (least connections, least response
time, power of two; sticky or not) or blind without sticky cookies (they route as usual);
the stations at B's level (B, and servers beside them that do not block: their requests
hold nothing once served there) share one set of downstream routes and
one way of keeping sessions (in memory only when every user request reaches B through
the load-aware balancers: the sessions then move in each user's arrival order once they
chose, ``_sessions_follow``); and the event window takes the tier. Else the
balancers keep the tick-by-tick path (routing.py) in one-tick windows.
``SCALELAB_BLOCKING_EVENTS=0`` turns both off.
"""
from __future__ import annotations

import numpy as np

from .balanced_events import ALGO_LC, ALGO_LRT, ALGO_P2C, NO_BACKEND, balanced_events
from .admission_kernel import DOWN, QUEUE_FULL
from .blocking_events import TIE
from .compiler import SimulationError
from .exact_balance import _ewma_upto, exact_applies
from .flight import FLAG_CHECK, FLAG_TIMEOUT, Batch
from .journey_groups import JourneyGroups
from .randomness import PICK, PICK2, TIE as TIE_SALT, uniform

ALGOS = {"least_connections": ALGO_LC, "least_response_time": ALGO_LRT, "power_of_two": ALGO_P2C}


def lrt_on_the_slow_path(sim) -> bool:
    """Whether a least-response-time balancer decides on the tick-by-tick path
    (exact_balance.exact_applies says when: a sticky one sharing its users' cookies with a
    blind one, one beside a blind sticky one, ...; before 2026-12-01 caches behind it too) in
    front of backends that no blocking tier's pass decides: it reads the response times as
    of the window's start, so its windows must be one tick long (a window cut where a
    run was stopped gave other choices: the numbers changed with how the run was
    stepped; before 2026-11-30 only the first of these cases had one-tick windows)."""
    net = sim.net
    reached = net.reached()
    for i, bs in enumerate(sim.balancers):
        if bs.bal.algorithm != "least_response_time" or not reached[bs.bal.station]:
            continue
        if sim._holding and (net.st_level[bs.bal.backends] >= sim._lb).any():
            continue   # in front of or behind blocking servers: _balanced_setup decides
        if not exact_applies(sim, sim._peers([i])):
            return True
    return False


class BalancedWindow(JourneyGroups):
    def _balanced_setup(self) -> None:
        """Which balancers choose inside the event window (``self._ev_bal``: their indices,
        or None), and whether windows must still be one tick long (``self._one_tick``)."""
        net, st = self.net, self.stations
        self._ev_bal = None
        self._ev_lb_out = []
        in_front = [i for i, bs in enumerate(self.balancers) if st.hold[bs.bal.backends].any()]
        aware = [i for i in in_front if self.balancers[i].bal.algorithm in ALGOS]
        if aware and self._ev_depth is not None and not self._ev_choice and self._balanced_shape(in_front):
            self._ev_bal = np.asarray(aware, dtype=np.int64)   # blind ones route as usual, before
        # tiers of blocking servers downstream: only this pass follows them (blocking_window._event_depth)
        self._ev_des = self._ev_bal is not None or (self._ev_depth is not None and self._ev_chain is not None)
        # one-tick windows only for what still needs them: least response time on the slower
        # path (lrt_on_the_slow_path), load-aware balancers in front of blocking servers or downstream of them that do
        # not choose here
        aware = ("least_connections", "power_of_two", "least_response_time")
        chosen_here = set(self._ev_bal.tolist()) if self._ev_bal is not None else set()
        chosen_here |= set(self._ev_choice)   # downstream, in the event window (choice_hops.py)
        self._one_tick = (
            lrt_on_the_slow_path(self) or self.needs_one_tick()
            or any(bs.bal.algorithm in aware and i not in chosen_here and net.reached()[bs.bal.station]
                   and (net.st_level[bs.bal.backends] >= self._lb).any() for i, bs in enumerate(self.balancers)))

    def _balanced_shape(self, in_front: list[int]) -> bool:
        net = self.net
        lb = self._lb
        if self._local_hold.any() and not self._sessions_follow(in_front):
            return False
        for i in in_front:   # a blind one with sticky cookies: the tick-by-tick path (routing.py)
            bs = self.balancers[i]
            if bs.cookie is not None and bs.bal.algorithm not in ALGOS:
                return False
            if (net.st_level[bs.bal.backends] != lb).any():
                return False
        # with tiers of blocking servers downstream, one journey whichever backend is chosen:
        # the same routes, and sessions in the database at all or none (sessions in memory or
        # in cookies change no journey: the ones in memory move in each user's order at
        # commit, at those servers only); else one per group (journey_groups.py)
        return self._ev_chain is None or len(self._journey_groups()[1]) == 1

    def _sessions_follow(self, in_front: list[int]) -> bool:
        """Sessions in the blocking servers' memory: the pass can move them (in each user's
        arrival order, once the balancers chose) when every user request reaches those
        servers through the load-aware balancers it decides for: no blind balancer, no
        call and no client straight to them."""
        net = self.net
        b_st = net.levels[self._lb]
        if any(self.balancers[i].bal.algorithm not in ALGOS for i in in_front):
            return False
        rows = np.repeat(np.arange(net.n_stations), np.diff(net.route_ptr))
        if np.isin(net.route_target[net.reached()[rows]], b_st).any():
            return False
        return not any(np.isin(net.node_stations[node], b_st).any() for c in net.clients for node in c.entries)

    def _divert(self, out: Batch) -> Batch:
        """Keep aside the requests leaving the balancers that choose in the event window;
        returns the others."""
        which = self.net.st_balancer[out.st]
        mine = np.isin(which, self._ev_bal)
        if not mine.any():
            return out
        self._ev_lb_out.append(out.take(mine))
        return out.take(~mine)

    def _route_diverted(self) -> None:
        """The fallback: route the requests kept aside tick by tick (routing.py)."""
        kept, self._ev_lb_out = self._ev_lb_out, []
        if not kept:
            return
        out = Batch.concat(kept)
        out = out.take(np.argsort(out.fin, kind="stable"))
        which = self.net.st_balancer[out.st]
        for bi in np.unique(which).tolist():
            self._balance_by_tick(self.balancers[int(bi)], out.take(which == bi))

    def _balanced_window(self, t0: float, t1: float, inbox: list[list[Batch]], marks: list[float]) -> bool:
        """Decide the window with the balancers' choices (see the module docstring); False
        (nothing changed) when the kernel cannot: the caller routes the requests kept
        aside tick by tick and takes the other paths."""
        lv = self._lb
        st, net = self.stations, self.net
        pend = self.pending[lv]
        waiting = np.isinf(pend.start) if len(pend) else np.zeros(0, dtype=bool)
        every = self._event_candidates(pend, waiting, inbox, t1)
        lbq = Batch.concat(self._ev_lb_out) if self._ev_lb_out else Batch.empty()
        bal_of = net.st_balancer[lbq.st] if len(lbq) else np.zeros(0, dtype=np.int64)
        bals = self._ev_bal.tolist() if self._ev_bal is not None else []
        pos = {int(b): k for k, b in enumerate(bals)}
        cand_lists = []
        for b in bals:
            bs = self.balancers[b]
            cand_lists.append(bs.bal.backends[bs.candidates(st.registered[bs.bal.backends])].astype(np.int64))
        placeholder = np.array([c[0] if len(c) else self.balancers[b].bal.backends[0]
                                for b, c in zip(bals, cand_lists)], dtype=np.int64)
        local_bal = np.array([pos[int(b)] for b in bal_of], dtype=np.int64)
        fwd = lbq.forward(placeholder[local_bal]) if len(lbq) else Batch.empty()
        # the kernel's order: those waiting at B since before, by station and arrival; then every
        # arrival by time and key
        queued = every.arr < t0
        n_q = int(queued.sum())
        allc = Batch.concat([every, fwd])
        is_lb = np.r_[np.zeros(len(every), dtype=bool), np.ones(len(fwd), dtype=bool)]
        q_idx = np.flatnonzero(np.r_[queued, np.zeros(len(fwd), dtype=bool)])
        q_idx = q_idx[np.lexsort((allc.key[q_idx], allc.arr[q_idx], allc.st[q_idx]))]
        a_idx = np.flatnonzero(~np.r_[queued, np.zeros(len(fwd), dtype=bool)])
        a_idx = a_idx[np.lexsort((allc.key[a_idx], allc.arr[a_idx]))]
        perm = np.r_[q_idx, a_idx].astype(np.int64)
        cand = allc.take(perm)
        lb_row = is_lb[perm]
        busy = pend.take(~waiting)
        inputs = self._event_inputs(cand, busy, t1)
        if inputs is None:
            return False
        (_, c_held, c_down, e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, _, free, done_entry,
         done_t, parts, _, e_delay) = inputs
        names = ("e_t", "e_key", "e_bst", "e_bw", "e_entry", "jp", "js", "ja_first", "ja_n", "parts", "e_delay")
        # backends whose journeys differ: one per group (journey_groups.py; with tiers downstream, one)
        e = dict(zip(names, (e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, parts, e_delay)),
                 c_down=c_down)
        own = lb_row if self._ev_chain is None else np.zeros(len(cand), dtype=bool)
        jgrp, alt_row, alt_down = self._alt_journeys(cand, own, t1, e)
        e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, parts, e_delay = (e[k] for k in names)
        # services at each kind of backend (stations alike in means and behaviour share a column)
        b_st = np.flatnonzero(st.hold | (net.st_level == lv))   # B, a second tier, servers beside B
        sig = np.stack([net.st_mean_read[b_st], net.st_mean_write[b_st], net.st_deterministic[b_st].astype(float),
                        net.st_nm_cost[b_st]], axis=1)
        _, rep_pos, g_of = np.unique(sig, axis=0, return_index=True, return_inverse=True)
        grp = np.zeros(net.n_stations, dtype=np.int64)
        grp[b_st] = np.asarray(g_of).ravel()
        n = len(cand)
        c_svc = np.zeros((n, len(rep_pos)), dtype=np.int64)
        for g, p in enumerate(rep_pos.tolist()):
            if n:
                alike = cand.take(np.arange(n))
                alike.st = np.full(n, b_st[p], dtype=cand.st.dtype)
                c_svc[:, g] = st._service_ns(alike, b_st[p:p + 1])
        c_st = np.where(lb_row, -1, cand.st).astype(np.int64)
        leads = self._sticky_rows(cand, lb_row, c_st, perm[lb_row] - len(every), bal_of, bals, cand_lists)
        c_bal = np.zeros(n, dtype=np.int64)
        c_bal[lb_row] = local_bal[perm[lb_row] - len(every)]
        u = [np.zeros(n) for _ in range(3)]
        if lb_row.any():   # the draws of least_choice.py: of the request as it leaves its balancer
            k, h = cand.key[lb_row], cand.hop[lb_row] - 1
            for arr, salt in zip(u, (TIE_SALT, PICK, PICK2)):
                arr[lb_row] = uniform(k, h, salt)
        algo = np.array([ALGOS[self.balancers[b].bal.algorithm] for b in bals], dtype=np.int64)
        cand_ptr = np.zeros(len(cand_lists) + 1, dtype=np.int64)
        cand_ptr[1:] = np.cumsum([len(c) for c in cand_lists])
        cand_st = np.concatenate(cand_lists) if cand_lists else np.zeros(0, dtype=np.int64)
        pres = self._users_in_progress(t0)
        # least response time: the EWMA of each backend, and the responses at B that end in the window
        track = any(self.balancers[b].bal.algorithm == "least_response_time" for b in bals)
        ewma = self.ewma.copy()
        upto = _ewma_upto(self)
        last = np.full(net.n_stations if track else 0, -np.inf)
        w = busy.take(((busy.flags & (FLAG_CHECK | FLAG_TIMEOUT)) == 0) & (busy.fin >= t0) & (busy.fin < t1)) \
            if track and len(busy) else Batch.empty()
        w_t, w_st, w_rt = w.fin, w.st.astype(np.int64), w.fin - w.arr
        l_t, l_st = self._known_leaves(busy, done_t, self._h_st[done_entry].astype(np.int64), t0, t1)
        ring, count = st.ring.copy(), st.count.copy()
        status = np.empty(n, dtype=np.int8)
        start_ns = np.empty(n, dtype=np.int64)
        worker = np.empty(n, dtype=np.int64)
        target = np.empty(n, dtype=np.int64)
        c_queued = np.zeros(n, dtype=bool)
        c_queued[:n_q] = True
        b1 = st.hold & (net.st_level == lv)
        tier2 = np.full(net.n_stations, -1, dtype=np.int64)   # tiers of blocking servers downstream (second_tier.py)
        for g, k in enumerate(self._ev_chain or ()):
            tier2[st.hold & (net.st_level == k)] = g
        sec = None
        if self._ev_chain is not None:
            e = dict(e_t=e_t, e_key=e_key, e_bst=e_bst, e_bw=e_bw, e_entry=e_entry, jp=jp, js=js,
                     ja_first=ja_first, ja_n=ja_n, parts=parts, e_delay=e_delay)
            sec = self._second_inputs(t1, n, e, free)
            if sec is None:
                return False
            e_t, e_key, e_bst, e_bw, e_entry, jp, js, ja_first, ja_n, parts, e_delay = (
                e[k] for k in ("e_t", "e_key", "e_bst", "e_bw", "e_entry", "jp", "js", "ja_first", "ja_n", "parts",
                               "e_delay"))
        ne = len(e_t)
        c_rel, e_rel = np.empty(n), np.empty(ne)
        if sec is not None:
            e_q2, e_bst2, e_bw2 = sec.e_q2, sec.e_bst2, sec.e_bw2
        else:
            e_q2 = np.full(ne, -1, dtype=np.int64)
            e_bst2, e_bw2 = np.full((ne, 1), -1, dtype=np.int64), np.full((ne, 1), -1, dtype=np.int64)
        m, g2 = n + ne, e_bst2.shape[1]
        second = (np.full((m, g2), -1, dtype=np.int64), np.full((m, g2), -1, dtype=np.int64),
                  np.full((m, g2), -2, dtype=np.int8), np.zeros((m, g2), dtype=np.int64),
                  np.full((m, g2), -1, dtype=np.int64), np.zeros((m, g2)), np.full((m, g2), np.inf))
        args = (cand.arr, cand.key, c_st, c_bal, c_svc, c_held, c_down, c_queued, u[0], u[1], u[2], algo, cand_ptr,
                cand_st, grp, pres, ewma, upto, last, w_t, w_st, w_rt, e_t, e_key, e_bst, e_bw, jp, js, ja_first,
                ja_n, e_delay, *parts, self._ev_tie, l_t, l_st,
                free, net.st_workers, ring, st.ring_off, st.ring_len, count, net.st_queue_limit, st._timeout_ns,
                net.st_timeout, st.rate, st.up, b1, tier2, e_q2, e_bst2, e_bw2, jgrp, alt_row, alt_down, float(t1),
                status, start_ns, worker,
                target, c_rel, e_rel, *second)
        got = balanced_events(*args) if balanced_events.compiled else balanced_events.py(*args)
        if got == TIE:
            self._ev_fallbacks += 1
            return False
        self._ev_windows += 1
        self._ev_lb_out = []
        for jar, rows in leads:   # a sticky user's first request of the window sets its cookie
            got = target[rows]
            jar[cand.user[rows][got >= 0]] = got[got >= 0]
        if track:   # the responses taken (Routing's update_ewma skips them: they end by upto)
            self.ewma[:] = ewma
            np.maximum(upto, last, out=upto)
        # the balancers' choices: where each request went (or failed: no healthy backend)
        lb_pos = np.flatnonzero(lb_row)
        none = lb_pos[status[lb_pos] == NO_BACKEND]
        if len(none):
            self._fail("no_healthy_backend", cand.arr[none], cand.key[none])
        went = lb_pos[status[lb_pos] != NO_BACKEND]
        if len(went):
            src = lbq.st[perm[went] - len(every)]
            self._flow(src, target[went], cand.arr[went])
        cand.st = np.where(lb_row, np.maximum(target, 0), cand.st).astype(cand.st.dtype)
        keep = status != NO_BACKEND
        # the same arrivals, taken as every window takes them, in the kernel's order
        deferred, self.pending[lv] = pend.split(waiting)
        real = Batch.concat([deferred, self._take_arrivals(lv, t1, inbox)])
        if len(real) != len(every) or not np.array_equal(real.key, every.key):
            raise SimulationError("blocking servers: the window's arrivals changed while it was decided")
        real = Batch.concat([real, fwd]).take(perm)
        real.st = cand.st
        # sessions in memory move in each user's arrival order, all in one pass: at the blocking
        # servers every request (_sessions_follow), at the servers beside them the ones admitted
        # (waiting at t1 or not: the kernel refuses at arrival), once, in the window they arrive
        # in (moved when a later window decided them, they followed later requests of their
        # user: the numbers changed with how the run was stepped)
        fresh = np.r_[~queued, np.ones(len(fwd), dtype=bool)][perm]
        beside = self._is_local_server[real.st] & fresh & ~np.isin(status, (QUEUE_FULL, DOWN, NO_BACKEND))
        move = beside | (lb_row & keep & self._local_hold[real.st])
        if move.any():
            self._local_sessions(real, move)
        svc_row = c_svc[np.arange(n), grp[cand.st]] if n else np.zeros(0, dtype=np.int64)
        sel = np.flatnonzero(keep)
        if sec is not None:
            sec.keys = np.concatenate([cand.key, e_key])
            sec.out, sec.js = second, js
            if not keep.all():   # the kernel's rows of the requests kept, then the e rows
                rows = np.r_[sel, n + np.arange(ne)]
                sec.keys, sec.js = sec.keys[rows], js[rows]
                sec.out = tuple(a[rows] for a in second)
        self._ev_sec = sec
        try:
            self._commit_events(lv, real.take(sel), status[sel], start_ns[sel], svc_row[sel], worker[sel],
                                c_rel[sel], e_rel, e_entry, done_entry, done_t, (free, ring, count), deferred, t0,
                                t1, inbox, marks, decided=st.hold | (net.st_level == lv), moved=True)
        finally:
            self._ev_sec = None
        return True

    def _sticky_rows(self, cand: Batch, lb_row: np.ndarray, c_st: np.ndarray, q: np.ndarray, bal_of: np.ndarray,
                     bals: list[int], cand_lists: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sticky balancers (dispatch.py's cookies, shared by the balancers in front of the
        same backends): a request whose cookie names a candidate goes there (``c_st``); the
        first request of the window of each other user chooses, the user's later ones follow
        it (-3 - its row). Returns (cookie jar, the rows that choose) to set the cookies after."""
        rows = np.flatnonzero(lb_row)
        out = []
        by_jar: dict[int, list] = {}
        for k, b in enumerate(bals):
            bs = self.balancers[b]
            if bs.cookie is None:
                continue
            mine = rows[bal_of[q] == b]
            if not len(mine):
                continue
            named = bs.cookie[cand.user[mine]]
            valid = np.isin(named, cand_lists[k]) & (named >= 0)
            c_st[mine[valid]] = named[valid]
            by_jar.setdefault(id(bs.cookie), [bs.cookie, []])[1].append(mine[~valid])
        for jar, parts in by_jar.values():
            need = np.sort(np.concatenate(parts))   # in the kernel's order (time, then key)
            if not len(need):
                continue
            _, first, inverse = np.unique(cand.user[need], return_index=True, return_inverse=True)
            lead = need[first][np.asarray(inverse).ravel()]
            follow = lead != need
            c_st[need[follow]] = -3 - lead[follow]
            out.append((jar, need[~follow]))
        return out

    def _known_leaves(self, busy: Batch, done_t: np.ndarray, done_st: np.ndarray, t0: float,
                      t1: float) -> tuple[np.ndarray, np.ndarray]:
        """When user requests in progress at B's level at ``t0`` stop counting there in the
        window, where known: the held workers released (``done_*``), and the requests that
        hold none (at a server beside B, in their own service until then; or giving up)."""
        if not len(busy):
            return done_t, done_st
        own = (((busy.flags & FLAG_CHECK) == 0) & (busy.arr <= t0) & (busy.fin > t0) & (busy.fin < t1)
               & ~np.isin(busy.key, self._h_key))
        return np.concatenate([done_t, busy.fin[own]]), np.concatenate([done_st, busy.st[own].astype(np.int64)])

    def _users_in_progress(self, t: float) -> np.ndarray:
        """User requests at each server of the blocking servers' level at ``t``: waiting, in
        service, or held by their calls downstream (health checks are not connections)."""
        net = self.net
        p = self.pending[self._lb]
        pres = np.zeros(net.n_stations, dtype=np.int64)
        if len(p):
            here = ((p.flags & FLAG_CHECK) == 0) & (p.arr <= t) & (p.fin > t)
            pres += np.bincount(p.st[here], minlength=net.n_stations)
        pres += self._held_count(t).astype(np.int64)
        return pres

