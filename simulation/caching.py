"""A shared cache's hit ratio, emerging from item popularity, size, TTL and writes.

Each request names an item, drawn from its client's Zipf popularity. For every
item the cache computes the probability that a read finds it fresh, from the
rates it sees (reads λ and writes w per item, λ = Λ·p):

- size (LRU): Che's approximation — an item is cached if it was requested within
  the last T_C, where Σ (1 − e^{−λ T_C}) = size; hit = 1 − e^{−λ T_C};
- TTL: an item lives TTL after a miss fills it (and, with invalidation on write,
  until the next write): a cycle serves λ·m hits after one miss, m = TTL or
  (1 − e^{−w TTL}) / w, so hit = λm / (1 + λm);
- the hit probability is the smaller of the two;
- with TTL-only invalidation, a hit at age a is stale if the item was written
  since it was filled: P(stale | hit) = 1 − (1 − e^{−w TTL}) / (w TTL).

The rates are smoothed estimates of what reaches the cache (time constant
10 s), so a new cache starts cold and warms up. They are defined on simulated
seconds only: the arrivals at the cache are counted by the second in which they
arrive, and a request that arrives in second ``s`` sees the cache as the
seconds before ``s`` left it. However a run is sliced into windows, every
request sees the same cache.
"""
from __future__ import annotations

import math

import numpy as np

RATE_TIME_CONSTANT_S = 10.0


def zipf_cdf(items: int, s: float) -> np.ndarray:
    w = np.arange(1, items + 1, dtype=float) ** (-s)
    c = np.cumsum(w)
    return c / c[-1]


def che_time(rates: np.ndarray, size: int) -> float:
    """T_C with Σ(1 − e^{−λ T_C}) = size (inf when everything requested fits)."""
    active = rates[rates > 0]
    if len(active) <= size:
        return math.inf
    lo, hi = 1e-9, 1.0
    while np.sum(-np.expm1(-active * hi)) < size:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if np.sum(-np.expm1(-active * mid)) < size:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


class CacheModel:
    def __init__(self, popularity: np.ndarray, size: int, ttl: float, on_write: bool) -> None:
        self.popularity = popularity        # p_k, sums to 1
        self.size = size
        self.ttl = ttl
        self.on_write = on_write
        self.read_rate = 0.0                # Λ, smoothed over simulated seconds
        self.write_rate = 0.0
        self._computed_at = (-1.0, -1.0)
        self.hit = np.zeros(len(popularity))
        self.stale = np.zeros(len(popularity))
        self._counts: dict[int, list[int]] = {}        # arrivals by second: [reads, writes]
        self._second = 0                                # hit/stale describe this second
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {0: (self.hit, self.stale)}

    stores = True   # False: every server behind it answers Cache-Control: private (see may_store)

    def count(self, arrivals: np.ndarray, writes: np.ndarray) -> None:
        """Book requests arriving at the cache (times, and which of them write)."""
        if not len(arrivals):
            return
        sec = np.floor(arrivals).astype(np.int64)
        lo = int(sec.min())
        n_w = np.bincount(sec - lo, weights=writes.astype(float))
        n_all = np.bincount(sec - lo)
        for k in np.nonzero(n_all)[0].tolist():
            c = self._counts.setdefault(lo + k, [0, 0])
            c[0] += int(n_all[k] - n_w[k])
            c[1] += int(n_w[k])

    def state_at(self, second: int) -> tuple[np.ndarray, np.ndarray]:
        """(hit, stale) per item for requests arriving in ``second``: the rates of the
        seconds before it, which are complete whenever such a request is routed."""
        while self._second < second:
            reads, writes = self._counts.pop(self._second, (0, 0))
            a = -math.expm1(-1.0 / RATE_TIME_CONSTANT_S)
            self.read_rate += a * (reads - self.read_rate)
            self.write_rate += a * (writes - self.write_rate)
            self._second += 1
            r0, w0 = self._computed_at
            if abs(self.read_rate - r0) > 0.05 * max(r0, 1e-9) or abs(self.write_rate - w0) > 0.05 * max(w0, 1e-9):
                self._compute()
            self._states[self._second] = (self.hit, self.stale)
        state = self._states.get(second)
        if state is None:   # older than anything kept: the oldest state known
            state = self._states[min(self._states)]
        return state

    def forget_before(self, second: int) -> None:
        """Drop the states of seconds no request can still need."""
        for s in [s for s in self._states if s < second and s != self._second]:
            del self._states[s]

    def adopt(self, other: "CacheModel") -> None:
        """Carry the rate estimates of another model (a live edit that kept this cache as
        it was): with the same popularity its hit ratios too, else they are computed anew."""
        self.read_rate, self.write_rate = other.read_rate, other.write_rate
        self._counts = {k: list(v) for k, v in other._counts.items()}
        self._second = other._second
        if self.stores == other.stores and np.array_equal(self.popularity, other.popularity):
            self.hit, self.stale, self._computed_at = other.hit, other.stale, other._computed_at
            self._states = dict(other._states)
            return
        self._compute()
        self._states = {self._second: (self.hit, self.stale)}

    def same_cache(self, other: "CacheModel") -> bool:
        """Whether a live edit left it as it was (else it restarts cold, as a cache does)."""
        return (len(self.popularity), self.size, self.ttl, self.on_write) == \
            (len(other.popularity), other.size, other.ttl, other.on_write)

    def _compute(self) -> None:
        self._computed_at = (self.read_rate, self.write_rate)
        if not self.stores:   # a shared cache must not store private responses: every read passes
            self.hit, self.stale = np.zeros(len(self.popularity)), np.zeros(len(self.popularity))
            return
        lam = self.read_rate * self.popularity
        w = self.write_rate * self.popularity
        t_c = che_time(lam + w, self.size)
        h_lru = np.ones_like(lam) if math.isinf(t_c) else -np.expm1(-lam * t_c)
        with np.errstate(divide="ignore", invalid="ignore"):
            life = np.where(w > 0, -np.expm1(-w * self.ttl) / np.where(w > 0, w, 1.0), self.ttl)
            if not self.on_write:
                life = np.full_like(lam, self.ttl)
            h_ttl = lam * life / (1.0 + lam * life)
            self.hit = np.minimum(h_lru, h_ttl)
            if self.on_write:
                self.stale = np.zeros_like(lam)
            else:
                wt = w * self.ttl
                self.stale = np.where(wt > 1e-12, 1.0 + np.expm1(-wt) / np.where(wt > 1e-12, wt, 1.0), 0.0)


def may_store(document, node_id: str) -> bool:
    """Whether a shared cache may store what it is asked for: not when one of the first servers
    behind it (through load balancers and other caches) answers ``Cache-Control: private`` (the
    response holds one user's data; the most restrictive directive wins). A cache in front of
    databases only is an application cache: HTTP directives do not apply to it."""
    seen, todo = {node_id}, list(document.successors(node_id))
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        kind = document.kind(n)
        if kind == "server":
            if document.params(n).get("cache_control") == "private":
                return False
        elif kind != "database":
            todo.extend(document.successors(n))
    return True
