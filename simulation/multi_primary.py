"""What multi-primary replication costs: write conflicts and auto-increment id collisions.

With ``primaries`` ≥ 2, every primary takes writes and copies them to the others
``replication_lag_ms`` later (replication.py routes and ships them). Two things go
wrong that a single primary never sees:

- **Write conflicts.** Two writes to the same item committed on different primaries
  less than the lag apart: neither saw the other, the last writer wins and one update
  is lost. Each such pair counts once, booked at the later commit. For Poisson writes
  at rate wᵢ to item i spread evenly over P primaries, a write sees on average
  wᵢ (1 − 1/P) · lag earlier writes of the same item on other primaries within the
  lag, so conflicts come at Σᵢ wᵢ² (1 − 1/P) · lag per second.
- **Id collisions.** An insert takes the next auto-increment id of its primary. A
  primary learns of the other primaries' inserts only after the lag, so two inserts
  on different primaries within the lag can take the same id. With per-primary
  offsets (MySQL's auto_increment_increment = P, auto_increment_offset = p), primary
  p hands out p + k·P and ids never collide.

Both counts depend only on the writes, never on how the run is sliced: conflicts are
counted when the second write of a pair becomes known (every write committed by a
time is known when a request at that time is processed), and ids are handed out in
order of the inserts' arrival at their primary.
"""
from __future__ import annotations

from collections import deque

import numpy as np


def _before(keys: tuple[np.ndarray, ...], t: np.ndarray, q_keys: tuple[np.ndarray, ...], q_t: np.ndarray,
            inclusive: bool) -> np.ndarray:
    """For each query, how many elements (keys…, t) are lexicographically below
    (q_keys…, q_t) (or equal, with ``inclusive``)."""
    n, m = len(t), len(q_t)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    is_q = np.r_[np.zeros(n, dtype=np.int8), np.ones(m, dtype=np.int8)]
    tie = is_q if inclusive else 1 - is_q          # queries after equal elements (≤) or before them (<)
    cols = [tie, np.concatenate([t, q_t])] + [np.concatenate([k, qk]) for k, qk in zip(keys, q_keys)][::-1]
    order = np.lexsort(cols)
    elem = (is_q[order] == 0).astype(np.int64)
    below = np.cumsum(elem) - elem                  # elements strictly before each position
    out = np.empty(m, dtype=np.int64)
    qpos = is_q[order] == 1
    out[order[qpos] - n] = below[qpos]
    return out


def written_elsewhere(item: np.ndarray, station: np.ndarray, fin: np.ndarray, q_item: np.ndarray,
                      q_station: np.ndarray, q_t: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """For each query (item, station, time): the writes (item, station, commit time)
    of that item on another station committed in (time − lag, time)."""
    if not len(q_t) or not len(fin):
        return np.zeros(len(q_t), dtype=np.int64)
    lo = q_t - lag
    same_item = _before((item,), fin, (q_item,), q_t, False) - _before((item,), fin, (q_item,), lo, True)
    same_st = (_before((item, station), fin, (q_item, q_station), q_t, False)
               - _before((item, station), fin, (q_item, q_station), lo, True))
    return np.where(lag > 0, np.maximum(same_item - same_st, 0), 0)


def earlier_conflicts(item: np.ndarray, station: np.ndarray, fin: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """For each write: the writes of the same item on another primary committed
    before it, less than ``lag`` (its database's lag, s) earlier."""
    return written_elsewhere(item, station, fin, item, station, fin, lag)


class IdCounters:
    """The auto-increment counters of one multi-primary database: each primary knows
    its own ids at once and the others' only ``lag`` seconds after they were taken."""

    def __init__(self, primaries: int, lag: float, offsets: bool) -> None:
        self.primaries, self.lag, self.offsets = primaries, lag, offsets
        self.own = [0] * primaries                       # last id each primary handed out
        self.known = [0] * primaries                     # highest id of the others it has learnt
        self.unseen: list[deque] = [deque() for _ in range(primaries)]   # (time, id) not yet known to all

    def allocate(self, times: np.ndarray, primary: np.ndarray) -> np.ndarray:
        """Hand out ids to inserts (in time order) at these primaries (0…P−1); returns the
        times of the inserts whose id another primary had already handed out."""
        if self.offsets:    # id = p + k·P: disjoint sequences, nothing to simulate
            return np.zeros(0)
        collided = []
        for t, p in zip(times.tolist(), primary.tolist()):
            for q in range(self.primaries):
                dq = self.unseen[q]
                while dq and dq[0][0] <= t - self.lag:     # q's old ids are known everywhere by now
                    _, v = dq.popleft()
                    for r in range(self.primaries):
                        if r != q and v > self.known[r]:
                            self.known[r] = v
            v = max(self.own[p], self.known[p]) + 1
            if any(q != p and any(w == v for _, w in self.unseen[q]) for q in range(self.primaries)):
                collided.append(t)
            self.own[p] = v
            self.unseen[p].append((t, v))
        return np.asarray(collided, dtype=float)
