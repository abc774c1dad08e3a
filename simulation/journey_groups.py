"""Backends whose journeys differ, behind the load-aware balancers of balanced_window.py.

A part of :class:`simulation.blocking.Blocking`. The discrete-event pass draws each
request's journey downstream of the blocking servers B before the balancer chooses its
backend. When B's servers (and the servers beside them) do not all call the same nodes
in the same proportions, or keep sessions in the database at some and not at others,
the journey depends on the choice: here each request leaving a balancer gets one
journey per group of alike servers (its own row for the group of the placeholder it was
drawn at, extra rows for the others, with their apply jobs and cross-shard parts), and
the kernel (balanced_events.py) copies the chosen group's row into the request's own
when it starts at its server. The extra rows never start by themselves (they arrive at
no time: ``e_t`` infinite, like apply jobs not yet started).
"""
from __future__ import annotations

import numpy as np

from .blocking_events import END
from .flight import FLAG_CHECK, FLAG_NOT_MODIFIED, Batch


class JourneyGroups:
    def _journey_groups(self) -> tuple[np.ndarray, list[int]]:
        """Per station, the journey group of each server at B's level that requests reach
        (-1 elsewhere), and one station of each group (kept until the network is compiled
        again)."""
        net = self.net
        cached = self.__dict__.get("_jg_cache")
        if cached is not None and cached[0] is net:
            return cached[1], cached[2]
        level = net.levels[self._lb]
        jgrp = np.full(net.n_stations, -1, dtype=np.int64)
        sig: dict[tuple, int] = {}
        rep: list[int] = []
        ptr = net.route_ptr
        for s in level[net.reached()[level]].tolist():
            key = (net.route_target[ptr[s]:ptr[s + 1]].tobytes(), net.route_cum[ptr[s]:ptr[s + 1]].tobytes(),
                   bool(self._is_db_server[s]), bool(self._has_route[s]))
            if key not in sig:
                sig[key] = len(rep)
                rep.append(s)
            jgrp[s] = sig[key]
        self._jg_cache = (net, jgrp, rep)
        return jgrp, rep

    def _alt_journeys(self, cand: Batch, lb_row: np.ndarray, t1: float, e: dict) -> tuple[np.ndarray, ...]:
        """The journeys of the requests leaving the balancers (``lb_row``) for the groups
        other than their placeholder's, appended to the rows of ``e`` (the kernel's
        journey arrays and e rows, updated in place); returns (jgrp, alt_row, alt_down)."""
        n = len(cand)
        jgrp, rep = self._journey_groups()
        g_n = max(len(rep), 1)
        alt_row = np.repeat(np.arange(n, dtype=np.int64)[:, None], g_n, axis=1)
        alt_row[~e["c_down"]] = -1
        alt_down = np.repeat(e["c_down"][:, None], g_n, axis=1)
        rows_lb = np.flatnonzero(lb_row)
        if len(rep) <= 1 or not len(rows_lb):
            return jgrp, alt_row, alt_down
        own = jgrp[cand.st[rows_lb]]
        parts = []
        for g, s_rep in enumerate(rep):
            need = rows_lb[own != g]
            if not len(need):
                continue
            alt = cand.take(need)
            alt.st = np.full(len(need), s_rep, dtype=cand.st.dtype)
            down = ((alt.flags & FLAG_CHECK) == 0) & ((alt.flags & FLAG_NOT_MODIFIED) == 0) & self._has_route[alt.st]
            alt_down[need, g] = down
            alt_row[need, g] = -1
            if down.any():
                a = alt.take(down)
                parts.append((need[down], g, self._journeys(a, self._session_read_flags(a.flags, a.st), t1)))
        n_rows = e["jp"].shape[0]
        for need, g, j in parts:
            n_rows = self._append_rows(e, need, g, j, n_rows, alt_row)
        return jgrp, alt_row, alt_down

    @staticmethod
    def _append_rows(e: dict, need: np.ndarray, g: int, j: tuple, n_rows: int, alt_row: np.ndarray) -> int:
        """Append journeys ``j`` (blocking_journeys' tuple) of requests ``need`` for group
        ``g``, then their apply jobs, to the rows of ``e``; returns the new row count."""
        jp, js, ja_first, ja_n, a_st, a_svc, a_key, (px_first, px_n, p_st, p_svc), _, a_delay = j
        m, k = len(need), len(a_st)
        depth = e["jp"].shape[1]
        alt_row[need, g] = n_rows + np.arange(m)
        job_jp = np.full((k, depth), END, dtype=np.int64)   # one station each
        job_js = np.zeros((k, depth), dtype=np.int64)
        job_jp[:, 0], job_js[:, 0] = a_st, a_svc
        first = np.where(ja_first >= 0, ja_first + n_rows + m, -1)
        p0 = len(e["parts"][2])
        e["jp"] = np.concatenate([e["jp"], jp, job_jp])
        e["js"] = np.concatenate([e["js"], js, job_js])
        e["ja_first"] = np.concatenate([e["ja_first"], first, np.full((k, depth), -1, dtype=np.int64)])
        e["ja_n"] = np.concatenate([e["ja_n"], ja_n, np.zeros((k, depth), dtype=np.int64)])
        pf, pn, pst, psvc = e["parts"]
        e["parts"] = (np.concatenate([pf, px_first + p0, np.zeros((k, depth), dtype=np.int64)]),
                      np.concatenate([pn, px_n, np.zeros((k, depth), dtype=np.int64)]),
                      np.concatenate([pst, p_st]), np.concatenate([psvc, p_svc]))
        e["e_t"] = np.concatenate([e["e_t"], np.full(m + k, np.inf)])
        e["e_key"] = np.concatenate([e["e_key"], np.zeros(m, dtype=e["e_key"].dtype), a_key])
        e["e_delay"] = np.concatenate([e["e_delay"], np.zeros(m), a_delay])
        for name in ("e_bst", "e_bw", "e_entry"):
            e[name] = np.concatenate([e[name], np.full(m + k, -1, dtype=e[name].dtype)])
        return n_rows + m + k
