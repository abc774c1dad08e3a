"""Stations.admit's two paths give the same numbers: the compiled kernels
(admission_order.order_by_station; admission_kernel: uniform_draws, admit_sorted) and the
numpy path (admission_numpy.py), on random batches that exercise every rule; and both
agree with an independent FIFO recursion where theory gives one."""
from __future__ import annotations

import numpy as np
import pytest

from admission_nets import servers_network as _network
from simulation import admission_kernel as ak
from simulation import admission_numpy
from simulation import admission_order as ao
from simulation.flight import FIELDS, FLAG_CHECK, FLAG_DB_SESSION, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from simulation.randomness import SERVICE, exponential, uniform
from simulation.stations import ADMITTED, DOWN, QUEUE_FULL, Stations

KERNELS = (ao.order_by_station, ak.admit_sorted, ak.uniform_draws)


@pytest.fixture(autouse=True, scope="module")
def _loaded():
    for k in KERNELS:
        k(*k.sample())   # loaded now (with numba: compiled)


MIXED = [(1, 3, 0.05, "exponential", False), (2, 0, 1.0, "deterministic", False),
         (3, 5000, 0.02, "exponential", False), (4, 7, 0.5, "deterministic", True),
         (1, 100, 0.004, "exponential", False), (1, 1000, 30.0, "exponential", False),
         (1, 1000, 30.0, "deterministic", False), (2, 2, 10.0, "exponential", False)]


def _batch(rng, stations, t0, n, flag_share=0.05, runs=1, ties=0.1, span=0.5, sessions=True):
    """``n`` arrivals after ``t0`` at ``stations``, as ``runs`` runs in time order (a
    window's requests and the stragglers of earlier ones), some simultaneous."""
    arr = t0 + rng.random(n) * span
    arr[rng.random(n) < ties] = arr[0]
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(runs - 1, n - 1), replace=False)) if n > 1 else []
    arr = np.concatenate([np.sort(p) for p in np.split(arr, cuts)])
    u = rng.random(n)
    flags = np.where(u < flag_share, FLAG_CHECK, np.where(u < 2 * flag_share, FLAG_NOT_MODIFIED,
                                                           np.where(u < 3 * flag_share * sessions,
                                                                    FLAG_DB_SESSION, 0)))
    return Batch(st=rng.choice(stations, n), arr=arr, birth=arr, flags=flags.astype(np.int8),
                 cls=(rng.random(n) < 0.3).astype(np.int8), user=rng.integers(0, 50, n),
                 key=rng.integers(0, 2**63, n).astype(np.uint64), hop=np.ones(n, dtype=np.int8))


def _admit_all(net, batches, compiled, events=None, now=0.0):
    """Admit ``batches`` in turn with one path; returns everything either path leaves."""
    st = Stations(net, now)
    st.compiled = compiled
    out = []
    for i, batch in enumerate(batches):
        if events and i in events:
            events[i](st, batch)
        adm, full, down = st.admit(batch, np.zeros(net.n_stations, dtype=np.int64))
        res = [tuple(getattr(x, f).copy() for f in FIELDS) for x in (adm, full, down)]
        res.append(tuple(getattr(batch, f).copy() for f in FIELDS))   # what admission did to its input
        if st.last is not None:
            res.append(st.last[1].copy())
        out.append(res)
    holds = [np.concatenate([h[k] for h in st.new_holds]) if st.new_holds else np.zeros(0) for k in range(4)]
    return out, st.free.copy(), st.ring.copy(), st.count.copy(), holds


def _same(a, b):
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        return
    assert len(a) == len(b)
    for x, y in zip(a, b):
        _same(x, y)


def _compare(net, batches, events=None, now=0.0):
    compiled = _admit_all(net, batches, True, events, now)
    numpy_path = _admit_all(net, batches, False, events, now)
    _same(compiled, numpy_path)
    return numpy_path


def _down(name):
    def ev(st, batch):
        st.failed[st.net.node_stations[st.net.node_ids.index(name)]] = True
        st.refresh_up(float(batch.arr.min()))
    return ev


def _all_up(st, batch):
    st.failed[:] = False
    st.refresh_up(float(batch.arr.min()))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kernels_and_numpy_agree_on_every_rule(seed, monkeypatch):
    net = _network(MIXED, database=True)
    rng = np.random.default_rng(seed)
    targets = np.nonzero(net.st_kind >= 1)[0]   # servers and the database
    batches, t = [], 0.0
    for i in range(8):
        n = int(rng.integers(1, 400))
        batches.append(_batch(rng, targets, t, n, runs=1 + i % 3, sessions=i % 2 == 0))
        t += 0.5
    events = {3: _down("s2"), 5: _all_up}
    for per_round in (10**9, 0):   # the numpy path one by one, then in rounds
        monkeypatch.setattr(admission_numpy, "SCALAR_PER_ROUND", per_round)
        out, _, _, _, holds = _compare(net, batches, events)
    status = np.concatenate([r[4] for r in out])
    flags = np.concatenate([r[0][7] for r in out])
    assert (status == QUEUE_FULL).any() and (status == DOWN).any() and (status == ADMITTED).any()
    assert ((flags & FLAG_TIMEOUT) != 0).any() and len(holds[0]) > 0


def test_a_batch_in_one_stations_time_order_is_admitted_in_place_alike():
    # a load balancer's batch: one station, in time order (the batch's own arrays, as views;
    # without ties at one instant: those are put in the order of their keys, on a copy)
    net = _network([(1, 2, 0.01, "exponential", False)])
    s = int(net.node_stations[net.node_ids.index("s0")][0])
    rng = np.random.default_rng(7)
    batches = [_batch(rng, np.array([s]), 0.2 * i, 200, flag_share=0.0, ties=0.0, span=0.2) for i in range(5)]
    out = _compare(net, batches)[0]
    status = np.concatenate([r[4] for r in out])
    assert (status == QUEUE_FULL).any() and (status == ADMITTED).any()
    assert any(((r[3][7] & FLAG_TIMEOUT) != 0).any() for r in out)   # both mark the input's flags alike


def test_empty_and_single_requests():
    net = _network(MIXED)
    rng = np.random.default_rng(5)
    targets = np.nonzero(net.st_kind == 1)[0]
    batches = [Batch.empty()] + [_batch(rng, targets, 0.01 * i, 1) for i in range(30)]
    _compare(net, batches)


def test_deterministic_ties_decide_alike():
    # every request the same work, many arriving at once and exactly when a worker frees:
    # waits equal to the patience and starts equal to arrivals
    servers = [(1, 5, 0.025, "deterministic", False), (2, 0, 0.0125, "deterministic", False),
               (1, 0, 1.0, "deterministic", False), (3, 4, 0.0125, "deterministic", False)]
    net = _network(servers)
    targets = np.nonzero(net.st_kind == 1)[0]
    rng = np.random.default_rng(11)
    batches = []
    for i in range(6):
        n = 120
        arr = np.round(0.1 * i + rng.integers(0, 40, n) * 0.0125, 6)   # on the service grid
        batches.append(Batch(st=rng.choice(targets, n), arr=np.sort(arr), birth=arr,
                             key=rng.integers(0, 2**63, n).astype(np.uint64), hop=np.ones(n, dtype=np.int8)))
    out = _compare(net, batches)[0]
    flags = np.concatenate([r[0][7] for r in out])
    status = np.concatenate([r[4] for r in out])
    assert (status == QUEUE_FULL).any() and ((flags & FLAG_TIMEOUT) != 0).any()


def test_huge_times_and_the_offsets_guard():
    # at ~2e7 s, 300 idle single-worker stations free since t = 0: the numpy closed form's
    # group offsets would not fit in int64, so both paths admit one by one (and agree;
    # a closed form in int64 would differ by a few ns: one by one keeps free times in s)
    servers = [(1, 1_000_000, 3600.0, "exponential", False)] * 300
    net = _network(servers)
    targets = np.nonzero(net.st_kind == 1)[0]
    rng = np.random.default_rng(13)
    far = [_batch(rng, targets, 2e7 + i, 6000, flag_share=0.0, runs=2) for i in range(3)]
    groups = len(np.unique(far[0].st))
    assert (int(far[0].arr.min() * 1e9) - 0) * (groups + 1) >= 2**62   # the guard's condition, at least
    _compare(net, far)
    near = [_batch(rng, targets, 1.0 + i, 3000, flag_share=0.0) for i in range(3)]   # and in closed form
    _compare(net, near)


def test_the_closed_form_is_lindleys_recursion():
    # an independent check: a single worker with room and patience to spare serves FIFO,
    # D_k = max(D_{k-1}, a_k) + S_k in whole ns, with S_k = rint(mean * exponential draw)
    net = _network([(1, 1_000_000, 3600.0, "exponential", False)] * 3)
    targets = np.nonzero(net.st_kind == 1)[0]
    rng = np.random.default_rng(17)
    batches = [_batch(rng, targets, 2.0 * i, 500, flag_share=0.0, runs=2, span=2.0) for i in range(4)]
    for compiled in (True, False):
        out = _admit_all(net, batches, compiled)[0]
        free = {int(s): 0 for s in targets}
        for (adm, full, down, *_rest), batch in zip(out, batches):
            assert len(full[0]) == len(down[0]) == 0
            st, arr, fin, key, hop = adm[0], adm[2], adm[4], adm[8], adm[9]
            order = np.lexsort((batch.arr, batch.st))
            assert np.array_equal(arr, batch.arr[order]) and np.array_equal(st, batch.st[order])
            svc = np.rint(exponential(key, hop, SERVICE) * net.st_mean_read[st] * 1e9).astype(np.int64)
            for k in range(len(st)):
                s = int(st[k])
                free[s] = max(free[s], int(np.rint(arr[k] * 1e9))) + int(svc[k])
                assert fin[k] == free[s] / 1e9


def test_order_by_station_is_numpys_order():
    rng = np.random.default_rng(19)
    for trial in range(300):
        n, n_st = int(rng.integers(1, 400)), int(rng.integers(1, 8))
        st = rng.integers(0, n_st, n)
        if trial % 5 == 0:
            st[:] = st[0]
        kind = trial % 4
        if kind == 0:
            arr = np.sort(rng.integers(0, 30, n).astype(float))
        elif kind == 1:
            arr = rng.integers(0, 10, n).astype(float)           # many runs, many ties
        elif kind == 2:
            cut = int(rng.integers(0, n + 1))
            arr = np.concatenate([np.sort(rng.random(cut)), np.sort(rng.random(n - cut) * 0.3)]).round(3)
        else:
            arr = rng.random(n)
        expect = np.lexsort((arr, st)) if (np.diff(arr) < 0).any() else np.argsort(st, kind="stable")
        for k in (ao.order_by_station, ao.order_by_station.py):
            perm, counts = np.empty(n, dtype=np.int64), np.empty(n_st, dtype=np.int64)
            work, fwork = np.empty(ao.order_work(n, n_st), dtype=np.int64), np.empty(2 * n)
            st_out, arr_out = np.empty(n, dtype=np.int64), np.empty(n)
            if k(st, arr, perm, counts, work, fwork, st_out, arr_out) == 0:
                perm = np.arange(n)
                assert (np.diff(arr) >= 0).all() and (st == st[0]).all()
            else:
                assert np.array_equal(st_out, st[perm]) and np.array_equal(arr_out, arr[perm])
            assert np.array_equal(perm, expect)
            assert np.array_equal(counts, np.bincount(st, minlength=n_st))


def test_uniform_draws_are_randomness_uniform():
    rng = np.random.default_rng(23)
    for salt in (SERVICE, 2, 9, 18, 200):
        key = rng.integers(0, 2**64, 3000, dtype=np.uint64)
        hop = rng.integers(-128, 128, 3000).astype(np.int8)
        for k, m in ((ak.uniform_draws, 3000), (ak.uniform_draws.py, 200)):
            out = np.empty(m)
            with np.errstate(over="ignore"):   # (numpy scalars, in the Python version: the hash wraps)
                k(key[:m], hop[:m], np.uint64(salt), out)
            assert np.array_equal(out, uniform(key[:m], hop[:m], salt))


@pytest.mark.parametrize("compiled", [True, False], ids=["kernels", "numpy"])
def test_requests_arriving_at_one_instant_are_admitted_in_the_order_of_their_keys(compiled):
    # with deterministic service upstream two requests can reach a station at the same instant;
    # the batch's order among them came from the windows that routed them (how the run was
    # stepped), so it must not decide which of them is served first or refused
    net = _network([(1, 3, 30.0, "deterministic", False), (2, 0, 30.0, "exponential", False)])
    rng = np.random.default_rng(11)
    base = _batch(rng, np.nonzero(net.st_kind >= 1)[0], 0.0, 300, flag_share=0.0, ties=0.5, span=0.3)
    outcomes = []
    for perm in (np.arange(len(base)), rng.permutation(len(base)), np.argsort(base.key)[::-1]):
        b = base.take(perm)
        order = np.lexsort((b.arr, b.st))   # stations, then time (the kernels' input is any order)
        st = Stations(net, 0.0)
        st.compiled = compiled
        adm, full, _ = st.admit(b.take(order), np.zeros(net.n_stations, dtype=np.int64))
        outcomes.append((dict(zip(adm.key.tolist(), adm.start.tolist())), set(full.key.tolist())))
    ties = (base.arr[:, None] == base.arr[None, :]).sum() - len(base)
    assert ties > 1000 and outcomes[0][1]   # many simultaneous arrivals; some refused
    assert outcomes[0] == outcomes[1] == outcomes[2]
