"""SimPy reference models of the benchmark scenarios (``pip install .[bench]``).

The textbook SimPy model, written the way a SimPy user would write it and not
handicapped: one source process draws Poisson arrivals (exponential gaps), each
request is a process that picks a server uniformly at random (the load balancer
with algorithm "random"; its own service time, 1e-7 s in the engine's
scenario, is left out), waits for that server's ``simpy.Resource(capacity=1)``,
holds it for an exponential service time and records its response time.
Random numbers come from one ``random.Random(seed)`` (C-implemented, bound
methods hoisted out of the loops). Nothing is dropped: queues are unbounded.

Recorded per completed request: the response time (kept in a compact
``array('d')`` for percentiles) and, per simulated second of completion, the
count and sum (for batch-means confidence intervals). Requests still in the
system when the run ends are not counted, exactly as the engine's
``totals()`` does not count requests in flight.
"""
from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field

import simpy


@dataclass
class SimpyResult:
    duration_s: float
    arrived: int = 0
    served: int = 0
    lat_sum: float = 0.0
    latencies: array = field(default_factory=lambda: array("d"))
    per_second_n: list[int] = field(default_factory=list)
    per_second_sum: list[float] = field(default_factory=list)

    @property
    def mean_s(self) -> float:
        return self.lat_sum / self.served if self.served else float("nan")


def random_split_mm1(rate_rps: float, n_servers: int, service_rps: float, duration_s: float,
                     seed: int = 1) -> SimpyResult:
    """Poisson(rate) → uniform random choice → n M/M/1 servers (μ = service_rps each)."""
    rnd = random.Random(seed)
    expo = rnd.expovariate
    unif = rnd.random
    env = simpy.Environment()
    timeout = env.timeout
    servers = [simpy.Resource(env, capacity=1) for _ in range(n_servers)]
    res = SimpyResult(duration_s)
    n_sec = int(duration_s) + 1
    sec_n = [0] * n_sec
    sec_sum = [0.0] * n_sec
    lats = res.latencies
    record = lats.append

    def request(server: simpy.Resource, t_arrival: float):
        with server.request() as req:
            yield req
            yield timeout(expo(service_rps))
        now = env.now
        rt = now - t_arrival
        record(rt)
        k = int(now)
        sec_n[k] += 1
        sec_sum[k] += rt

    def source():
        process = env.process
        n = n_servers
        while True:
            yield timeout(expo(rate_rps))
            res.arrived += 1
            process(request(servers[int(unif() * n)], env.now))

    env.process(source())
    env.run(until=duration_s)
    res.served = len(lats)
    res.lat_sum = float(sum(lats))
    res.per_second_n = sec_n[:int(duration_s)]
    res.per_second_sum = sec_sum[:int(duration_s)]
    return res


def _finish(res: SimpyResult, lats: array, sec_n: list[int], sec_sum: list[float], duration_s: float) -> SimpyResult:
    res.served = len(lats)
    res.lat_sum = float(sum(lats))
    res.per_second_n = sec_n[:int(duration_s)]
    res.per_second_sum = sec_sum[:int(duration_s)]
    return res


def server_database(rate_rps: float, replicas: int, workers: int, capacity_rps: float, connections: int,
                    read_rps: float, write_rps: float, read_ratio: float, duration_s: float,
                    seed: int = 1, blocking: bool = False) -> SimpyResult:
    """S3: Poisson(rate) → a random one of ``replicas`` servers (``workers`` each, exponential
    service of mean workers/capacity) → one database (``connections``; exponential queries of
    mean connections/read_rps for a read, connections/write_rps for a write): tandem queues,
    the response time is the sum of both sojourns (the engine's non-blocking server). With
    ``blocking`` the server's worker is held until the query answers (``blocking_calls``)."""
    rnd = random.Random(seed)
    expo, unif = rnd.expovariate, rnd.random
    env = simpy.Environment()
    timeout = env.timeout
    servers = [simpy.Resource(env, capacity=workers) for _ in range(replicas)]
    db = simpy.Resource(env, capacity=connections)
    mu_server = capacity_rps / workers
    mu_read, mu_write = read_rps / connections, write_rps / connections
    res = SimpyResult(duration_s)
    n_sec = int(duration_s) + 1
    sec_n, sec_sum = [0] * n_sec, [0.0] * n_sec
    lats = res.latencies
    record = lats.append

    def query(read: bool):
        with db.request() as req:
            yield req
            yield timeout(expo(mu_read if read else mu_write))

    def request(server: simpy.Resource, t_arrival: float, read: bool):
        with server.request() as req:
            yield req
            yield timeout(expo(mu_server))
            if blocking:
                yield from query(read)
        if not blocking:
            yield from query(read)
        now = env.now
        rt = now - t_arrival
        record(rt)
        k = int(now)
        sec_n[k] += 1
        sec_sum[k] += rt

    def source():
        process = env.process
        while True:
            yield timeout(expo(rate_rps))
            res.arrived += 1
            process(request(servers[int(unif() * replicas)], env.now, unif() < read_ratio))

    env.process(source())
    env.run(until=duration_s)
    return _finish(res, lats, sec_n, sec_sum, duration_s)


def least_balanced(rate_rps: float, n_servers: int, service_rps: float, duration_s: float, seed: int = 1,
                   algorithm: str = "least_connections", ewma_alpha: float = 0.1) -> SimpyResult:
    """S4: Poisson(rate) → a balancer that sends each request to the server with the fewest
    requests in it (``least_connections``), or the lowest (requests + 1) × recent response
    time (``least_response_time``: an exponentially weighted mean of the server's response
    times, weight ``ewma_alpha`` per completion, as the engine's); ties go to a random one.
    Each server is M/M/1 (μ = service_rps)."""
    rnd = random.Random(seed)
    expo, unif = rnd.expovariate, rnd.random
    env = simpy.Environment()
    timeout = env.timeout
    servers = [simpy.Resource(env, capacity=1) for _ in range(n_servers)]
    conn = [0] * n_servers
    ewma = [1.0 / service_rps] * n_servers
    lrt = algorithm == "least_response_time"
    res = SimpyResult(duration_s)
    n_sec = int(duration_s) + 1
    sec_n, sec_sum = [0] * n_sec, [0.0] * n_sec
    lats = res.latencies
    record = lats.append
    idx = range(n_servers)

    def request(i: int, t_arrival: float):
        conn[i] += 1
        with servers[i].request() as req:
            yield req
            yield timeout(expo(service_rps))
        conn[i] -= 1
        now = env.now
        rt = now - t_arrival
        if lrt:
            ewma[i] += ewma_alpha * (rt - ewma[i])
        record(rt)
        k = int(now)
        sec_n[k] += 1
        sec_sum[k] += rt

    def pick() -> int:
        if lrt:
            score = [(conn[i] + 1) * ewma[i] for i in idx]
        else:
            score = conn
        best = min(score)
        ties = [i for i in idx if score[i] == best]
        return ties[0] if len(ties) == 1 else ties[int(unif() * len(ties))]

    def source():
        process = env.process
        while True:
            yield timeout(expo(rate_rps))
            res.arrived += 1
            process(request(pick(), env.now))

    env.process(source())
    env.run(until=duration_s)
    return _finish(res, lats, sec_n, sec_sum, duration_s)


def sync_chain(rate_rps: float, n_web: int, web_workers: int, web_rps: float, n_api: int, api_workers: int,
               api_rps: float, connections: int, db_rps: float, duration_s: float, seed: int = 1) -> SimpyResult:
    """S6: Poisson(rate) → least connections (the web replica with the fewest requests in it,
    ties at random) → web (``n_web`` replicas × ``web_workers`` sync workers, exponential
    service of mean web_workers/web_rps) → a random one of ``n_api`` API replicas (sync
    workers too) → a database (``connections``, exponential queries of mean
    connections/db_rps). A web worker is held until the API answers, an API worker until
    the query answers (``blocking_calls`` at both tiers)."""
    rnd = random.Random(seed)
    expo, unif = rnd.expovariate, rnd.random
    env = simpy.Environment()
    timeout = env.timeout
    webs = [simpy.Resource(env, capacity=web_workers) for _ in range(n_web)]
    apis = [simpy.Resource(env, capacity=api_workers) for _ in range(n_api)]
    db = simpy.Resource(env, capacity=connections)
    mu_web, mu_api, mu_db = web_rps / web_workers, api_rps / api_workers, db_rps / connections
    conn = [0] * n_web
    idx = range(n_web)
    res = SimpyResult(duration_s)
    n_sec = int(duration_s) + 1
    sec_n, sec_sum = [0] * n_sec, [0.0] * n_sec
    lats = res.latencies
    record = lats.append

    def request(i: int, t_arrival: float):
        conn[i] += 1
        with webs[i].request() as w:
            yield w
            yield timeout(expo(mu_web))
            with apis[int(unif() * n_api)].request() as a:
                yield a
                yield timeout(expo(mu_api))
                with db.request() as q:
                    yield q
                    yield timeout(expo(mu_db))
        conn[i] -= 1
        now = env.now
        rt = now - t_arrival
        record(rt)
        k = int(now)
        sec_n[k] += 1
        sec_sum[k] += rt

    def pick() -> int:
        best = min(conn)
        ties = [i for i in idx if conn[i] == best]
        return ties[0] if len(ties) == 1 else ties[int(unif() * len(ties))]

    def source():
        process = env.process
        while True:
            yield timeout(expo(rate_rps))
            res.arrived += 1
            process(request(pick(), env.now))

    env.process(source())
    env.run(until=duration_s)
    return _finish(res, lats, sec_n, sec_sum, duration_s)


def tiers(rate_rps: float, layers: list[dict], connections: int, db_rps: float, duration_s: float,
          seed: int = 1, users: int = 1000) -> SimpyResult:
    """Poisson(rate) through ``layers`` of servers in turn, then a database (``connections``,
    exponential queries of mean connections/db_rps). Each request comes from one of ``users``
    users at random. Each layer: ``n`` replicas of ``workers`` workers, exponential service
    of mean workers/rps, the replica chosen by round robin (``pick`` "rr", in the order the
    requests reach the layer), at random, or "sticky" (round robin for a user's first request,
    then the replica it went to);
    ``blocking``: its worker is held until everything after it answers (sync workers),
    else it is free at the end of its own service."""
    rnd = random.Random(seed)
    expo, unif = rnd.expovariate, rnd.random
    env = simpy.Environment()
    timeout = env.timeout
    pools = [[simpy.Resource(env, capacity=lay["workers"]) for _ in range(lay["n"])] for lay in layers]
    mus = [lay["rps"] / lay["workers"] for lay in layers]
    rr = [0] * len(layers)
    pinned = [{} for _ in layers]
    db = simpy.Resource(env, capacity=connections)
    mu_db = db_rps / connections
    res = SimpyResult(duration_s)
    n_sec = int(duration_s) + 1
    sec_n, sec_sum = [0] * n_sec, [0.0] * n_sec
    lats = res.latencies
    record = lats.append

    def rest(k: int, user: int):
        if k == len(layers):
            with db.request() as q:
                yield q
                yield timeout(expo(mu_db))
            return
        lay = layers[k]
        if lay["pick"] == "sticky" and user in pinned[k]:
            i = pinned[k][user]
        elif lay["pick"] in ("rr", "sticky"):
            i = pinned[k][user] = rr[k] % lay["n"]
            rr[k] += 1
        else:
            i = int(unif() * lay["n"])
        req = pools[k][i].request()
        yield req
        yield timeout(expo(mus[k]))
        if not lay["blocking"]:
            pools[k][i].release(req)
        yield env.process(rest(k + 1, user))
        if lay["blocking"]:
            pools[k][i].release(req)

    def request(t_arrival: float):
        yield env.process(rest(0, int(unif() * users)))
        now = env.now
        rt = now - t_arrival
        record(rt)
        k = int(now)
        sec_n[k] += 1
        sec_sum[k] += rt

    def source():
        process = env.process
        while True:
            yield timeout(expo(rate_rps))
            res.arrived += 1
            process(request(env.now))

    env.process(source())
    env.run(until=duration_s)
    return _finish(res, lats, sec_n, sec_sum, duration_s)


def s1(duration_s: float = 3600.0, seed: int = 1) -> SimpyResult:
    """S1: 900 req/s → random → 10 servers of 100 req/s."""
    return random_split_mm1(900.0, 10, 100.0, duration_s, seed)


def s2(duration_s: float = 5.0, seed: int = 1) -> SimpyResult:
    """S2: 90,000 req/s → random → 1,000 servers of 100 req/s."""
    return random_split_mm1(90_000.0, 1000, 100.0, duration_s, seed)


if __name__ == "__main__":
    import sys
    import time

    t = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    w0 = time.perf_counter()
    r = s1(t)
    w = time.perf_counter() - w0
    print(f"S1 {t:g} s simulated in {w:.2f} s: {t / w:.1f} sim s/wall s, arrived {r.arrived}, "
          f"served {r.served}, mean {r.mean_s * 1000:.2f} ms")
