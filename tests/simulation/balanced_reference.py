"""An independent event model of blocking servers, with a load-aware balancer in front
and, optionally, a second tier of blocking servers behind them.

Requests leave the balancer at given instants. The balancer sends each one to the web
replica with the fewest user requests in progress at that instant (waiting, in
service, or holding their worker while the calls downstream run); ties go to the k-th
tied replica, k drawn from the request (``least_connections``; ``least_response_time``:
the lowest (requests + 1) × an EWMA of the replica's response times, weight 0.1, each
taken when a request's service at the web replica ends, from its arrival there), or to
the fewer of two replicas drawn from the request (``power_of_two``), or the request
names its replica (``fixed``). With ``sticky``, a user's first request chooses and the later ones go where
it went (a cookie). A replica of either tier has its workers and a FIFO queue: a request that
finds no worker free waits if fewer than its ``limit`` wait, else it is refused at once
(queue full); it gives up at its arrival there + its patience. A user request holds its
web worker (and its API worker, with a second tier) until its database query ends, or
it is refused or gives up on its way; the database is FIFO with ``k`` connections and
room for all. Replicas in ``beside`` do not block (a server beside the web servers,
behind the same balancer): their worker is free, and the request stops counting there,
when its own service ends; its query (straight to the database, with a second tier
too) then runs holding nothing. With ``means``, a
request's service at the web replica is its draw × that replica's mean. A health
check holds a web worker for its own cost. A heapq of events in
integer nanoseconds, nothing shared with the engine. At one instant: give-ups, then
freed workers, then arrivals downstream, then arrivals at the web replicas. As in the
engine (stations.py), a worker freeing at most 100 ns after an arrival makes room for it
(it starts then, not refused).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

GIVE_UP, FREE, DOWNSTREAM, EWMA, ARRIVE = range(5)
TIE_MARGIN_NS = 100   # the engine's admission margin (admission_kernel.TIE_NS), restated: independent code
ALPHA, FLOOR = 0.1, 1e-6   # least response time: weight of a new response; the least EWMA in the score
WEB, API, DB, ASYNC, API_ASYNC = 0, 1, 2, 3, 4


@dataclass
class Req:
    key: int
    t: int              # leaves the balancer (ns)
    web: int            # service at the web replica (ns)
    db: int             # query at the database (ns)
    u_tie: float = 0.0
    u_a: float = 0.0
    u_b: float = 0.0
    check_replica: int = -1   # >= 0: a health check at that web replica
    replica: int = -1         # its web replica (given, or chosen by the balancer)
    fixed: bool = False       # sent by a blind balancer beside the load-aware one: ``replica`` is given
    user: int = -1
    api: int = 0              # service at the API (second tier), ns
    api_replica: int = -1     # its API replica (the web server's split: given)
    draw: float = -1.0        # its exponential draw at the web tier (with ``means``: web = draw × mean there)
    db2: int = 0              # with a second tier: its query straight from a replica in ``beside`` (ns)
    state: str = "new"        # new, waiting, started, refused, gave_up (at the web tier)
    state2: str = "none"      # the same at the API tier
    t2: int | None = None     # arrival at the API
    end: int | None = None    # answered (user) or done (check)
    held: list = field(default_factory=list)   # (tier, replica) of the workers it holds
    counted: bool = True      # still counts as in progress at its web replica (when it got there)


@dataclass
class Tier:
    replicas: int
    workers: int
    limit: int
    patience: int
    blocking: bool = True   # the API: holds its worker until the query ends (else until its own service does)

    def __post_init__(self) -> None:
        self.busy = [0] * self.replicas
        self.queue: list[list[int]] = [[] for _ in range(self.replicas)]


class BalancedTier:
    def __init__(self, *, replicas: int, workers: int, limit: int, patience: int, connections: int,
                 algorithm: str, api: Tier | None = None, ewma: list[float] | None = None,
                 sticky: bool = False, beside: frozenset = frozenset(), means: list[float] | None = None) -> None:
        self.beside, self.means = beside, means
        self.ewma = list(ewma) if ewma is not None else [0.0] * replicas
        self.cookie: dict[int, int] | None = {} if sticky else None   # user -> replica (sticky affinity)
        self.web = Tier(replicas, workers, limit, patience)
        self.api = api
        self.n, self.T, self.k = replicas, patience, connections
        self.algorithm = algorithm
        self.reqs: list[Req] = []

    def add(self, req: Req) -> None:
        self.reqs.append(req)

    def _choose(self, r: Req, load: list[int]) -> int:
        if self.algorithm == "fixed" or r.fixed:
            return r.replica
        if self.cookie is not None:   # sticky: the replica that served the user first
            if r.user not in self.cookie:
                self.cookie[r.user] = self._least(r, load)
            return self.cookie[r.user]
        return self._least(r, load)

    def _least(self, r: Req, load: list[int]) -> int:
        if self.algorithm == "power_of_two":
            m = self.n
            x = min(int(r.u_a * m), m - 1)
            y = min(int(r.u_b * (m - 1)), m - 2)
            if y >= x:
                y += 1
            return x if load[x] <= load[y] else y
        if self.algorithm == "least_response_time":
            score = [(load[i] + 1.0) * max(self.ewma[i], FLOOR) for i in range(self.n)]
        else:
            score = [float(x) for x in load]
        best = min(score)
        tied = [i for i in range(self.n) if score[i] == best]
        return tied[min(int(r.u_tie * len(tied)), len(tied) - 1)]

    def run(self) -> None:
        ev: list[tuple] = []
        self.ev = ev
        for i, r in enumerate(self.reqs):
            heapq.heappush(ev, (r.t, ARRIVE, r.key, i, WEB))
        self.load = [0] * self.n          # user requests in progress at each web replica
        self.db_free = [0] * self.k
        while ev:
            t, kind, _, i, tier = heapq.heappop(ev)
            r = self.reqs[i]
            if kind == ARRIVE:
                user = r.check_replica < 0
                r.replica = self._choose(r, self.load) if user else r.check_replica
                if user and self.means is not None:
                    r.web = int(round(r.draw * self.means[r.replica] * 1e9))
                self._arrive(i, t, WEB, r.replica)
            elif kind == GIVE_UP:
                state = r.state if tier == WEB else r.state2
                if state == "waiting":
                    q = self.web if tier == WEB else self.api
                    q.queue[r.replica if tier == WEB else r.api_replica].remove(i)
                    self._set(r, tier, "gave_up")
                    self._leave(i, t)
            elif kind == EWMA:   # its service at the web replica ends (ns → s)
                self.ewma[r.replica] += ALPHA * ((t - r.t) / 1e9 - self.ewma[r.replica])
            elif kind == DOWNSTREAM:
                if tier == API:
                    r.t2 = t
                    self._arrive(i, t, API, r.api_replica)
                else:
                    j = min(range(self.k), key=lambda q: self.db_free[q])
                    end = max(t, self.db_free[j]) + (r.db2 if self.api and r.replica in self.beside else r.db)
                    self.db_free[j] = end
                    r.end = end
                    heapq.heappush(ev, (end, FREE, r.key, i, DB))
            elif tier == API_ASYNC:   # its service at an API that does not block ends: that worker is free
                if (API, r.api_replica) in r.held:
                    r.held.remove((API, r.api_replica))
                    self._free(API, r.api_replica, t)
            elif tier == ASYNC:   # its service at a replica that does not block ends: the worker is free
                r.held.remove((WEB, r.replica))
                self.load[r.replica] -= 1
                r.counted = False
                self._free(WEB, r.replica, t)
            else:   # FREE: request i ends (a check: its web worker; a user: every worker it holds)
                self._leave(i, t)

    def _set(self, r: Req, tier: int, state: str) -> None:
        if tier == WEB:
            r.state = state
        else:
            r.state2 = state

    def _arrive(self, i: int, t: int, tier: int, rep: int) -> None:
        r = self.reqs[i]
        q = self.web if tier == WEB else self.api
        if tier == WEB and r.check_replica < 0:
            self.load[rep] += 1
        if q.busy[rep] < q.workers:
            self._start(i, t, tier, rep)
        elif len(q.queue[rep]) < q.limit or self._frees_within_margin(t, tier, rep, len(q.queue[rep])):
            self._set(r, tier, "waiting")
            q.queue[rep].append(i)
            heapq.heappush(self.ev, (t + q.patience, GIVE_UP, r.key, i, tier))
        else:
            self._set(r, tier, "refused")
            self._leave(i, t)

    def _frees_within_margin(self, t: int, tier: int, rep: int, ahead: int) -> bool:
        """Whether more than ``ahead`` workers of ``(tier, rep)`` free within the engine's
        tie margin after ``t`` (stations.py: a start at most TIE_NS after an arrival counts
        as no wait, so the request is not refused): then it gets one."""
        frees = 0
        for when, kind, _, j, ev_tier in self.ev:
            if t < when <= t + TIE_MARGIN_NS:
                held = self.reqs[j].held
                if (kind == FREE and ev_tier in (WEB, DB) and (tier, rep) in held) or \
                        (kind == FREE and ev_tier == ASYNC and tier == WEB and (WEB, rep) in held) or \
                        (kind == FREE and ev_tier == API_ASYNC and tier == API and (API, rep) in held):
                    frees += 1
        return frees > ahead

    def _start(self, i: int, t: int, tier: int, rep: int) -> None:
        r = self.reqs[i]
        q = self.web if tier == WEB else self.api
        self._set(r, tier, "started")
        q.busy[rep] += 1
        r.held.append((tier, rep))
        if r.check_replica >= 0:
            r.end = t + r.web
            heapq.heappush(self.ev, (r.end, FREE, r.key, i, WEB))
        elif tier == WEB:
            if rep in self.beside:
                heapq.heappush(self.ev, (t + r.web, FREE, r.key, i, ASYNC))
            down = API if self.api and rep not in self.beside else DB   # beside: straight to the database
            heapq.heappush(self.ev, (t + r.web, DOWNSTREAM, r.key, i, down))
            heapq.heappush(self.ev, (t + r.web, EWMA, r.key, i, WEB))
        else:
            if not self.api.blocking:
                heapq.heappush(self.ev, (t + r.api, FREE, r.key, i, API_ASYNC))
            heapq.heappush(self.ev, (t + r.api, DOWNSTREAM, r.key, i, DB))

    def _leave(self, i: int, t: int) -> None:
        """Request i leaves the network at t: its workers take the next in their queues."""
        r = self.reqs[i]
        if r.check_replica < 0 and r.replica >= 0 and r.counted:
            self.load[r.replica] -= 1
            r.counted = False
        held, r.held = r.held, []
        for tier, rep in held:
            self._free(tier, rep, t)

    def _free(self, tier: int, rep: int, t: int) -> None:
        q = self.web if tier == WEB else self.api
        q.busy[rep] -= 1
        if q.queue[rep]:
            self._start(q.queue[rep].pop(0), t, tier, rep)


def against_the_model(sim, doc, until: float, algorithm: str) -> tuple[list, dict]:
    """Feed this model what the engine ``sim`` (run to ``until`` with tracing on every
    request) saw of the topology ``doc`` (users → lb → web, → api, → db; a second
    balancer "rr" beside "lb" sends fixed requests; other servers beside "web" behind "lb",
    with web's workers, waiting room and patience: those that do not block are ``beside``): when each request left its
    balancer, its service draws (the engine's counter-based ones, recomputed from its
    key), the health checks; run it; return the requests the two end differently (or
    at another replica) and the model's outcomes by cause, of those the engine finished.
    ``algorithm``: the balancer's, or "fixed" (the replicas the engine chose)."""
    import numpy as np

    from simulation.randomness import PICK, PICK2, SERVICE, TIE, exponential, uniform

    NS = 10**9

    def ns(seconds: float) -> int:
        return int(round(seconds * NS))

    net = sim.net
    web_st = int(net.node_stations[net.node_ids.index("web")][0])
    db_st = int(net.node_stations[net.node_ids.index("db")][0])
    chain = "api" in net.node_ids
    api_st = int(net.node_stations[net.node_ids.index("api")][0]) if chain else -1
    p = doc.node("web").params
    second = None
    if chain:
        a = doc.params("api")
        second = Tier(int(a["replicas"]), int(a["workers"]), int(a["queue_limit"]), ns(float(a["timeout_s"])),
                      blocking=bool(a.get("blocking_calls", False)))
    web_sts = net.node_stations[net.node_ids.index("web")]
    front = [b for b in sim.balancers if net.node_ids[b.bal.node_index] == "lb"][0].bal.backends
    webs = tuple(dict.fromkeys(net.node_ids[net.st_node[s]] for s in front))   # "web", and "web2", "web_b", ...
    beside = len(webs) > 1
    if beside:   # the replicas are the balancer's backends: web's, then the others'
        web_sts = front
    position = {int(s): k for k, s in enumerate(web_sts)}

    def pos(node: str, replica: int) -> int:
        return position[int(net.node_stations[net.node_ids.index(node)][replica])]

    ref = BalancedTier(replicas=len(web_sts), workers=int(p["workers"]), limit=int(p["queue_limit"]),
                       patience=ns(float(p["timeout_s"])), connections=int(doc.node("db").params["connections"]),
                       algorithm=algorithm, api=second, ewma=[float(net.st_mean_read[s]) for s in web_sts],
                       sticky=doc.params("lb").get("affinity") == "sticky",
                       beside=frozenset(k for k, s in enumerate(web_sts) if not sim.stations.hold[s]),
                       means=[float(net.st_mean_read[s]) for s in web_sts] if beside else None)
    mean = net.st_mean_read

    def add(key: int, arrived: float, hop: int, replica: int, api_replica: int, fixed: bool = False,
            user: int = -1) -> None:
        k = np.uint64(key)
        u = [float(uniform(np.array([k]), np.array([hop - 1]), salt)[0]) for salt in (TIE, PICK, PICK2)]
        draw = [float(exponential(k, hop + x, SERVICE)) for x in range(3)]
        if chain:
            ref.add(Req(key, ns(arrived), ns(draw[0] * float(mean[web_st])), ns(draw[2] * float(mean[db_st])), *u,
                        replica=replica, api=ns(draw[1] * float(mean[api_st])), api_replica=api_replica, fixed=fixed,
                        user=user, draw=draw[0], db2=ns(draw[1] * float(mean[db_st]))))
        else:
            ref.add(Req(key, ns(arrived), ns(draw[0] * float(mean[web_st])), ns(draw[1] * float(mean[db_st])), *u,
                        replica=replica, fixed=fixed, user=user, draw=draw[0]))

    traces = sim.traces()
    api_of = {}
    for tr in traces:
        at = [i for i, h in enumerate(tr.hops) if h.node in webs]
        at2 = [h.replica for h in tr.hops if h.node == "api"]
        api_of[tr.key] = at2[0] if at2 else 0
        if at:   # else still at the balancer
            add(tr.key, tr.hops[at[0]].arrived_s, at[0], pos(tr.hops[at[0]].node, tr.hops[at[0]].replica),
                api_of[tr.key],
                fixed=tr.hops[0].node == "rr", user=tr.user)   # "rr": a blind balancer beside the load-aware one
    via = {tr.key: tr.hops[0].node for tr in traces if tr.hops}
    at_web = {tr.key for tr in traces if any(h.node in webs for h in tr.hops)}
    waiting = sim.pending[sim._lb]   # waiting undecided at a replica at the end (traced there since 2026-12-01)
    for i in np.flatnonzero(np.isinf(waiting.start)):
        key = int(waiting.key[i])
        if key in at_web:
            continue
        add(key, float(waiting.arr[i]), int(waiting.hop[i]), position[int(waiting.st[i])], 0,
            fixed=via.get(key) == "rr", user=int(waiting.user[i]))
    if chain:   # waiting at the API at the end: their API replica
        w2 = sim.pending[int(net.st_level[api_st])]
        for i in np.flatnonzero(np.isinf(w2.start)):
            for r in ref.reqs:
                if r.key == int(w2.key[i]):
                    r.api_replica = int(net.st_replica[w2.st[i]])
    for b in sim.balancers:   # health checks: a worker for their cost at every replica
        k = np.arange(int(np.ceil((until - b.health.anchor) / b.health.interval)) + 1)
        for t in b.health.anchor + k * b.health.interval:
            if 0 <= t < until:
                for r in range(ref.n):
                    ref.add(Req(-1 - len(ref.reqs), ns(t), ns(b.bal.check_cost_s), 0, check_replica=r))
    ref.run()
    by_key = {r.key: r for r in ref.reqs if r.check_replica < 0}
    wrong, causes = [], {"answered": 0, "queue_full": 0, "timeout": 0}
    for tr in traces:
        if tr.outcome == "in_flight" or tr.key not in by_key:
            continue
        r = by_key[tr.key]
        at = [i for i, h in enumerate(tr.hops) if h.node in webs]
        went = pos(tr.hops[at[0]].node, tr.hops[at[0]].replica)
        if r.state == "refused":
            want = ("failed", "queue_full", r.t)
        elif r.state == "gave_up":
            want = ("failed", "timeout", r.t + ref.T)
        elif r.state2 == "refused":
            want = ("failed", "queue_full", r.t2)
        elif r.state2 == "gave_up":
            want = ("failed", "timeout", r.t2 + ref.api.patience)
        else:
            want = ("answered", None, r.end)
        causes[want[1] or "answered"] += 1
        got = (tr.outcome, tr.cause, ns(tr.end_s))
        if tr.cause == "session_lost":   # answered without the session it had elsewhere: the same times
            got = ("answered", None, got[2])
        if got[:2] != want[:2] or abs(got[2] - want[2]) > 1 or went != r.replica:
            wrong.append((tr.key, got, went, want, r.replica))
    return wrong, causes
