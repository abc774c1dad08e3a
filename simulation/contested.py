"""Backends that a load-aware balancer shares with other senders.

A load-aware balancer looks at its backends' connections as it chooses, and the
engine admits its requests at the backend as it chooses them (exact_balance.py, or
tick by tick: routing.py). A window admits the other requests for a station when
the station's level comes (window.py): those of a client or a server sending to the
backend directly, or of a balancer in front of the balancer that also sends there.
Admitted after the balancer's, they queued behind requests that arrived after them
(a server behind least_connections that a second client also called directly: mean
response 1.6 s instead of 45 ms in one 12 s call, 0.26 s in twelve 1 s calls).

So where a load-aware balancer's backends have other senders, its requests wait for
its backends' level: just before that level is admitted, every other request of the
window for those backends is known (levels are the longest paths from the clients),
and the balancer chooses in one time-ordered pass with them (``Routing._balance``'s
``others``). Balancers deferred to the same level choose together, in time order.

Only what the backends' first level cannot see stays approximate: a backend on a
deeper level whose other senders lie between the two (the balancer's backends on
several levels, one of them called by another). Windows are then one tick long, so
such a request waits at most one tick out of its order (``needs_one_tick``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .exact_balance import LOAD_AWARE_ALL
from .flight import Batch


def _senders(sim: Any) -> list[set[tuple[str, int]]]:
    """Per station: who sends user requests to it, as ("client", -1), ("station", st) or
    ("balancer", index)."""
    net = sim.net
    out: list[set[tuple[str, int]]] = [set() for _ in range(net.n_stations)]
    for c in net.clients:
        for node in c.entries:
            for st in net.node_stations[node].tolist():
                out[st].add(("client", -1))
    ptr, target = net.route_ptr, net.route_target
    for st in range(net.n_stations):
        for t in target[ptr[st]:ptr[st + 1]].tolist():
            out[int(t)].add(("station", st))
    for i, bs in enumerate(sim.balancers):
        for st in bs.bal.backends.tolist():
            out[st].add(("balancer", i))
    return out


class Contested:
    """Which balancers defer their choices, and to which level (a mixin of the engine)."""

    def _contest(self) -> dict:
        """Per network: the senders of each station (computed once, ``_contest_of``)."""
        if self.__dict__.get("_contest_of") is not self.net:
            self._contest_of = self.net
            self._contest_senders = _senders(self)
            self._contest_levels: dict[tuple[int, ...], int | None] = {}
        return self._contest_levels

    def _sender_level(self, who: tuple[str, int]) -> int:
        kind, i = who
        if kind == "client":
            return -1
        st = i if kind == "station" else self.balancers[i].bal.station
        return int(self.net.st_level[st])

    def _shared_backends(self, peers: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The backends of balancers ``peers`` and, per backend, whether another sender
        (not one of ``peers``) sends to it too."""
        senders = self._contest_senders
        mine = {("balancer", int(b)) for b in peers}
        st = np.unique(np.concatenate([self.balancers[int(b)].bal.backends for b in peers]))
        shared = np.array([bool(senders[s] - mine) for s in st.tolist()], dtype=bool)
        return st, shared

    def _defer_level(self, peers: list[int]) -> int | None:
        """The level to which the choices of balancers ``peers`` (those one settle routes)
        wait, or None: they choose at once (no load-aware one, or their backends have no
        other sender)."""
        cache = self._contest()
        key = tuple(int(b) for b in peers)
        if key not in cache:
            level = None
            if any(self.balancers[b].bal.algorithm in LOAD_AWARE_ALL for b in key):
                st, shared = self._shared_backends(list(key))
                if shared.any():
                    level = int(self.net.st_level[st].min())
                # below blocking servers only (blocking.py admits those levels whole; from
                # theirs on, the sweeps admit every arrival in time order)
                if level is not None and self._holding and level >= self._lb:
                    level = None
            cache[key] = level
        return cache[key]

    def needs_one_tick(self) -> bool:
        """Whether a deferred balancer has a shared backend on a deeper level than the one
        it chooses at, with another sender between the two: its requests there are
        admitted in tick-long windows (see the module's docstring)."""
        if not any(bs.bal.algorithm in LOAD_AWARE_ALL for bs in self.balancers):
            return False   # (at every setup and live edit: nothing to look at for most files)
        self._contest()
        net = self.net
        reached = net.reached()
        levels: dict[int, list[int]] = {}
        for i, bs in enumerate(self.balancers):
            if reached[bs.bal.station]:
                levels.setdefault(int(net.st_level[bs.bal.station]), []).append(i)
        for peers in levels.values():
            at = self._defer_level(peers)
            if at is None:
                continue
            st, shared = self._shared_backends(peers)
            mine = {("balancer", b) for b in peers}
            for s in st[shared].tolist():
                if net.st_level[s] > at and any(self._sender_level(w) >= at
                                                for w in self._contest_senders[s] - mine):
                    return True
        return False

    def _choose_deferred(self, lv: int, inbox: list[list["Batch"]]) -> None:
        """The balancers' requests deferred to level ``lv`` choose now, in one time-ordered
        pass with the window's other requests for their backends on this level."""
        held = self._deferred.pop(lv, None)
        if not held:
            return
        out = Batch.concat([b for b, _ in held])
        if len(held) > 1:
            out = out.take(np.argsort(out.fin, kind="stable"))
        peers = sorted(set().union(*(p for _, p in held)))
        waiting = Batch.concat(inbox[lv])
        others = Batch.empty()
        if len(waiting):
            at = np.zeros(self.net.n_stations, dtype=bool)
            at[np.concatenate([self.balancers[b].bal.backends for b in peers])] = True
            mine = at[waiting.st]
            others, rest = waiting.split(mine)
            inbox[lv] = [rest] if len(rest) else []
        self._balance(out, inbox, others=others, peers=peers)
