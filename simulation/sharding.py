"""Sharding: a database split over several primaries by a key.

A sharded database node has ``shards`` groups of stations, one per shard: its
primary and the node's read replicas (shard s is stations first + s·group ..
first + s·group + group − 1; each group is a replicated database of its own in
replication.py). A query goes to the shard that owns its key (the item, or the user),
to the copy in that group at the same place as the station its route picked (so
reads spread over the group's copies; replication.py then sends writes to the
primary and steers reads away from copies its proxy believes down):

- ``hash``: shard = mix64(key) mod N (a mixing hash, so consecutive ids spread);
- ``range``: contiguous ranges: key × N // key_space;
- ``consistent_hash``: a ring with 160 points per shard; a key belongs to the
  first point clockwise from mix64(key).

A *cross-shard* query (a client's ``cross_shard_share`` of its requests) goes to
every shard: the user request goes to its own shard and an internal copy to each
other shard; they are admitted together, and the user request answers when the
slowest part does (its end time is the maximum of the parts'), and fails if a
part is rejected (queue full, shard down) or gives up (timeout). A copy goes to
its shard's primary if it writes, else to the copy at the same place (a copy
does not consult the proxy, and a copy's write is not shipped to the replicas).

A part of :class:`simulation.engine.Simulation` (a mixin) plus pure functions
(``owner``, ``keys_moved``) used by ``check`` and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flight import FLAG_INTERNAL, FLAG_TIMEOUT, Batch
from .randomness import mix64, uniform

RING_POINTS = 160
CROSS_SHARD = 101            # salt of the cross-shard draw (randomness.py uses 1..15)
_KEY_SALT = np.uint64(0x2545F4914F6CDD1D)
_COPY = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class ShardedDatabase:
    node_index: int
    first: int                   # first station; shard s is stations first + s·group ..
    n: int
    key: str                     # "item" or "user"
    scheme: str                  # "hash", "range" or "consistent_hash"
    key_space: int               # keys are 0 .. key_space - 1
    group: int = 1               # stations per shard: its primary and the read replicas


def _ring(n: int) -> tuple[np.ndarray, np.ndarray]:
    base = np.arange(n, dtype=np.uint64)[:, None] * np.uint64(1_000_003) + np.arange(RING_POINTS, dtype=np.uint64)[None, :]
    pts = mix64(base ^ _KEY_SALT).ravel()
    own = np.repeat(np.arange(n, dtype=np.int64), RING_POINTS)
    order = np.argsort(pts, kind="stable")
    return pts[order], own[order]


def owner(scheme: str, n: int, keys: np.ndarray, key_space: int) -> np.ndarray:
    """The shard (0..n-1) that owns each key."""
    keys = np.asarray(keys, dtype=np.int64)
    if n <= 1:
        return np.zeros(len(keys), dtype=np.int64)
    if scheme == "range":
        return np.minimum(np.maximum(keys, 0) * n // max(key_space, 1), n - 1)
    h = mix64(keys.astype(np.uint64) ^ _KEY_SALT)
    if scheme == "hash":
        return (h % np.uint64(n)).astype(np.int64)
    pts, own = _ring(n)
    return own[np.searchsorted(pts, h) % len(pts)]


def shares(scheme: str, n: int, key_space: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Each shard's share of the keys 0..key_space-1 (weighted by ``weights`` if given)."""
    o = owner(scheme, n, np.arange(key_space), key_space)
    w = np.ones(key_space) if weights is None else np.asarray(weights, dtype=float)
    out = np.bincount(o, weights=w, minlength=n)
    return out / out.sum() if out.sum() > 0 else out


def keys_moved(scheme: str, old_n: int, new_n: int, key_space: int) -> float:
    """The exact share of the keys 0..key_space-1 whose shard changes when the
    shard count goes from ``old_n`` to ``new_n``: about (N−1)/N with ``hash``,
    about |Δ|/N with ``consistent_hash``."""
    if key_space <= 0:
        return 0.0
    k = np.arange(key_space)
    return float(np.mean(owner(scheme, old_n, k, key_space) != owner(scheme, new_n, k, key_space)))


def query_weights(doc, shard_key: str) -> tuple[np.ndarray, float]:
    """(share of the queries per key, share of cross-shard queries) from the document's
    clients: items weighted by each client's Zipf popularity and rate, users equally."""
    from .caching import zipf_cdf
    clients = [doc.params(c) for c in doc.node_ids() if doc.kind(c) == "client"]
    rate = sum(float(c["rate_rps"]) for c in clients) or 1.0
    cross = sum(float(c["rate_rps"]) * float(c["cross_shard_share"]) for c in clients) / rate
    if shard_key == "item":
        pop = np.zeros(max((int(c["items"]) for c in clients), default=1))
        for c in clients:
            pmf = np.diff(np.r_[0.0, zipf_cdf(int(c["items"]), float(c["zipf_s"]))])
            pop[:len(pmf)] += (float(c["rate_rps"]) or rate / len(clients)) / rate * pmf
    else:
        pop = np.ones(max(sum(int(c["users"]) for c in clients), 1))
    return pop / pop.sum() if pop.sum() > 0 else pop, cross


def resharding(old_net, new_doc) -> dict[str, tuple[int, int, float]]:
    """Databases whose shard count an edit changes (``old_net``: the network compiled
    before it): (old shards, new shards, share of their keys now owned by another shard)."""
    before = {old_net.node_ids[sd.node_index]: sd.n for sd in old_net.shards}
    out = {}
    for n in new_doc.node_ids():
        if new_doc.kind(n) != "database" or n not in old_net.node_ids \
                or old_net.node_kind[old_net.node_ids.index(n)] != "database":
            continue
        old, new = before.get(n, 1), int(new_doc.params(n)["shards"])
        if old != new:
            p = new_doc.params(n)
            space = len(query_weights(new_doc, p["shard_key"])[0])
            out[n] = (old, new, keys_moved(p["shard_scheme"], old, new, space))
    return out


def check_lines(doc) -> list[str]:
    """What ``scalelab check`` says about each sharded database: how its queries spread
    over the shards and how many keys one more shard would move."""
    out = []
    for n in doc.node_ids():
        if doc.kind(n) != "database" or int(doc.params(n)["shards"]) < 2:
            continue
        p = doc.params(n)
        k, scheme, key = int(p["shards"]), p["shard_scheme"], p["shard_key"]
        pop, cross = query_weights(doc, key)
        s = shares(scheme, k, len(pop), pop)
        moved = {sc: keys_moved(sc, k, k + 1, len(pop)) for sc in ("hash", "consistent_hash")}
        out.append(f"Sharding: {n} has {k} shards by {key} ({scheme}): its busiest shard gets {s.max():.0%} of the "
                   f"single-shard queries (an even split is {1 / k:.0%})"
                   + (f", and {cross:.0%} of requests join across all shards" if cross > 0 else "")
                   + f"; a shard more would move {keys_moved(scheme, k, k + 1, len(pop)):.0%} of the keys "
                   f"(hash {moved['hash']:.0%}, consistent_hash {moved['consistent_hash']:.0%})")
    return out


class Sharding:
    def _setup_sharding(self) -> None:
        net = self.net
        self._sharded = bool(net.shards)
        self._rejected: list[tuple[np.ndarray, np.ndarray]] = []   # refused copies: (parent key, cause)
        if not hasattr(self, "resharded"):
            self.resharded: dict[str, tuple[int, int, float]] = {}   # set by update_document (live_update.py)
        self._shard_of = np.full(net.n_stations, -1, dtype=np.int64)   # station -> index in net.shards
        for j, sd in enumerate(net.shards):
            self._shard_of[sd.first:sd.first + sd.n * sd.group] = j
        offsets = np.array([c.user_offset for c in net.clients], dtype=np.int64)
        self._client_offsets = offsets
        self._cross_share = np.array([c.cross_shard_share for c in net.clients], dtype=float)

    def _is_cross(self, batch: Batch) -> np.ndarray:
        if not len(self._cross_share) or not self._cross_share.any():
            return np.zeros(len(batch), dtype=bool)
        c = np.maximum(np.searchsorted(self._client_offsets, batch.user, side="right") - 1, 0)
        return uniform(batch.key, 0, CROSS_SHARD) < self._cross_share[c]

    def _shard_targets(self, target: np.ndarray, batch: Batch) -> tuple[np.ndarray, Batch, np.ndarray]:
        """Send requests bound for a sharded database to the shard that owns their key;
        cross-shard ones also get an internal copy at every other shard."""
        j = self._shard_of[np.maximum(target, 0)]
        j[target < 0] = -1
        if not (j >= 0).any():
            return target, Batch.empty(), np.zeros(0, dtype=np.int64)
        target = target.copy()
        copies, src_st = [], []
        cross_all = self._is_cross(batch)
        for k in np.unique(j[j >= 0]).tolist():
            sd = self.net.shards[k]
            mine = np.nonzero(j == k)[0]
            keys = batch.item[mine] if sd.key == "item" else batch.user[mine]
            own = owner(sd.scheme, sd.n, keys, sd.key_space)
            place = (target[mine] - sd.first) % sd.group     # the same copy within the owning shard
            target[mine] = sd.first + own * sd.group + place
            cross = mine[cross_all[mine]]
            if not len(cross) or sd.n < 2:
                continue
            src = batch.take(cross)
            own_c = own[cross_all[mine]]
            place_c = place[cross_all[mine]]
            for s in range(sd.n):
                o = own_c != s
                if not o.any():
                    continue
                part = src.take(o)
                src_st.append(part.st)
                at = sd.first + s * sd.group + place_c[o]
                at = np.where(part.cls == 1, self.primary[sd.first + s * sd.group], at)
                with np.errstate(over="ignore"):
                    key = mix64(part.key ^ (np.uint64(s + 1) * _COPY))
                copies.append(Batch._raw((at.astype(np.int64), part.birth, part.fin,
                                          part.fin, part.fin, part.cls, part.user,
                                          np.full(len(part), FLAG_INTERNAL, dtype=np.int8), key, part.hop + 1,
                                          part.key.view(np.int64))))   # item: the parent's key
        if not copies:
            return target, Batch.empty(), np.zeros(0, dtype=np.int64)
        return target, Batch.concat(copies), np.concatenate(src_st)

    def _shard_rejects(self, full: Batch, down: Batch) -> None:
        """Remember the copies of cross-shard queries refused at admission (for the join)."""
        for b, cause in ((full, 1), (down, 2)):
            if len(b):
                m = ((b.flags & FLAG_INTERNAL) != 0) & (self._shard_of[b.st] >= 0)
                if m.any():
                    self._rejected.append((b.item[m], np.full(int(m.sum()), cause, dtype=np.int8)))

    def _join_shards(self, lv: int) -> None:
        """After a level's admission: a cross-shard user request ends with its slowest
        part and fails with any refused part (counted at its arrival; it stays at its
        station as internal work: the shard does the work anyway). Idempotent on what
        was joined before, so it may look at all the level's pending requests."""
        rejected, self._rejected = self._rejected, []
        p = self.pending[lv]
        if not len(p):
            return
        at = self._shard_of[p.st] >= 0
        copy = np.nonzero(at & ((p.flags & FLAG_INTERNAL) != 0))[0]
        if not len(copy) and not rejected:
            return
        parent = np.concatenate([p.item[copy]] + [r[0] for r in rejected])
        status = np.concatenate([np.zeros(len(copy), dtype=np.int8)] + [r[1] for r in rejected])
        fin = np.r_[p.fin[copy], np.full(len(parent) - len(copy), -np.inf)]
        gave_up = np.r_[(p.flags[copy] & FLAG_TIMEOUT) != 0, np.zeros(len(parent) - len(copy), dtype=bool)]
        uniq, inv = np.unique(parent, return_inverse=True)
        max_fin = np.full(len(uniq), -np.inf)
        np.maximum.at(max_fin, inv, fin)
        worst = np.zeros(len(uniq), dtype=np.int8)
        np.maximum.at(worst, inv, status)
        timeout = np.zeros(len(uniq), dtype=bool)
        np.logical_or.at(timeout, inv, gave_up)
        users = np.nonzero(at & ((p.flags & FLAG_INTERNAL) == 0))[0]
        if not len(users):
            return
        pk = p.key[users].view(np.int64)
        i = np.minimum(np.searchsorted(uniq, pk), len(uniq) - 1)
        has = uniq[i] == pk
        users, i = users[has], i[has]
        if not len(users):
            return
        p.flags, p.fin, p.start = p.flags.copy(), p.fin.copy(), p.start.copy()
        w = worst[i]
        for cause, code in (("queue_full", 1), ("backend_down", 2)):
            bad = users[w == code]
            if len(bad):
                self._fail(cause, p.arr[bad], p.key[bad])
                p.flags[bad] |= FLAG_INTERNAL       # its own shard's work goes on, nobody waits for it
        ok = w == 0
        u, mf = users[ok], max_fin[i[ok]]
        later = mf > p.fin[u]
        if later.any():   # it waits for the slowest shard (its own work keeps its length)
            v = u[later]
            own_work = p.fin[v] - p.start[v]
            p.fin[v] = mf[later]
            p.start[v] = mf[later] - own_work
        t = u[timeout[i[ok]]]
        if len(t):
            p.flags[t] |= FLAG_TIMEOUT
