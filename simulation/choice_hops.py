"""Balancers downstream of blocking servers in the event window (web → balancer → API).

A part of :class:`simulation.blocking.Blocking`. A request held by a blocking server
may cross a load balancer on its way downstream; the event window (blocking_window.py)
then needs the backend the balancer gives it as it leaves. The balancer chooses as
``Routing._balance`` does, from the backends its health checks and the autoscaler
leave it at the window's start (neither changes inside a window: windows end at every
check that can change a backend's state and at every autoscaling step):

- ``random`` and ``consistent_hash`` are hashes of the request (its key and hop, or its
  user): the journey takes its backend when it is drawn (blocking_journeys.py);
- ``round_robin`` and ``weighted_round_robin`` give the next backend of their sequence
  to each request in the order they leave: the kernel makes that choice when it gets
  there, in time order (choice_kernel.py), from the balancer's counter at the window's
  start;
- ``least_connections``, ``least_response_time`` and ``power_of_two`` choose at that
  instant with the requests then in progress at each backend (and the EWMA of the
  responses completed by then), as ``least_choice.choose_and_admit`` does: the kernel
  keeps the count, and the engine books the window with that same exact choice
  (exact_balance.py), not the tick-by-tick one. Nothing then depends on the tick.

A sticky balancer (dispatch.py) sends a request whose cookie names one of its candidates
there; the others choose as above and the user is pinned to that backend from then on,
in time order, as dispatch.py's ``choose`` does for requests in time order. The kernel
works on a copy of the cookies of the window's users; the engine sets the real ones
when it routes the requests (and must find the same backends: blocking_holds.py checks
every release the kernel predicted).

The kernel computes the service at the backend from the request's draw. Two requests
leaving one balancer at the same instant would take the engine's order, not the
kernel's: the window then takes the sweeps (and a load-aware balancer its
tick-by-tick path there). The balancer's health checks reach its backends as requests
(health.py): they take workers there, so they are journeys of one station too.

Qualifies: the balancer and its backends are downstream of the tier and fed by it only
(a load-aware one counting at a backend that a server also calls directly would not
see those requests: contested.py);
the backends are servers that do not block, on one level, with one set of routes and
one way of keeping sessions (whichever is chosen, the rest of the journey is the same);
cookies of its own (not shared with another balancer: the engine would set them in its
order, balancer by balancer); no second tier of blocking servers.
"""
from __future__ import annotations

import numpy as np

from .blocking_events import CHOICE, NOT_STICKY, NOWHERE
from .compiler import SERVER
from .exact_balance import _ewma_upto
from .flight import FLAG_INTERNAL, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from .least_choice import ALGO_CODE
from .randomness import PICK, PICK2, SERVICE, TIE, exponential, uniform

HASHED = ("random", "consistent_hash")
COUNTED = ("round_robin", "weighted_round_robin")
AWARE = tuple(ALGO_CODE)   # least connections, least response time, power of two


class ChoiceHops:
    def _choice_shape(self, down: np.ndarray) -> bool:
        """Note the balancers with backends ``down`` (downstream of the blocking servers)
        that the event window follows (``self._ev_choice``: their indices; per station,
        ``self._choice_at``: its place there, or -1); False if one does not qualify."""
        net, st = self.net, self.stations
        self._ev_choice = []
        self._choice_at = np.full(net.n_stations, -1, dtype=np.int64)
        fed = np.zeros(net.n_stations, dtype=bool)
        for b in net.balancers:
            fed[b.backends] = True
        ptr = net.route_ptr
        reached = net.reached()
        for i, bs in enumerate(self.balancers):
            b, be = bs.bal, bs.bal.backends
            if not down[be].any() or (not reached[b.station] and not st.hold[be].any()):
                continue   # (one that no request reaches sends only its health checks: journeys of their own)
            shared = bs.cookie is not None and sum(o.cookie is bs.cookie for o in self.balancers) > 1
            if (not down[b.station] or fed[b.station] or b.algorithm not in HASHED + COUNTED + AWARE
                    or shared or not down[be].all() or (net.st_kind[be] != SERVER).any()
                    or st.hold[be].any() or (net.st_level[be] != net.st_level[be[0]]).any()):
                return False
            rows = {(net.route_target[ptr[s]:ptr[s + 1]].tobytes(), net.route_cum[ptr[s]:ptr[s + 1]].tobytes(),
                     bool(self._is_db_server[s]), bool(self._is_local_server[s])) for s in be.tolist()}
            if len(rows) != 1:
                return False
            if b.algorithm in AWARE:   # counting at backends that another sender reaches too (a server
                self._contest()        # calling the API directly): the kernel does not see those requests
                mine = {("balancer", i)}
                if any(self._contest_senders[s] - mine for s in be.tolist()):
                    return False
            self._choice_at[b.station] = len(self._ev_choice)
            self._ev_choice.append(i)
        return True

    def _goes_on(self, st: np.ndarray) -> np.ndarray:
        """Whether a request that ends at stations ``st`` goes on downstream: they route
        it, or they are a balancer the window follows."""
        on = self._has_route[st]
        if self._ev_choice:
            on = on | (self._choice_at[st] >= 0)
        return on

    def _choose_hop(self, cur: np.ndarray, b: Batch, key: np.ndarray, hop: np.ndarray,
                    rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For requests ``rows`` of ``b`` at balancers ``cur`` (with ``key``, ``hop`` there):
        their backends (NOWHERE when none is left; for a round-robin balancer, its first
        backend, whose routes the others share), and the code of the kernel's choice
        (CHOICE - c; 0 where the backend is known already)."""
        nxt = np.full(len(cur), NOWHERE, dtype=np.int64)
        code = np.zeros(len(cur), dtype=np.int64)
        for c, i in enumerate(self._ev_choice):
            bs = self.balancers[i]
            mine = np.flatnonzero(cur == bs.bal.station)
            if not len(mine):
                continue
            backends = bs.bal.backends
            registered = self.stations.registered[backends]
            cand = bs.candidates(registered)
            if not len(cand):
                continue   # no backend: it fails as it leaves (no_healthy_backend)
            if bs.bal.algorithm not in HASHED:
                nxt[mine] = backends[cand[0]]
                code[mine] = CHOICE - c
            else:   # its hash (a sticky one's, for a user without a valid cookie: the kernel reads the cookie)
                r = rows[mine]
                bs._refresh(cand)
                nxt[mine] = backends[cand[bs._pick(len(mine), cand, b.user[r], key[mine], hop[mine], None, None, 0)]]
                if bs.cookie is not None:
                    code[mine] = CHOICE - c
        return nxt, code

    @staticmethod
    def _choice_draws(there: Batch) -> tuple[np.ndarray, ...]:
        """What the kernel needs for a request's choice (``there``: at the backend it stands
        for): its exponential service draw there and its flags (1: a write, 2: a 304), as
        ``Stations._service_ns``; the draws of least_choice.py's choice (ties, power of two)
        of the request as it leaves the balancer; its user (a sticky balancer's cookie) and
        that backend (a hash's choice)."""
        f = (there.cls == 1).astype(np.int8) | np.where((there.flags & FLAG_NOT_MODIFIED) != 0, 2, 0).astype(np.int8)
        hop = there.hop - 1
        return (exponential(there.key, there.hop, SERVICE), f,
                *(uniform(there.key, hop, salt) for salt in (TIE, PICK, PICK2)),
                there.user.astype(np.int64), there.st.astype(np.int64))

    def _choice_inputs(self) -> tuple:
        """The kernel's balancers downstream: per balancer its round-robin sequence from its
        counter on (backend stations) or its candidates (load-aware), the counters and the
        algorithms; the requests in progress at the load-aware ones' backends (ends,
        stations, response times: -1 where not an EWMA sample); least response time's EWMA
        and marks (copies) and whether it is kept."""
        seqs, rr, algo = [], [], []
        aware = np.zeros(self.net.n_stations, dtype=bool)
        for i in self._ev_choice:
            bs = self.balancers[i]
            backends = bs.bal.backends
            cand = bs.candidates(self.stations.registered[backends])
            code = ALGO_CODE.get(bs.bal.algorithm, -1 if bs.bal.algorithm in HASHED else 0)
            if code > 0:
                seqs.append(backends[cand].astype(np.int64))   # least_choice's candidates, in its order
                aware[backends] = True
            elif bs.bal.algorithm in COUNTED and len(cand):
                bs._refresh(cand)
                order = cand if bs.bal.algorithm == "round_robin" else cand[bs._wrr]
                seqs.append(backends[order].astype(np.int64))
            else:
                seqs.append(np.zeros(0, dtype=np.int64))
            rr.append(bs.rr)
            algo.append(code)
        ptr = np.zeros(len(seqs) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(s) for s in seqs])
        stations = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
        pre = Batch.concat([p.take(aware[p.st]) for p in self.pending if len(p)]) if aware.any() else Batch.empty()
        sample = (pre.flags & (FLAG_TIMEOUT | FLAG_INTERNAL)) == 0
        pre_rt = np.where(sample, pre.fin - pre.arr, -1.0)
        return (ptr, stations, np.asarray(rr, dtype=np.int64), np.asarray(algo, dtype=np.int64),
                pre.fin.copy(), pre.st.astype(np.int64), pre_rt, self.ewma.copy(), _ewma_upto(self).copy(),
                int(self._track_latency))

    def _kernel_choices(self, ch: list[np.ndarray]) -> tuple:
        """blocking_events' arguments for the choices downstream, from the journeys' ``ch``
        (service draws, flags, draws of the choice, users, hashes' backends: per journey row
        and hop)."""
        ptr, seq, rr, algo, *rest = self._choice_inputs()
        slot, ok, pins = self._sticky_inputs(ch[5])
        return (ch[0], ch[1], ptr, seq, rr, algo, *(np.ascontiguousarray(u).ravel() for u in ch[2:5]), *rest,
                slot, ch[6], ok, pins)

    def _sticky_inputs(self, users: np.ndarray) -> tuple:
        """The sticky balancers downstream (dispatch.py's cookies, each balancer's own): per
        journey row and hop the user's slot, the hashes' backends, which stations each
        balancer may send to, and each slot's cookie at each balancer (a copy; NOT_STICKY
        for a balancer without cookies). Empty without sticky balancers."""
        n_st = self.net.n_stations
        sticky = [c for c, i in enumerate(self._ev_choice) if self.balancers[i].cookie is not None]
        if not sticky or not users.size:
            return np.zeros((0, 0), dtype=np.int64), np.zeros((0, n_st), dtype=np.bool_), np.zeros((0, 0), dtype=np.int64)
        uniq, slot = np.unique(users, return_inverse=True)
        ok = np.zeros((len(self._ev_choice), n_st), dtype=np.bool_)
        pins = np.full((len(self._ev_choice), len(uniq)), NOT_STICKY, dtype=np.int64)
        for c, i in enumerate(self._ev_choice):
            bs = self.balancers[i]
            backends = bs.bal.backends
            ok[c, backends[bs.candidates(self.stations.registered[backends])]] = True
            if bs.cookie is not None:
                pins[c] = bs.cookie[uniq]
        return np.asarray(slot, dtype=np.int64).reshape(users.shape), ok, pins

    def _downstream_checks(self, t1: float) -> Batch:
        """The health checks that reach stations downstream of the blocking servers before
        ``t1`` (taken later by ``_admit_arrivals``; here they are only looked at)."""
        checks = getattr(self, "_checks", None)
        if checks is None:
            return Batch.empty()
        parts = [c.take(c.arr < t1) for c in checks[self._lb + 1:] if len(c)]
        return Batch.concat(parts) if parts else Batch.empty()
