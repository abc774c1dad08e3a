"""Taking an edited document into a running simulation.

The document is compiled anew; the state of the old network is carried over
station by station, matched by (node id, replica): requests in flight, worker
timelines, failures, health-check state and session placement. Requests at
stations that no longer exist fail with ``node_failed``.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from .compiler import compile_document
from .dispatch import carry_cookies
from .flight import FLAG_INTERNAL, Batch

if TYPE_CHECKING:
    from .document import Document
    from .engine import Simulation


def _keys(net) -> list[tuple[str, int]]:
    return [(net.node_ids[n], int(r)) for n, r in zip(net.st_node, net.st_replica)]


def _carry_sessions(sim: "Simulation", old: np.ndarray, old_slot: np.ndarray, mapping: np.ndarray) -> None:
    """Each level's sessions go to the level where its servers are now: a session on a
    replica that still keeps sessions in memory stays there; one on a replica that is gone
    (or was lost before) is lost (the user is logged out at the next request)."""
    new_slot = sim._session_slot
    for row in range(old.shape[0]):
        mapped = mapping[old_slot == row]
        rows = new_slot[mapped[mapped >= 0]]
        rows = rows[rows >= 0]
        if not len(rows):
            continue   # its servers are gone or keep sessions elsewhere now: nothing to lose
        s = old[row].astype(np.int64)
        valid = s >= 0
        to = np.full(len(s), -1, dtype=np.int64)
        to[valid] = mapping[s[valid]]
        orphan = (s == -2) | (valid & (to < 0))
        sim.sessions[int(np.bincount(rows).argmax()), orphan] = -2
        moved = np.flatnonzero(to >= 0)
        there = new_slot[to[moved]]
        keep = there >= 0
        sim.sessions[there[keep], moved[keep]] = to[moved[keep]].astype(np.int32)


def edited_clients(old_net, new_net, old_tick: float, new_tick: float, salts: dict) -> dict:
    """Per client, how many live edits changed what its arrivals are drawn from
    (arrivals._edited_keys mixes that number into their keys)."""
    def drawn(c) -> tuple:   # what the arrivals of a second are drawn from
        return (c.rate_rps, c.users, json.dumps(c.pattern, sort_keys=True), c.read_ratio, c.items, c.zipf_s)

    before = {c.node_id: drawn(c) for c in old_net.clients}
    out = dict(salts)
    for c in new_net.clients:
        if c.node_id in before and (before[c.node_id] != drawn(c) or (old_tick != new_tick and c.pattern["type"] != "constant")):
            out[c.node_id] = out.get(c.node_id, 0) + 1
    return out


def migrate(sim: "Simulation", document: "Document") -> None:
    old_net, old_st, old_bal = sim.net, sim.stations, sim.balancers
    old_pending, old_sessions, old_ewma = sim.pending, sim.sessions, sim.ewma
    old_slot = sim._session_slot
    sim._old_scalers = sim.scalers
    old_primary, old_lag, old_down = sim.primary, sim.lag, dict(sim._down_since)
    old_monitors, old_delayed, old_writes = sim._monitors, sim._delayed, sim._recent_writes
    old_ids = getattr(sim, "_ids", {})
    new_net = compile_document(document)  # raises SimulationError before anything changes
    sim._key_salts = edited_clients(old_net, new_net, sim.tick_s, float(document.settings["tick_ms"]) / 1000.0,
                                    getattr(sim, "_key_salts", {}))
    from .sharding import resharding
    sim.resharded = resharding(old_net, document)   # databases whose shard count changed: keys moved
    sim.document = document
    sim.tick_s = float(document.settings["tick_ms"]) / 1000.0
    new_index = {k: i for i, k in enumerate(_keys(new_net))}
    mapping = np.array([new_index.get(k, -1) for k in _keys(old_net)], dtype=np.int64)

    sim._setup(new_net)
    # station state
    c = min(old_st.free.shape[1], sim.stations.free.shape[1])
    new_st = sim.stations
    ok = mapping >= 0
    for name in ("failed",):
        getattr(new_st, name)[mapping[ok]] = getattr(old_st, name)[ok]
    # autoscaled slots keep their life cycle when the node still autoscales
    scaled = np.zeros(new_net.n_stations, dtype=bool)
    for sc in new_net.scalers:
        scaled[sc.first:sc.end] = True
    keep_cycle = ok.copy()
    keep_cycle[ok] = scaled[mapping[ok]]
    for name in ("provisioned", "booted", "registered", "ready_at"):
        getattr(new_st, name)[mapping[keep_cycle]] = getattr(old_st, name)[keep_cycle]
    new_st.up = new_st.provisioned & new_st.booted & ~new_st.failed
    new_st.free[~new_st.up] = np.inf
    for old, new in enumerate(mapping.tolist()):
        if new < 0 or not new_st.up[new] or not old_st.up[old]:
            continue
        keep = sim.stations.worker_mask[new, :c] & old_st.worker_mask[old, :c]
        sim.stations.free[new, :c] = np.where(keep, old_st.free[old, :c], sim.stations.free[new, :c])
    held = np.isinf(sim.stations.free) & sim.stations.worker_mask & sim.stations.up[:, None]
    sim.stations.free[held] = sim.now   # workers held by blocking servers are free after an edit
    sim.ewma[mapping[mapping >= 0]] = old_ewma[mapping >= 0]
    # requests in flight
    lost = 0
    moved: list[Batch] = []
    for batch in old_pending:
        if not len(batch):
            continue
        new_st = mapping[batch.st]
        keep = new_st >= 0
        lost += int((~keep & ((batch.flags & FLAG_INTERNAL) == 0)).sum())   # internal work is no request
        b = batch.take(keep)
        b.st = new_st[keep]
        moved.append(b)
    sim._fail("node_failed", np.full(lost, sim.now))
    allb = Batch.concat(moved)
    if len(allb):
        lv = new_net.st_level[allb.st]
        for level in np.unique(lv):
            sim.pending[int(level)] = allb.take(lv == level)
    # health checks and pins of balancers that still exist with the same backends
    old_by_node = {old_net.node_ids[b.bal.node_index]: b for b in old_bal}
    for bs in sim.balancers:
        prev = old_by_node.get(new_net.node_ids[bs.bal.node_index])
        if prev is None:
            continue
        prev_keys = [_keys(old_net)[s] for s in prev.bal.backends]
        new_keys = [_keys(new_net)[s] for s in bs.bal.backends]
        pos = {k: i for i, k in enumerate(prev_keys)}
        for j, k in enumerate(new_keys):
            i = pos.get(k)
            if i is not None:
                bs.health.believed_up[j] = prev.health.believed_up[i]
                bs.health.misses[j] = prev.health.misses[i]
                bs.health.passes[j] = prev.health.passes[i]
        bs.health.next_check = prev.health.next_check
        bs.rr = prev.rr
        if bs.health.interval == prev.health.interval:
            bs.health.anchor = prev.health.anchor   # health checks keep their times
    carry_cookies(old_bal, sim.balancers, mapping)   # sticky pins live in the users' cookies
    # sessions: kept when the user population is unchanged
    if old_sessions.shape[1] == sim.sessions.shape[1]:
        _carry_sessions(sim, old_sessions, old_slot, mapping)
    old_scalers = {old_net.node_ids[a.sc.node_index]: a for a in getattr(sim, "_old_scalers", [])}
    for a in sim.scalers:
        prev = old_scalers.get(new_net.node_ids[a.sc.node_index])
        if prev is not None:
            a.history = prev.history
            a.next_decision = prev.next_decision
    # a promoted database primary stays promoted (same node, same number of copies)
    for i, node in enumerate(new_net.node_ids):
        if new_net.node_kind[i] != "database" or node not in old_net.node_ids:
            continue
        old_st = old_net.node_stations[old_net.node_ids.index(node)]
        new_st = new_net.node_stations[i]
        if len(old_st) != len(new_st) or len(new_st) < 2 or any(sd.node_index == i for sd in new_net.shards) \
                or any(old_net.node_ids[sd.node_index] == node for sd in old_net.shards):
            continue   # (a sharded database starts its groups afresh)
        promoted = int(mapping[old_primary[old_st[0]]])
        several = [d.primaries for d in new_net.databases if d.node_index == i] + \
            [d.primaries for d in old_net.databases if old_net.node_ids[d.node_index] == node]
        if promoted >= 0 and max(several, default=1) == 1:   # (multi-primary databases promote nothing)
            sim.primary[new_st] = promoted
            lag = float(new_net.st_lag[new_st].max())
            sim.lag[new_st] = np.where(new_st == promoted, 0.0, lag)
        j = old_net.node_ids.index(node)
        if j in old_down:
            sim._down_since[i] = old_down[j]
        if j in old_monitors and i in sim._monitors:   # the proxy remembers what it has seen
            prev, mon = old_monitors[j], sim._monitors[i]
            mon.believed_up[:] = prev.believed_up
            mon.misses[:] = prev.misses
            mon.passes[:] = prev.passes
            mon.next_check = prev.next_check
    # writes on their way to replicas, and recent writes (stale reads), where the copies still exist
    if len(old_delayed):
        target = mapping[old_delayed.st]
        # only where the copy still applies writes: a database left with one copy (primaries 3 -> 1,
        # no replicas) applies none, and jobs kept there took its connections unseen by the event
        # window's prediction ("a worker was released at another time than predicted", fuzz: edits 780)
        copies = np.zeros(new_net.n_stations, dtype=bool)
        for db in new_net.databases:
            if len(db.stations) > 1:
                copies[db.stations] = True
        keep = (target >= 0) & copies[np.maximum(target, 0)]
        moved_jobs = old_delayed.take(keep)
        moved_jobs.st = target[keep]
        sim._delayed = moved_jobs
    keys, fins = old_writes
    if len(keys):
        from .replication import ITEM_BITS
        old_node = keys >> ITEM_BITS
        where = {n: k for k, n in enumerate(new_net.node_ids)}
        remap = np.array([where.get(n, -1) for n in old_net.node_ids], dtype=np.int64)
        new_node = remap[old_node]
        keep = new_node >= 0
        sim._recent_writes = ((new_node[keep] << ITEM_BITS) | (keys[keep] & ((1 << ITEM_BITS) - 1)), fins[keep])
    for i, ids in sim._ids.items():   # auto-increment counters of a multi-primary database live on
        prev = next((c for j, c in old_ids.items() if old_net.node_ids[j] == new_net.node_ids[i]), None)
        if prev is not None and (prev.primaries, prev.lag, prev.offsets) == (ids.primaries, ids.lag, ids.offsets):
            sim._ids[i] = prev
    sim._events = sorted(document.events, key=lambda e: e.at_s)
    sim._event_pos = sum(1 for e in sim._events if e.at_s <= sim.now + 1e-9)
    sim.ledger.resize(new_net.n_stations, len(new_net.edges), mapping)
