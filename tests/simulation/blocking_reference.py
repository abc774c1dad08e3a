"""An independent event-by-event model of a blocking tier, to check the engine's sweeps.

Arrivals (at the web replicas, as round robin sent them) → blocking web servers with
``c`` workers each, a waiting room and a patience → a database with ``k`` connections,
a waiting room and a patience, which may fail and recover, as may each web replica. A
web worker is held from
the start of its request's service until that request's database query ends, gives
up, is refused or is lost: then the worker takes the next request of its replica's
FIFO queue. Health checks are requests at the web replicas that hold a worker for
their cost only. A heapq of events in integer nanoseconds (as the engine's admission),
one request at a time, nothing shared with the engine's code.

The waiting room follows the engine's definition (docs/engine.md): a request is
refused when ``queue_limit`` requests admitted before it at its replica are still
waiting after its arrival: each keeps its place until it starts or gives up (at its
arrival + patience). Whether a request ahead starts within the tie tolerance of the
arrival is not known at the arrival, so an arrival stays *undecided* in the queue
until every request that was waiting when it arrived is resolved (started, gone or
refused); it is then refused (failing at its arrival) or admitted. The database's
starts are known at its arrivals (nothing holds its connections), so it decides there,
counting the requests admitted before that start or give up after the arrival.
With no waiting room (``queue_limit`` 0) an arrival waits at most ``TIE`` ns: it is
refused unless a worker is released by then (as ``decide_one``: refused when its start
is more than ``TIE`` after its arrival).

Ties within ``TIE`` ns are decided as the engine decides them (stations.TIE_NS).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

TIE = 100   # ns (simulation.stations.TIE_NS)

# event kinds, in the order they are handled at one instant: releases first (the engine
# starts a request at max(free, arrival)), then arrivals, then give-ups (at T + TIE)
RELEASE, DB_FAIL, DB_RECOVER, WEB_DONE, ARRIVE, DB_END, WEB_PATIENCE, WEB_FAIL, WEB_RECOVER = range(9)


@dataclass
class Entry:
    key: int
    a: int
    replica: int
    check: bool
    service: int
    status: str = "undecided"     # undecided, admitted, started, refused, gave_up, lost
    start: int | None = None
    lost: int | None = None       # when its replica failed while it waited or was in service
    gen: int = 0                  # its replica's life (a failure starts another) when it started
    ahead: list = field(default_factory=list)   # those waiting when it arrived


@dataclass
class Outcome:
    """What became of a user request: answered or failed (cause) at ``t`` (ns)."""

    @property
    def refused_at_web(self) -> bool:
        return self.cause == "queue_full" and self.web_start is None and self.t == self.arrived

    outcome: str
    cause: str | None
    t: int
    arrived: int
    web_start: int | None = None


class BlockingTier:
    def __init__(self, *, replicas: int, workers: int, web_limit: int, web_timeout: int, connections: int,
                 db_limit: int, db_timeout: int, db_fail: int | None = None, db_recover: int | None = None,
                 web_fails: tuple = ()) -> None:
        """``web_fails``: (replica, fails at, recovers at) in ns. A failed replica loses the
        requests waiting there and those in its own service (``node_failed``); one waiting
        undecided is first decided (refused at its arrival, or lost), counting those ahead of
        it lost then as waiting until the failure. Those at the database go on; their workers
        are gone (the replica recovers with all its workers free)."""
        self.c, self.web_limit, self.web_T = workers, web_limit, web_timeout
        self.k, self.db_limit, self.db_T = connections, db_limit, db_timeout
        self.free = [workers] * replicas
        self.up = [True] * replicas
        self.gen = [0] * replicas
        self.in_web: list[list[Entry]] = [[] for _ in range(replicas)]   # in their own service there
        self.started_gen: dict[int, int] = {}
        self.queue: list[list[Entry]] = [[] for _ in range(replicas)]
        self.db_free = [0] * connections
        self.db_leaves: list[int] = []        # when the database's admitted requests leave its waiting room
        self.db_up = True
        self.db_live: dict[int, int] = {}     # key -> replica of the requests at the database
        self.events: list[tuple] = []
        self.seq = 0
        self.out: dict[int, Outcome] = {}
        self.db_service: dict[int, int] = {}
        self.web_start: dict[int, int] = {}
        self.arrival: dict[int, int] = {}
        self.waiting_marks: dict[int, list[int]] = {}   # whole second -> waiting per replica
        if db_fail is not None:
            self._push(db_fail, DB_FAIL, None)
        if db_recover is not None:
            self._push(db_recover, DB_RECOVER, None)
        for r, down, back in web_fails:
            self._push(down, WEB_FAIL, r)
            self._push(back, WEB_RECOVER, r)

    def _push(self, t: int, kind: int, data) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, data))

    def add_request(self, key: int, arrival: int, replica: int, web_service: int, db_service: int) -> None:
        self.db_service[key] = db_service
        self._push(arrival, ARRIVE, Entry(key, arrival, replica, False, web_service))

    def add_check(self, arrival: int, replica: int, cost: int) -> None:
        self._push(arrival, ARRIVE, Entry(-1, arrival, replica, True, cost))

    def run(self, until: int, marks: list[int] = ()) -> dict[int, Outcome]:
        marks = sorted(m for m in marks if m < until)
        while self.events and self.events[0][0] < until:
            t, kind, _, data = heapq.heappop(self.events)
            while marks and marks[0] < t:   # the waiting requests at a whole second
                self._mark(marks.pop(0))
            getattr(self, ("_release", "_db_fail", "_db_recover", "_web_done", "_arrive", "_db_end",
                           "_web_patience", "_web_fail", "_web_recover")[kind])(t, data)
        for m in marks:   # after the last event before ``until``: the queues stay as they are
            self._mark(m)
        return self.out

    # ----- the web replicas --------------------------------------------------------------
    def _arrive(self, t: int, e: Entry) -> None:
        if not self.up[e.replica]:   # the balancer has not noticed yet
            if not e.check:
                self.out[e.key] = Outcome("failed", "backend_down", t, t)
            return
        q = self.queue[e.replica]
        e.ahead = list(q)
        q.append(e)
        # no waiting room: refused unless it starts within the tie tolerance (a worker
        # released up to TIE ns after its arrival takes it, as the engine decides)
        self._push(t + (TIE if self.web_limit == 0 else self.web_T + TIE), WEB_PATIENCE, e)
        self._serve(e.replica, t)

    def _decide(self, e: Entry) -> bool:
        """Admit or refuse an undecided request (everyone waiting when it came is resolved)."""
        if e.status == "undecided":
            assert all(x.status in ("started", "refused", "gave_up", "lost") for x in e.ahead)
            waiting = sum(1 for x in e.ahead if (x.status == "started" and x.start > e.a + TIE)
                          or (x.status == "gave_up" and x.a + self.web_T > e.a + TIE)
                          or (x.status == "lost" and (x.lost if x.start is None else x.start) > e.a + TIE))
            if self.web_limit and waiting >= self.web_limit:
                self._refuse(e)
                return False
            e.status = "admitted"
        return True

    def _refuse(self, e: Entry) -> None:
        e.status = "refused"
        if e in self.queue[e.replica]:
            self.queue[e.replica].remove(e)
        if not e.check:
            self.out[e.key] = Outcome("failed", "queue_full", e.a, e.a)

    def _serve(self, r: int, t: int) -> None:
        q = self.queue[r]
        while q and self.free[r] and self.up[r]:
            e = q[0]
            if not self._decide(e):
                continue
            q.pop(0)
            e.status, e.start, e.gen = "started", t, self.gen[r]
            self.in_web[r].append(e)
            self.free[r] -= 1
            self._push(t + e.service, WEB_DONE, e)

    def _web_patience(self, t: int, e: Entry) -> None:
        if e.status in ("started", "refused", "lost"):
            return
        if self.web_limit == 0:   # no worker within the tie tolerance
            self._refuse(e)
        elif self._decide(e):
            e.status = "gave_up"
            self.queue[e.replica].remove(e)
            if not e.check:
                self.out[e.key] = Outcome("failed", "timeout", e.a + self.web_T, e.a)

    def _web_done(self, t: int, e: Entry) -> None:
        if e.status == "lost":
            return
        self.in_web[e.replica].remove(e)
        if e.check:
            self._release(t, (e.replica, e.gen))
            return
        self.started_gen[e.key] = e.gen
        self.web_start[e.key] = e.start
        self.arrival[e.key] = e.a
        self._db_arrive(t, e.key, e.replica)

    def _release(self, t: int, data: tuple[int, int]) -> None:
        replica, gen = data
        if gen != self.gen[replica]:   # a worker of the replica's life before its failure
            return
        self.free[replica] += 1
        self._serve(replica, t)

    def _end(self, t: int, key: int, replica: int, outcome: str, cause: str | None) -> None:
        self.out[key] = Outcome(outcome, cause, t, self.arrival[key], self.web_start[key])
        self._push(t, RELEASE, (replica, self.started_gen[key]))

    def _web_fail(self, t: int, r: int) -> None:
        self.up[r] = False
        for e in list(self.queue[r]):   # in arrival order: each decided with those ahead of it
            if e.status == "undecided" and not self._decide(e):
                continue
            e.status, e.lost = "lost", t
            if not e.check:
                self.out[e.key] = Outcome("failed", "node_failed", t, e.a)
        for e in self.in_web[r]:
            e.status, e.lost = "lost", t
            if not e.check:
                self.out[e.key] = Outcome("failed", "node_failed", t, e.a, e.start)
        self.queue[r], self.in_web[r] = [], []
        self.gen[r] += 1
        self.free[r] = 0

    def _web_recover(self, t: int, r: int) -> None:
        self.up[r] = True
        self.free[r] = self.c

    # ----- the database ------------------------------------------------------------------
    def _db_arrive(self, t: int, key: int, replica: int) -> None:
        if not self.db_up:
            self._end(t, key, replica, "failed", "backend_down")
            return
        w = min(range(self.k), key=lambda i: (self.db_free[i], i))
        start = max(self.db_free[w], t)
        if self.db_limit == 0:
            full = start > t + TIE
        else:
            full = sum(1 for s in self.db_leaves if s > t + TIE) >= self.db_limit
        if full:
            self._end(t, key, replica, "failed", "queue_full")
        elif start - t > self.db_T + TIE:   # waits in the waiting room until it gives up
            self.db_leaves.append(t + self.db_T)
            self.db_live[key] = replica
            self._push(t + self.db_T, DB_END, (key, "timeout"))
        else:
            self.db_leaves.append(start)
            self.db_free[w] = start + self.db_service[key]
            self.db_live[key] = replica
            self._push(self.db_free[w], DB_END, (key, None))

    def _db_end(self, t: int, data) -> None:
        key, cause = data
        replica = self.db_live.pop(key, None)
        if replica is not None:   # not lost in a failure before
            self._end(t, key, replica, "answered" if cause is None else "failed", cause)

    def _db_fail(self, t: int, _) -> None:
        self.db_up = False
        for key, replica in list(self.db_live.items()):
            self._end(t, key, replica, "failed", "node_failed")
        self.db_live.clear()

    def _db_recover(self, t: int, _) -> None:
        self.db_up = True
        self.db_free = [t] * self.k
        self.db_leaves = []

    def _mark(self, m: int) -> None:
        """Remember who is in the web replicas' queues at ``m`` (decided or not)."""
        self.waiting_marks[m] = [list(q) for q in self.queue]

    def waiting_at(self, m: int) -> int:
        """User requests waiting at the web tier at ``m``, once their fate is known: those
        that start after ``m`` and those still waiting to give up (refused ones never waited)."""
        return sum(1 for q in self.waiting_marks[m] for e in q if not e.check and (
            (e.status == "started" and e.start > m) or (e.status == "gave_up" and e.a + self.web_T > m)))

    def in_system_at(self, t: int) -> int:
        """User requests at the tier (web or database) at ``t``: arrived and not yet ended
        (a refused request never was there)."""
        return sum(1 for o in self.out.values() if o.arrived <= t < o.t and not o.refused_at_web)
