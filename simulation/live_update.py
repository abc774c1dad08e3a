"""Taking an edited document into a running simulation.

The document is compiled anew; the state of the old network is carried over
station by station, matched by (node id, replica) (a database's copies by shard and
role: ``_keys``): requests in flight, worker timelines, workers held by blocking
servers, waiting rooms, failures, health checks and cookies, sessions, caches, the
database groups' failover state, writes under way, and the open seconds' records.
Requests at stations that no longer exist fail with ``node_failed``. An edit that
changes nothing changes no number (docs/engine.md, "Edits during a run").
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from .compiler import compile_document
from .dispatch import carry_cookies
from .flight import Batch

if TYPE_CHECKING:
    from .document import Document
    from .engine import Simulation


def _keys(net) -> list[tuple]:
    """Each station's identity across an edit: (node id, replica); a database's copies by
    (node id, shard, role, index in the role), so that adding a read replica or a primary
    keeps every shard's primaries and replicas where they were (their replica numbers,
    counted across the shards' groups, shift)."""
    keys: list[tuple] = [(net.node_ids[n], int(r)) for n, r in zip(net.st_node, net.st_replica)]
    for db in net.databases:
        for i, s in enumerate(db.stations.tolist()):
            role = ("primary", i) if i < db.primaries else ("replica", i - db.primaries)
            keys[s] = (net.node_ids[db.node_index], db.shard, *role)
    return keys


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


HOLDS = ("_h_key", "_h_st", "_h_w", "_h_from", "_h_booked")


def _held_workers(sim: "Simulation", new_net, mapping: np.ndarray, lost: np.ndarray) -> tuple[np.ndarray, ...]:
    """The workers blocking servers hold for requests still downstream, as (key, new
    station, worker, held from, booked to): those whose server still blocks and still has
    that replica and worker, for requests not ``lost`` (keys: at stations the edit removes).
    The others are freed now (their held time booked)."""
    sim._add_holds()
    to = mapping[sim._h_st]
    blocking = np.asarray(getattr(new_net, "st_blocking", np.zeros(new_net.n_stations, dtype=bool)), dtype=bool)
    keep = (to >= 0) & ~np.isin(sim._h_key, lost)
    keep[keep] = blocking[to[keep]] & (sim._h_w[keep] < new_net.st_workers[to[keep]])
    sim._free_held(np.flatnonzero(~keep), np.full(int((~keep).sum()), sim.now))
    kept = tuple(getattr(sim, name) for name in HOLDS)   # (_free_held removed the others)
    return (kept[0], to[keep], *kept[2:])


def _restore_holds(sim: "Simulation", held: tuple[np.ndarray, ...]) -> None:
    """Hold them again in the new network (a worker of a replica that is not up is freed)."""
    for name, values in zip(HOLDS, held):
        setattr(sim, name, values)
    up = sim.stations.up[sim._h_st]
    sim.stations.free[sim._h_st[up], sim._h_w[up]] = np.inf
    sim._free_held(np.flatnonzero(~up), np.full(int((~up).sum()), sim.now))


def _carry_rooms(old, new, mapping: np.ndarray) -> None:
    """Each waiting room keeps the times its last admitted requests leave it (the ring that
    decides a refusal): a full room stays full across an edit. When ``queue_limit`` changed,
    the latest of them fill the new ring (the places before them count as left)."""
    for o, n in enumerate(mapping.tolist()):
        if n < 0:
            continue
        a, lo, b, ln = int(old.ring_off[o]), int(old.ring_len[o]), int(new.ring_off[n]), int(new.ring_len[n])
        seg = old.ring[a:a + lo]
        if lo == ln:
            new.ring[b:b + ln] = seg
            new.count[n] = old.count[o]
            continue
        if not (old.up[o] and new.up[n] and lo and ln):
            continue
        oldest_first = np.roll(seg, -int(old.count[o] % lo))
        new.ring[b:b + ln] = np.concatenate([np.full(ln, -np.inf), oldest_first])[-ln:]
        new.count[n] = ln


def _carry_snapshots(sim: "Simulation", old: tuple, mapping: np.ndarray, old_net) -> None:
    """What the open seconds noted per station (requests waiting at whole seconds, which
    stations served) and the last second's completions per node, re-indexed: a second
    the edit falls in is plotted as it was before the edit and after it."""
    queues, states, last_done = old
    ok = mapping >= 0

    def moved(a: np.ndarray, fill) -> np.ndarray:
        out = np.full(sim.net.n_stations, fill, dtype=a.dtype)
        out[mapping[ok]] = a[ok]
        return out

    sim._queue_snap = {s: moved(q, 0) for s, q in queues.items()}
    sim._state_snap = {s: (moved(up, False), moved(existing, False)) for s, (up, existing) in states.items()}
    node = {n: i for i, n in enumerate(sim.net.node_ids)}
    for i, n in enumerate(old_net.node_ids):
        if n in node:
            sim._last_done[node[n]] = last_done[i]


def _carry_late_checks(sim: "Simulation", checks: Batch, mapping: np.ndarray) -> None:
    """Health checks still waiting undecided at levels with blocking servers stay there
    while the level still has some; else they are admitted again as arrivals
    (``_readmit_waiting``)."""
    checks = checks.take(mapping[checks.st] >= 0)
    checks.st = mapping[checks.st]
    lv = sim.net.st_level[checks.st]
    for level in np.unique(lv).tolist():
        here = checks.take(lv == level)
        if sim._holding and level in sim._hold_levels:
            sim._late_checks[level] = here
        else:
            here.start = np.full(len(here), np.inf)
            here.fin = np.full(len(here), np.inf)
            sim.pending[level] = Batch.concat([sim.pending[level], here])


def _carry_checks_in(sim: "Simulation", st: np.ndarray, fin: np.ndarray, mapping: np.ndarray) -> None:
    """Admitted health checks keep their places at stations that still exist (forgotten, a
    waiting room full of them admitted a request it refuses: fuzz noop 1308)."""
    to = mapping[st]
    keep = to >= 0
    sim._checks_in = (sim.net, to[keep], fin[keep])


def _item_keys(keys: np.ndarray, old_net, new_net) -> tuple[np.ndarray, np.ndarray]:
    """Keys (node << ITEM_BITS | item) re-indexed to the new nodes, and which still exist."""
    from .replication import ITEM_BITS
    where = {n: k for k, n in enumerate(new_net.node_ids)}
    remap = np.array([where.get(n, -1) for n in old_net.node_ids], dtype=np.int64)
    node = remap[keys >> ITEM_BITS]
    keep = node >= 0
    return (np.maximum(node, 0) << ITEM_BITS) | (keys & ((1 << ITEM_BITS) - 1)), keep


def _carry_databases(sim: "Simulation", old_net, mapping: np.ndarray, old_primary: np.ndarray,
                     old_down: dict, old_monitors: dict) -> None:
    """Each database group (a database, or one shard of it) that still exists keeps its
    failover state: a promoted replica stays the primary (single-primary groups), the time
    its primary went down, and what the app's proxy monitor has seen of each copy."""
    new_net = sim.net
    before = {(old_net.node_ids[d.node_index], d.shard): d for d in old_net.databases}
    for db in new_net.databases:
        prev = before.get((new_net.node_ids[db.node_index], db.shard))
        if prev is None:
            continue
        was = mapping[prev.stations]          # each old copy's new station (-1: removed)
        pos = {s: p for p, s in enumerate(db.stations.tolist())}
        old_pos = [(p, pos[int(s)]) for p, s in enumerate(was.tolist()) if int(s) in pos]
        promoted = int(mapping[old_primary[prev.stations[0]]])
        if prev.primaries == 1 and db.primaries == 1 and promoted in pos:   # (multi-primary: none)
            sim.primary[db.stations] = promoted
            lag = float(new_net.st_lag[db.stations].max())
            sim.lag[db.stations] = np.where(db.stations == promoted, 0.0, lag)
        if prev.key in old_down:
            sim._down_since[db.key] = old_down[prev.key]
        old_mon, mon = old_monitors.get(prev.key), sim._monitors.get(db.key)
        if old_mon is None or mon is None:
            continue
        for p, q in old_pos:   # the proxy remembers what it has seen of the copies still there
            mon.believed_up[q] = old_mon.believed_up[p]
            mon.misses[q] = old_mon.misses[p]
            mon.passes[q] = old_mon.passes[p]
        mon.next_check = old_mon.next_check
        if mon.interval == old_mon.interval:
            mon.anchor = old_mon.anchor   # its checks keep their times


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
    old_primary, old_down = sim.primary, dict(sim._down_since)
    old_monitors, old_delayed, old_writes = sim._monitors, sim._delayed, sim._recent_writes
    old_ids = getattr(sim, "_ids", {})
    old_caches = sim._caches
    old_mp_writes = sim._mp_writes
    old_checks = Batch.concat(list(sim._late_checks.values()))
    old_checks_in = sim._checks_in_system()   # admitted health checks still holding places
    old_snaps = (sim._queue_snap, sim._state_snap, sim._last_done)
    new_net = compile_document(document)  # raises SimulationError before anything changes
    sim._key_salts = edited_clients(old_net, new_net, sim.tick_s, float(document.settings["tick_ms"]) / 1000.0,
                                    getattr(sim, "_key_salts", {}))
    from .sharding import resharding
    sim.resharded = resharding(old_net, document)   # databases whose shard count changed: keys moved
    sim.document = document
    sim.tick_s = float(document.settings["tick_ms"]) / 1000.0
    old_keys, new_keys = _keys(old_net), _keys(new_net)
    new_index = {k: i for i, k in enumerate(new_keys)}
    mapping = np.array([new_index.get(k, -1) for k in old_keys], dtype=np.int64)
    gone = Batch.concat([b.take(mapping[b.st] < 0) for b in old_pending if len(b)]).users_only()
    holds = _held_workers(sim, new_net, mapping, gone.key)   # (the requests lost free their workers)

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
    _carry_rooms(old_st, new_st, mapping)
    sim.stations.free[held] = sim.now   # (workers still held are held again below: _restore_holds)
    sim.ewma[mapping[mapping >= 0]] = old_ewma[mapping >= 0]
    for o, model in old_caches.items():   # a cache left as it was keeps what it learnt
        new_model = sim._caches.get(int(mapping[o]))
        if new_model is not None and new_model.same_cache(model):
            new_model.adopt(model)
    # requests in flight
    moved: list[Batch] = []
    for batch in old_pending:
        if not len(batch):
            continue
        new_st = mapping[batch.st]
        keep = new_st >= 0
        b = batch.take(keep)
        b.st = new_st[keep]
        moved.append(b)
    sim._fail("node_failed", np.full(len(gone), sim.now), gone.key)   # (internal work is no request)
    _carry_late_checks(sim, old_checks, mapping)
    _carry_checks_in(sim, *old_checks_in, mapping)
    allb = Batch.concat(moved)
    if len(allb):
        lv = new_net.st_level[allb.st]
        for level in np.unique(lv):
            sim.pending[int(level)] = allb.take(lv == level)
    # health checks and pins of balancers that still exist with the same backends
    old_by_node = {old_net.node_ids[b.bal.node_index]: b for b in old_bal}
    pairs = []
    for bs in sim.balancers:
        prev = old_by_node.get(new_net.node_ids[bs.bal.node_index])
        if prev is None:
            continue
        pairs.append((prev, bs))
        pos = {old_keys[s]: i for i, s in enumerate(prev.bal.backends.tolist())}
        for j, k in enumerate(new_keys[s] for s in bs.bal.backends.tolist()):
            i = pos.get(k)
            if i is not None:
                bs.health.believed_up[j] = prev.health.believed_up[i]
                bs.health.misses[j] = prev.health.misses[i]
                bs.health.passes[j] = prev.health.passes[i]
        bs.health.next_check = prev.health.next_check
        bs.rr = prev.rr
        if bs.health.interval == prev.health.interval:
            bs.health.anchor = prev.health.anchor   # health checks keep their times
    carry_cookies(pairs, mapping)   # sticky pins live in the users' cookies
    # sessions: kept when the user population is unchanged
    if old_sessions.shape[1] == sim.sessions.shape[1]:
        _carry_sessions(sim, old_sessions, old_slot, mapping)
    old_scalers = {old_net.node_ids[a.sc.node_index]: a for a in getattr(sim, "_old_scalers", [])}
    for a in sim.scalers:
        prev = old_scalers.get(new_net.node_ids[a.sc.node_index])
        if prev is not None:
            a.history = prev.history
            a.next_decision = prev.next_decision
    _carry_databases(sim, old_net, mapping, old_primary, old_down, old_monitors)
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
        keys, keep = _item_keys(keys, old_net, new_net)
        sim._recent_writes = (keys[keep], fins[keep])
    keys, st, fins = old_mp_writes   # a multi-primary database's recent writes (write conflicts)
    if len(keys):
        keys, keep = _item_keys(keys, old_net, new_net)
        st = mapping[st]
        keep &= st >= 0
        keep[keep] = sim._mp_primary[st[keep]] >= 0   # (at a copy that still takes writes)
        sim._mp_writes = (keys[keep], st[keep], fins[keep])
    for i, ids in sim._ids.items():   # auto-increment counters of a multi-primary database live on
        prev = next((c for j, c in old_ids.items() if old_net.node_ids[j] == new_net.node_ids[i]), None)
        if prev is not None and (prev.primaries, prev.lag, prev.offsets) == (ids.primaries, ids.lag, ids.offsets):
            sim._ids[i] = prev
    sim._events = sorted(document.events, key=lambda e: e.at_s)
    sim._event_pos = sum(1 for e in sim._events if e.at_s <= sim.now + 1e-9)
    _carry_snapshots(sim, old_snaps, mapping, old_net)
    edge_index = {e: i for i, e in enumerate(new_net.edges)}   # (source, target) node ids
    edge_map = np.array([edge_index.get(e, -1) for e in old_net.edges], dtype=np.int64)
    sim.ledger.resize(new_net.n_stations, len(new_net.edges), mapping, edge_map)
    _restore_holds(sim, holds)
