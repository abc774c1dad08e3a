"""The compiled admission (admission_kernel.py) gives bit-identical results to the
stations' Python paths (one by one, rounds), for every rule: several workers, a
waiting room of 0, a few or more than the ring holds, patience, a station down,
blocking servers holding workers, health checks."""
from __future__ import annotations

import numpy as np
import pytest

from admission_nets import servers_network
from simulation import admission_numpy
from simulation import stations as stations_mod
from simulation.flight import FLAG_CHECK, FLAG_TIMEOUT, Batch
from simulation.stations import Stations

SERVERS = [  # workers, queue_limit, timeout_s, service, blocking
    (1, 3, 0.05, "exponential", False), (2, 0, 1.0, "deterministic", False), (3, 5000, 0.02, "exponential", False),
    (4, 7, 0.5, "deterministic", True), (1, 100, 0.004, "exponential", False), (2, 2, 10.0, "exponential", False),
]


def _network():
    return servers_network(SERVERS)


def _batches(net, seed):
    rng = np.random.default_rng(seed)
    servers = np.nonzero(net.st_kind == 1)[0]
    out = []
    t = 0.0
    for _ in range(6):
        n = int(rng.integers(50, 400))
        arr = np.sort(t + rng.random(n) * 0.5)
        arr[rng.random(n) < 0.1] = arr[0]           # simultaneous arrivals
        t = float(arr[-1])
        flags = np.where(rng.random(n) < 0.05, FLAG_CHECK, 0).astype(np.int8)
        out.append(Batch(st=rng.choice(servers, n), arr=arr, birth=arr, flags=flags,
                         key=rng.integers(0, 2**63, n).astype(np.uint64), hop=np.ones(n, dtype=np.int8)))
    return out


def _run(mode, seed, monkeypatch):
    from simulation.admission_kernel import admit_sorted, uniform_draws
    from simulation.admission_order import order_by_station
    for k in (admit_sorted, order_by_station, uniform_draws):
        k(*k.sample())   # loaded now (with numba: compiled)
    net = _network()
    st = Stations(net, 0.0)
    st.compiled = mode == "compiled"
    monkeypatch.setattr(admission_numpy, "SCALAR_PER_ROUND", 10**9 if mode == "one_by_one" else 0)
    results = []
    for i, batch in enumerate(_batches(net, seed)):
        if i == 3:   # a station goes down for a batch, then comes back
            st.failed[net.node_stations[net.node_ids.index("s2")]] = True
            st.refresh_up(float(batch.arr[0]))
        if i == 4:
            st.failed[:] = False
            st.refresh_up(float(batch.arr[0]))
        adm, full, down = st.admit(batch, np.zeros(net.n_stations, dtype=np.int64))
        b, status = st.last
        results.append((b.start.copy(), b.fin.copy(), status.copy(), b.flags.copy(), len(full), len(down)))
    holds = [np.concatenate([h[k] for h in st.new_holds]) if st.new_holds else None for k in range(4)]
    return results, st.free.copy(), st.ring.copy(), st.count.copy(), holds


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_admission_is_bit_identical_to_the_python_paths(seed, monkeypatch):
    runs = {m: _run(m, seed, monkeypatch) for m in ("compiled", "one_by_one", "rounds")}
    ref = runs["one_by_one"]
    statuses = np.concatenate([r[2] for r in ref[0]])
    flags = np.concatenate([r[3] for r in ref[0]])
    # every rule is exercised
    assert (statuses == stations_mod.QUEUE_FULL).any() and (statuses == stations_mod.DOWN).any()
    assert ((flags & FLAG_TIMEOUT) != 0).any() and ref[4][0] is not None and len(ref[4][0]) > 0
    for mode in ("compiled", "rounds"):
        got = runs[mode]
        for a, b in zip(got[0], ref[0]):
            for x, y in zip(a[:4], b[:4]):
                assert np.array_equal(x, y), mode
            assert a[4:] == b[4:]
        for x, y in zip(got[1:4], ref[1:4]):
            assert np.array_equal(x, y), mode
        for x, y in zip(got[4], ref[4]):
            assert np.array_equal(x, y), mode
