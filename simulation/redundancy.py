"""Redundant entry nodes: an active–passive pair as keepalived runs it (VRRP).

A client with ``entry_policy: failover`` sends everything to the virtual address
of its entries, which the *active* (VRRP master) holds. The active announces
itself every ``heartbeat_interval_s`` (advert_int). A passive balancer takes over
when it has heard nothing for its Master_Down_Interval =
``heartbeat_misses`` × advert_int + Skew_Time, Skew_Time = (256 − priority) / 256 s
(VRRPv2): with keepalived's defaults (1 s, 3, priority 100) about 3.6 s after
the last heartbeat. Meanwhile the client's requests go to the dead active and
fail (``backend_down``).

Rules (RFC 3768 §6.4, keepalived's defaults):

- precedence: higher ``priority``, then the client's edge order (VRRP breaks
  ties by address);
- a passive's timer restarts at every heartbeat of an active that outranks it; a
  passive that outranks the active ignores its heartbeats (preemption, on by
  default) and takes over one Master_Down_Interval after it came up; a passive
  that has just come up starts its timer then;
- an active that comes back before anyone took over simply carries on;
- entries that are not load balancers use keepalived's defaults.

A part of :class:`simulation.engine.Simulation` (a mixin). Takeovers happen at
window boundaries: :meth:`_entry_failover` applies what is due now and returns
the time of the next possible takeover, which bounds the window.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from .randomness import mix64

DEFAULT_HEARTBEAT = (1.0, 3, 100)   # keepalived: advert_int 1 s, 3 missed adverts, priority 100


@dataclass
class Pair:
    """The VRRP state of one failover client's entries."""
    names: list[str]               # entry node ids, the client's edge order
    entries: list[int]             # their node indices
    advert: np.ndarray             # advert_int of each entry, s
    down_after: np.ndarray         # Master_Down_Interval of each entry, s
    rank: np.ndarray               # precedence: lower is better
    active: int                    # position of the entry holding the virtual address
    anchor: float                  # the active sends heartbeats at anchor + k × advert
    up_since: list[float | None]
    last_heartbeat: float | None = None    # set while the active is dead: its last heartbeat
    takeovers: list[tuple[float, str]] = field(default_factory=list)   # (time, new active)


def master_down_interval(advert_s: float, misses: int, priority: int) -> float:
    """VRRPv2: misses × advert_int + (256 − priority) / 256 s."""
    return misses * advert_s + (256 - priority) / 256.0


class EntryFailover:
    def _pairs(self) -> dict[str, Pair]:
        """Each failover client's pair (clients with the same entries share one: the
        virtual address belongs to the balancers). Built once per compiled network; a
        live edit keeps the state of a pair whose entries did not change."""
        if getattr(self, "_pairs_net", None) is self.net:
            return self._pair_state
        old = {tuple(p.names): p for p in getattr(self, "_pair_state", {}).values()}
        net = self.net
        pairs: dict[str, Pair] = {}
        made: dict[tuple[str, ...], Pair] = {}
        for c in net.clients:
            if not c.failover or not c.entries:
                continue
            names = tuple(net.node_ids[j] for j in c.entries)
            if names not in made:
                made[names] = self._pair(c.entries, names, old.get(names))
            pairs[c.node_id] = made[names]
        self._pairs_net, self._pair_state = net, pairs
        return pairs

    def _pair(self, entries: list[int], names: tuple[str, ...], prev: Pair | None) -> Pair:
        net = self.net
        params = []
        for j in entries:
            st = net.node_stations[j]
            b = int(net.st_balancer[st[0]]) if len(st) else -1
            bal = net.balancers[b] if b >= 0 else None
            params.append((bal.heartbeat_s, bal.heartbeat_misses, bal.priority) if bal else DEFAULT_HEARTBEAT)
        advert = np.array([p[0] for p in params])
        down_after = np.array([master_down_interval(*p) for p in params])
        rank = _ranks(np.array([p[2] for p in params]))
        if prev is not None:
            prev.entries, prev.advert, prev.down_after, prev.rank = list(entries), advert, down_after, rank
            return prev
        active = int(np.argmin(rank))   # the configured master holds the address at the start
        # its heartbeats fall at a seeded phase (not on the window grid)
        key = np.array([self.seed ^ zlib.crc32("|".join(names).encode())], dtype=np.uint64)
        u = float(mix64(key)[0] >> np.uint64(11)) / 2.0 ** 53
        return Pair(list(names), list(entries), advert, down_after, rank, active, self.now + u * advert[active],
                    [self.now if self._entry_up(j) else None for j in entries])

    def _entry_up(self, node: int) -> bool:
        st = self.net.node_stations[node]
        return bool(self.stations.up[st].any()) if len(st) else True

    def _entry_failover(self) -> float:
        """Apply the takeovers due now; the time of the next one (inf: none can happen)."""
        pairs = self._pairs()
        if not pairs:
            return math.inf
        now = self.now
        nxt = math.inf
        for pair in {id(p): p for p in pairs.values()}.values():
            up = [self._entry_up(j) for j in pair.entries]
            for i, u in enumerate(up):
                if not u:
                    pair.up_since[i] = None
                elif pair.up_since[i] is None:
                    pair.up_since[i] = now
            for _ in range(len(up)):   # a takeover can make the next one due (bounded)
                a = pair.active
                if up[a]:
                    pair.last_heartbeat = None
                elif pair.last_heartbeat is None:   # it died now: its last heartbeat was on the grid
                    k = math.floor((now - pair.anchor) / pair.advert[a] + 1e-9)
                    pair.last_heartbeat = pair.anchor + k * pair.advert[a]
                due = math.inf
                who = -1
                for b in range(len(up)):
                    if b == a or not up[b]:
                        continue
                    outranks = pair.rank[b] < pair.rank[a]
                    if up[a] and not outranks:
                        continue                      # a live active that outranks it keeps resetting its timer
                    start = pair.up_since[b]
                    if not outranks:                  # it listened to the active until its last heartbeat
                        start = max(start, pair.last_heartbeat)
                    t = start + pair.down_after[b]
                    if t < due or (t == due and pair.rank[b] < pair.rank[who]):
                        due, who = t, b
                if who < 0 or due > now + 1e-9:
                    nxt = min(nxt, due)
                    break
                at = max(due, now)   # due now (a live edit of the priorities can make it overdue)
                pair.active, pair.anchor, pair.last_heartbeat = who, at, None
                pair.takeovers.append((at, self.net.node_ids[pair.entries[who]]))
        return nxt

    def _active_entry(self, client) -> int:
        """The node index that holds the client's virtual address now."""
        pair = self._pairs().get(client.node_id)
        return pair.entries[pair.active] if pair is not None else client.entries[0]


def _ranks(priority: np.ndarray) -> np.ndarray:
    """Precedence of each entry (0 = first): higher priority, then edge order."""
    return np.lexsort((np.arange(len(priority)), -priority)).argsort()
