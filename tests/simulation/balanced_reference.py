"""An independent event model of a load-aware balancer in front of blocking servers.

Requests leave the balancer at given instants. The balancer sends each one to the
replica with the fewest user requests in progress at that instant (waiting, in
service, or holding their worker while the database works for them); ties go to the
k-th tied replica, k drawn from the request (``least_connections``), or to the fewer
of two replicas drawn from the request (``power_of_two``). A replica has ``c`` workers
and a FIFO queue: a request that finds no worker free waits if fewer than ``limit``
wait, else it is refused at once (queue full); it gives up at arrival + ``patience``.
A user request holds its worker through its own service and its database query (a
FIFO database with ``k`` connections and room for all); a health check, for its own
cost. A heapq of events in integer nanoseconds, nothing shared with the engine.
At one instant: give-ups, then freed workers and departures, then database arrivals,
then arrivals at the replicas.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

GIVE_UP, FREE, DB_ARRIVE, ARRIVE = range(4)


@dataclass
class Req:
    key: int
    t: int              # leaves the balancer (ns)
    web: int            # service at the replica (ns)
    db: int             # query at the database (ns)
    u_tie: float = 0.0
    u_a: float = 0.0
    u_b: float = 0.0
    check_replica: int = -1   # >= 0: a health check at that replica
    replica: int = -1
    state: str = "new"      # new, waiting, started, refused, gave_up
    end: int | None = None  # answered (user) or done (check)


class BalancedTier:
    def __init__(self, *, replicas: int, workers: int, limit: int, patience: int, connections: int,
                 algorithm: str) -> None:
        self.n, self.c, self.limit, self.T, self.k = replicas, workers, limit, patience, connections
        self.algorithm = algorithm
        self.reqs: list[Req] = []

    def add(self, req: Req) -> None:
        self.reqs.append(req)

    def _choose(self, r: Req, load: list[int]) -> int:
        if self.algorithm == "power_of_two":
            m = self.n
            x = min(int(r.u_a * m), m - 1)
            y = min(int(r.u_b * (m - 1)), m - 2)
            if y >= x:
                y += 1
            return x if load[x] <= load[y] else y
        best = min(load)
        tied = [i for i in range(self.n) if load[i] == best]
        return tied[min(int(r.u_tie * len(tied)), len(tied) - 1)]

    def run(self) -> None:
        ev: list[tuple] = []
        for i, r in enumerate(self.reqs):
            heapq.heappush(ev, (r.t, ARRIVE, r.key, i))
        busy = [0] * self.n
        queue: list[list[int]] = [[] for _ in range(self.n)]
        load = [0] * self.n          # user requests in progress
        db_free = [0] * self.k
        while ev:
            t, kind, _, i = heapq.heappop(ev)
            r = self.reqs[i]
            if kind == ARRIVE:
                user = r.check_replica < 0
                rep = self._choose(r, load) if user else r.check_replica
                r.replica = rep
                if busy[rep] < self.c:
                    self._start(i, t, busy, load, ev)
                elif len(queue[rep]) < self.limit:
                    r.state = "waiting"
                    queue[rep].append(i)
                    load[rep] += user
                    heapq.heappush(ev, (t + self.T, GIVE_UP, r.key, i))
                else:
                    r.state = "refused"
            elif kind == GIVE_UP:
                if r.state == "waiting":
                    r.state = "gave_up"
                    queue[r.replica].remove(i)
                    load[r.replica] -= r.check_replica < 0
            elif kind == DB_ARRIVE:
                j = min(range(self.k), key=lambda q: db_free[q])
                end = max(t, db_free[j]) + r.db
                db_free[j] = end
                r.end = end
                heapq.heappush(ev, (end, FREE, r.key, i))
            else:   # FREE: request i leaves its worker at replica r.replica
                rep = r.replica
                busy[rep] -= 1
                load[rep] -= r.check_replica < 0
                if queue[rep]:
                    j = queue[rep].pop(0)
                    load[rep] -= self.reqs[j].check_replica < 0   # counted again in _start
                    self._start(j, t, busy, load, ev)

    def _start(self, i: int, t: int, busy: list[int], load: list[int], ev: list) -> None:
        r = self.reqs[i]
        r.state = "started"
        busy[r.replica] += 1
        if r.check_replica < 0:
            load[r.replica] += 1
            heapq.heappush(ev, (t + r.web, DB_ARRIVE, r.key, i))
        else:
            r.end = t + r.web
            heapq.heappush(ev, (r.end, FREE, r.key, i))
