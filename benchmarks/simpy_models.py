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
