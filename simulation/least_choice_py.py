"""least_choice.choose_and_admit for Python without numba (the app's bundle ships without
it): the same decisions and the same numbers, written for CPython rather than for the
compiler: Python lists and ``heapq`` for the per-request state, one numpy gather per
choice over the candidates (so a balancer with thousands of backends stays fast).
``tests/simulation/test_least_choice.py`` checks that both give identical results."""
from __future__ import annotations

import heapq

import numpy as np

from .admission_kernel import NEVER_NS, NS, RING_CAP, TIE_NS, TIE_S
from .least_choice import ALGO_LRT, ALGO_P2C, EWMA_ALPHA, LAT_FLOOR


def choose_and_admit_py(t_s, a_ns, draw, session_draw, svc_fixed, cls, flags, bal, fixed, u_tie, u_a, u_b,
                        algo, cand_ptr, cand_st,
                        free, ring, ring_off, ring_len, count, up, limit, timeout_s, timeout_ns, rate,
                        mean_read, mean_write, det, nm_cost, kind, ewma, upto, track,
                        pre_arr, pre_fin, pre_st, pre_rt, target, fin_out, start_out, state) -> float:
    """See least_choice.choose_and_admit (same arguments, same effects)."""
    inf = np.inf
    n = len(t_s)
    n_ring = len(ring)
    cands = [cand_st[cand_ptr[b]:cand_ptr[b + 1]] for b in range(len(algo))]
    algo_l = algo.tolist()
    conn = np.zeros(len(up), dtype=np.int64)
    ew = ewma.tolist()
    floor_ew = np.maximum(ewma, LAT_FLOOR)          # kept current for the stations whose EWMA moves
    up_l, lim_l, rlen_l, roff_l = up.tolist(), limit.tolist(), ring_len.tolist(), ring_off.tolist()
    to_s_l, to_ns_l, rate_l = timeout_s.tolist(), timeout_ns.tolist(), rate.tolist()
    mr_l, mw_l, det_l, nm_l, kind_l, upto_l = (mean_read.tolist(), mean_write.tolist(), det.tolist(),
                                              nm_cost.tolist(), kind.tolist(), upto.tolist())
    free_rows: dict[int, list[float]] = {}
    count_l = count.tolist()
    pre = list(zip(pre_arr.tolist(), pre_fin.tolist(), pre_st.tolist(), pre_rt.tolist()))
    n_pre = len(pre)
    heap: list[tuple[float, int, float]] = []
    push, pop = heapq.heappush, heapq.heappop
    j = 0
    last_t = -inf
    targets = [0] * n
    fins = [0.0] * n
    starts = [0.0] * n
    states = [0] * n
    ts, as_, dr, sf = t_s.tolist(), a_ns.tolist(), draw.tolist(), svc_fixed.tolist()
    sd = session_draw.tolist()
    cl, fl, bl, fx = cls.tolist(), flags.tolist(), bal.tolist(), fixed.tolist()
    ut, ua, ub = u_tie.tolist(), u_a.tolist(), u_b.tolist()
    for i in range(n):
        t = ts[i]
        last_t = t
        while j < n_pre and pre[j][0] <= t:
            _, f, s, r = pre[j]
            conn[s] += 1
            push(heap, (f, s, r))
            j += 1
        while heap and heap[0][0] <= t:
            f, s, r = pop(heap)
            conn[s] -= 1
            if track and r >= 0.0 and f > upto_l[s]:
                ew[s] += EWMA_ALPHA * (r - ew[s])
                floor_ew[s] = max(ew[s], LAT_FLOOR)
        s = fx[i]
        if s == -2:
            s = -1
        elif s < -2:
            s = targets[-3 - s]
        elif s == -1:
            b = bl[i]
            cand = cands[b]
            m = len(cand)
            code = algo_l[b]
            if m == 0:
                s = -1
            elif code == ALGO_P2C:
                if m == 1:
                    s = int(cand[0])
                else:
                    x = min(int(ua[i] * m), m - 1)
                    y = min(int(ub[i] * (m - 1)), m - 2)
                    if y >= x:
                        y += 1
                    sx, sy = int(cand[x]), int(cand[y])
                    s = sx if conn[sx] <= conn[sy] else sy
            else:
                score = (conn[cand] + 1.0) * floor_ew[cand] if code == ALGO_LRT else conn[cand]
                tied = np.flatnonzero(score == score.min())
                s = int(cand[tied[min(int(ut[i] * len(tied)), len(tied) - 1)]])
        targets[i] = s
        if s < 0:
            fins[i] = starts[i] = t
            states[i] = -1
            continue
        a = as_[i]
        if not up_l[s]:
            fins[i] = starts[i] = t
            states[i] = 2
            continue
        if sf[i] >= 0.0:
            service = sf[i]
        else:
            mean = mw_l[s] if cl[i] == 1 else mr_l[s]
            service = mean if det_l[s] else dr[i] * mean
            if sd[i] >= 0.0 and kind_l[s] == 2:   # Stations._service_ns's session read
                service += sd[i] * mr_l[s]
            if (fl[i] & 1) and kind_l[s] == 1:
                service = service * nm_l[s]
        svc = max(int(round(service * NS)), 0)
        row = free_rows.get(s)
        if row is None:
            row = free_rows[s] = free[s].tolist()
        fw = min(row)
        w = row.index(fw)
        f_ns = NEVER_NS if fw == inf else int(round(fw * NS))
        t0 = max(f_ns, a)
        cnt = count_l[s]
        rlen = rlen_l[s]
        slot = roff_l[s] + (cnt % rlen if rlen > 0 else 0)
        oldest = float(ring[min(slot, n_ring - 1)]) if rlen > 0 and n_ring > 0 else inf
        lim = lim_l[s]
        full = (t0 > a + TIE_NS) if lim == 0 else (cnt >= rlen and oldest > t + TIE_S)
        if lim > RING_CAP:
            full = (t0 - a) / NS * rate_l[s] >= lim
        if full:
            fins[i] = (t0 + svc) / NS
            starts[i] = t0 / NS
            states[i] = 1
            continue
        if (t0 - a) > to_ns_l[s] + TIE_NS:   # keeps its place in the waiting room until it gives up
            fin = starts[i] = t + to_s_l[s]
            states[i] = 3
            rt = -1.0
            if rlen > 0:
                ring[slot] = (a + to_ns_l[s]) / NS
            count_l[s] = cnt + 1
        else:
            fin = (t0 + svc) / NS
            starts[i] = t0 / NS
            rt = fin - t
            row[w] = fin
            if rlen > 0:
                ring[slot] = t0 / NS
            count_l[s] = cnt + 1
        fins[i] = fin
        if fl[i] & 2:
            continue
        conn[s] += 1
        push(heap, (fin, s, rt))
    target[:] = targets
    fin_out[:] = fins
    start_out[:] = starts
    state[:] = states
    ewma[:] = ew
    for s, row in free_rows.items():
        free[s] = row
    count[:] = count_l
    return last_t
