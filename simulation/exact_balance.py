"""The engine's side of per-request load-aware balancing (least_choice.py's kernel):
gather the requests leaving the balancers of a window, the state of their backends
and the health checks due there, choose in one pass, then admit the requests
through the ordinary stations' admission.

The exact path applies when every backend of the balancers involved is a plain
FIFO station admitted on the spot: servers (also autoscaled slots, sessions,
304s) not making blocking calls, and caches (a session read that a server keeping
sessions in the database sends adds its service there), and not behind a blocking
server unless the event window follows the balancer (choice_hops.py: its kernel chose
the same way). Blocking servers, and balancers that stick users with a cookie shared
with a blind balancer take the tick-by-tick path in routing.py instead (before
2026-12-01 caches did too, and load-aware balancers beside a blind sticky one with
cookies of its own: their numbers changed with ``tick_ms``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .compiler import DATABASE, SERVER
from .flight import FLAG_CHECK, FLAG_DB_SESSION, FLAG_INTERNAL, FLAG_NOT_MODIFIED, FLAG_TIMEOUT, Batch
from .least_choice import ALGO_CODE, ALGO_FIXED, choose_and_admit, ewma_apply
from .least_choice_py import choose_and_admit_py
from .randomness import PICK, PICK2, SERVICE, SESSION_READ, TIE, exponential, uniform
from .stations import NS

LOAD_AWARE_ALL = tuple(ALGO_CODE)
READMIT = False   # tests: admit on copies in the kernel, then for real through Stations.admit


def exact_applies(sim: Any, present: list[int]) -> bool:
    """Whether the balancers ``present`` (indices) can decide request by request here."""
    bals = [sim.balancers[b] for b in present]
    if not any(bs.bal.algorithm in LOAD_AWARE_ALL for bs in bals):
        return False
    # a blind sticky one whose users' cookies another balancer reads too: its pins must
    # interleave with that one's in time order (the pass fixes a blind one's choices first);
    # one with cookies of its own joins the pass with its fixed choices (before 2026-12-01 it
    # sent the load-aware ones beside it to the tick-by-tick path: their numbers changed with
    # tick_ms)
    if any(bs.cookie is not None and bs.bal.algorithm not in LOAD_AWARE_ALL
           and any(o.cookie is bs.cookie for o in sim.balancers if o is not bs) for bs in bals):
        return False
    st = np.concatenate([bs.bal.backends for bs in bals])
    if not len(st):
        return True
    stn = sim.stations
    if stn.hold[st].any() or (sim.net.st_kind[st] == DATABASE).any():   # (the format sends no balancer to one)
        return False
    if sim._holding and (sim.net.st_level[st] >= sim._lb).any():
        # downstream of blocking servers: only while the event window books what it chose the same way
        return sim._ev_expect is not None and all(b in sim._ev_choice for b in present)
    return True


def balance_exact(sim: Any, out: Batch, which: np.ndarray, present: list[int], others: Batch | None = None) -> None:
    """Route ``out`` (requests finishing at the balancers ``present``, in time order).
    ``others``: the window's other requests for their backends, admitted in the same
    time-ordered pass, where they are going (contested.py)."""
    net, stn = sim.net, sim.stations
    n = len(out)
    o = Batch.empty() if others is None else others
    no = len(o)
    fixed = np.full(n, -1, dtype=np.int64)
    local = np.zeros(n, dtype=np.int64)
    algo = np.zeros(len(present), dtype=np.int64)
    cand_lists: list[np.ndarray] = []
    choosers: list[tuple[Any, np.ndarray]] = []     # sticky balancers: (state, requests that chose)
    jar_first: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    tick = int(round(sim.now / sim.tick_s))
    for li, bi in enumerate(present):
        bs = sim.balancers[bi]
        mine = np.nonzero(which == bi)[0] if len(present) > 1 else np.arange(n)
        local[mine] = li
        backends = bs.bal.backends
        registered = stn.registered[backends]
        code = ALGO_CODE.get(bs.bal.algorithm, ALGO_FIXED)
        algo[li] = code
        if code == ALGO_FIXED:   # a blind balancer among load-aware ones: its own choice, fixed
            pos = bs.choose(out.user[mine], out.key[mine], out.hop[mine], None, None, tick, registered)
            fixed[mine] = np.where(pos >= 0, backends[np.maximum(pos, 0)], -2)
            cand_lists.append(np.zeros(0, dtype=np.int64))
            continue
        cand = bs.candidates(registered)
        cand_lists.append(backends[cand])
        if not len(cand):
            fixed[mine] = -2
            continue
        if bs.cookie is not None:
            named = bs.cookie[out.user[mine]]
            ok_st = np.zeros(net.n_stations + 1, dtype=bool)
            ok_st[backends[cand]] = True
            valid = ok_st[np.where(named >= 0, named, net.n_stations)]
            fixed[mine[valid]] = named[valid]
            need = mine[~valid]
            prev = jar_first.get(id(bs.cookie))
            jar_first[id(bs.cookie)] = (need, out.user[need]) if prev is None else \
                (np.concatenate([prev[0], need]), np.concatenate([prev[1], out.user[need]]))
            choosers.append((bs, need))
    for idx, users in jar_first.values():   # one choice per new user: later requests follow it
        order = np.argsort(idx, kind="stable")
        idx, users = idx[order], users[order]
        _, first, inverse = np.unique(users, return_index=True, return_inverse=True)
        lead = idx[first][inverse]
        follow = lead != idx
        fixed[idx[follow]] = -3 - lead[follow]
    cand_ptr = np.zeros(len(present) + 1, dtype=np.int64)
    cand_ptr[1:] = np.cumsum([len(c) for c in cand_lists])
    cand_st = np.concatenate(cand_lists).astype(np.int64) if cand_lists else np.zeros(0, dtype=np.int64)

    # the backends' health checks due by the last request, and the requests already there
    stations = np.unique(np.concatenate([sim.balancers[b].bal.backends for b in present] + [o.st]))
    t_last = max(float(out.fin.max()), float(o.arr.max()) if no else -np.inf)
    checks = Batch.concat([sim._due_checks(int(lv), t_last, stations)
                           for lv in np.unique(net.st_level[stations])]) if len(stations) else Batch.empty()
    at = np.zeros(net.n_stations, dtype=bool)
    at[stations] = True
    pre = Batch.concat([p.take(at[p.st]) for lv, p in enumerate(sim.pending)
                        if len(p) and lv in set(net.st_level[stations].tolist())])
    pre = pre.take(np.argsort(pre.arr, kind="stable")) if len(pre) else pre
    sample = ((pre.flags & (FLAG_TIMEOUT | FLAG_INTERNAL)) == 0)
    pre_rt = np.where(sample, pre.fin - pre.arr, -1.0)

    # one time-ordered stream: the requests, the others, then the checks (ties: in that
    # order, as admission does)
    m = len(checks)
    nm = n + no + m
    t = np.concatenate([out.fin, o.arr, checks.arr])
    order = np.argsort(t, kind="stable") if m or no else np.arange(n)
    inv = np.empty(nm, dtype=np.int64)
    inv[order] = np.arange(nm)
    fixed_all = np.concatenate([fixed, o.st.astype(np.int64), checks.st.astype(np.int64)])
    follow = fixed_all <= -3
    fixed_all[follow] = -3 - inv[-3 - fixed_all[follow]]
    hop1 = out.hop + 1
    draw = np.concatenate([exponential(out.key, hop1, SERVICE), exponential(o.key, o.hop, SERVICE), np.zeros(m)])
    session_draw = np.full(nm, -1.0)   # a session read at a store (Stations._service_ns)
    for part, hops, at in ((out, hop1, 0), (o, None, n)):
        has = (part.flags & FLAG_DB_SESSION) != 0 if len(part) else None
        if has is not None and has.any():
            rows = np.flatnonzero(has)
            session_draw[at + rows] = exponential(part.key[rows], (part.hop if hops is None else hops)[rows],
                                                  SESSION_READ)
    svc_fixed = np.full(nm, -1.0)
    if m:
        cst = checks.st
        mean = np.where(checks.cls == 1, net.st_mean_write[cst], net.st_mean_read[cst])
        svc_fixed[n + no:] = np.where(net.st_kind[cst] == SERVER, stn.check_cost[checks.item], mean)
    flags = np.concatenate([((out.flags & FLAG_NOT_MODIFIED) != 0).astype(np.int64),
                            ((o.flags & FLAG_NOT_MODIFIED) != 0).astype(np.int64), np.full(m, 2, dtype=np.int64)])
    cls = np.concatenate([out.cls, o.cls, checks.cls]).astype(np.int64)
    bal = np.concatenate([local, np.zeros(no + m, dtype=np.int64)])
    u = [np.concatenate([uniform(out.key, out.hop, salt), np.zeros(no + m)])[order] for salt in (TIE, PICK, PICK2)]
    ts = t[order]
    a_ns = np.rint(ts * NS).astype(np.int64)
    target = np.empty(nm, dtype=np.int64)
    fin, start = np.empty(nm), np.empty(nm)
    state = np.empty(nm, dtype=np.int64)
    track = int(sim._track_latency)
    upto = _ewma_upto(sim)
    ewma = sim.ewma.copy()
    direct = not READMIT   # the kernel's admission is the real one (READMIT: on copies, then Stations.admit)
    choose = choose_and_admit if choose_and_admit.compiled else choose_and_admit_py   # the same numbers
    last = choose(
        ts, a_ns, draw[order], session_draw[order], svc_fixed[order], cls[order], flags[order], bal[order], fixed_all[order],
        u[0], u[1], u[2], algo, cand_ptr, cand_st,
        stn.free if direct else stn.free.copy(), stn.ring if direct else stn.ring.copy(), stn.ring_off,
        stn.ring_len, stn.count if direct else stn.count.copy(), stn.up.astype(np.int64),
        net.st_queue_limit, net.st_timeout, stn._timeout_ns, stn.rate,
        net.st_mean_read, net.st_mean_write, net.st_deterministic.astype(np.int64), net.st_nm_cost,
        np.where(net.st_kind == SERVER, 1, np.where(stn.is_store, 2, 0)).astype(np.int64), ewma, upto.copy(), track,
        pre.arr, pre.fin, pre.st, pre_rt, target, fin, start, state)
    if track:
        sim.ewma[:] = ewma
        upto[stations] = np.maximum(upto[stations], last)
    chosen = target[inv[:n]]
    sim._last_exact = (out.key, chosen, fin[inv[:n]])   # for the tests: the kernel's own choices and end times
    for bs, need in choosers:
        got = chosen[need]
        newly = (got >= 0) & (fixed[need] == -1)
        bs.cookie[out.user[need][newly]] = got[newly]
    none = chosen < 0
    if none.any():
        sim._fail("no_healthy_backend", out.fin[none], out.key[none])
    if not none.all():
        sim._flow(out.st[~none], chosen[~none], out.fin[~none])
    if not direct:
        if none.any():
            out, chosen = out.take(~none), chosen[~none]
        sim._admit_all(Batch.concat([out.forward(chosen), o, checks]))
        return
    fwd = out.forward(np.maximum(chosen, 0))
    b = (Batch.concat([fwd, o, checks]) if m or no else fwd).take(order)     # in the kernel's order
    b.start, b.fin = start, fin
    read = ((b.flags & FLAG_DB_SESSION) != 0) & stn.is_store[b.st]
    if read.any():   # the session read is done (as Stations._service_ns clears it)
        b.flags[read] &= ~FLAG_DB_SESSION
    if none.any():
        b, state = b.take(state >= 0), state[state >= 0]
    _admitted(sim, b, state)


def _admitted(sim: Any, b: Batch, state: np.ndarray) -> None:
    """What ``Routing._admit_all`` does after ``Stations.admit``, for requests the kernel
    admitted (``state``: 0 admitted, 1 queue full, 2 down, 3 gives up): in the order
    ``Stations.admit`` leaves them (by station, then time), level by level."""
    late = state == 3
    if late.any():
        b.flags[late] |= FLAG_TIMEOUT
    status = np.where(late, 0, state).astype(np.int8)
    by_st = np.argsort(b.st, kind="stable")
    b, status = b.take(by_st), status[by_st]
    lv_of = sim.net.st_level[b.st]
    levels = np.unique(lv_of)
    for lv in levels.tolist():
        part, st_part = (b, status) if len(levels) == 1 else (b.take(lv_of == lv), status[lv_of == lv])
        sim.stations.last = (part, st_part)
        admitted, full, down = part.take(st_part == 0), part.take(st_part == 1), part.take(st_part == 2)
        if sim._tracer is not None:   # as health.py's _admit_users
            sim._tracer.admitted(admitted, sim.net)
            sim._tracer.admitted(Batch.concat([full, down]), sim.net, rejected=True)
        is_check = (admitted.flags & FLAG_CHECK) != 0
        if is_check.any():
            checks, admitted = admitted.split(is_check)
            ran = (checks.flags & FLAG_TIMEOUT) == 0      # a check that would wait too long never runs
            if ran.any():
                cs, c0, c1 = checks.st[ran], checks.start[ran], checks.fin[ran]
                sim.ledger.book_busy(cs, c0, c1, float(c0.min()), float(c1.max()))
        full = full.take((full.flags & FLAG_CHECK) == 0) if len(full) else full
        down = down.take((down.flags & FLAG_CHECK) == 0) if len(down) else down
        full, down = full.users_only(), down.users_only()
        sim._fail("queue_full", full.arr, full.key)
        sim._fail("backend_down", down.arr, down.key)
        sim._sessions(admitted)
        sim.pending[lv] = Batch.concat([sim.pending[lv], admitted])


def _ewma_upto(sim: Any) -> np.ndarray:
    """Per station: the end time up to which completed responses are in its EWMA."""
    upto = getattr(sim, "_ewma_upto", None)
    if upto is None or getattr(sim, "_ewma_of", None) is not sim.ewma:
        upto = sim._ewma_upto = np.full(sim.net.n_stations, -np.inf)
        sim._ewma_of = sim.ewma
    return upto


def update_ewma(sim: Any, done: Batch) -> None:
    """Responses completed at their stations (user requests, not given up): into the
    EWMA in time order, each once (see least_choice.py). Only the backends of least
    response time balancers keep one."""
    if getattr(sim, "_lrt_of", None) is not sim.net:
        sim._lrt_of = sim.net
        sim._lrt_st = np.zeros(sim.net.n_stations, dtype=bool)
        for bs in sim.balancers:
            if bs.bal.algorithm == "least_response_time":
                sim._lrt_st[bs.bal.backends] = True
    keep = sim._lrt_st[done.st]
    if not keep.any():
        return
    st, fin = done.st[keep], done.fin[keep]
    rt = fin - done.arr[keep]
    order = np.argsort(fin, kind="stable")
    order = order[np.argsort(st[order], kind="stable")]
    apply = ewma_apply if ewma_apply.compiled else ewma_apply.py   # the same numbers
    apply(st[order], fin[order], rt[order], sim.ewma, _ewma_upto(sim))
