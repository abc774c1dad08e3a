"""Tiers of blocking servers behind the first (web → api → database, both sync; or deeper).

A part of :class:`simulation.blocking.Blocking`, for balanced_window.py's pass
(balanced_events.py). A request admitted at a blocking web server B holds its worker
there until it leaves the network; on its way it reaches blocking servers of further
tiers (an API B2, a service behind it B3, ...), whose workers it holds too, until the
same moment. Their stations are FIFO queues like B's, fed by the journeys; the kernel
decides them, and this module gives it the state carried over from earlier windows (the
requests waiting at each tier, the workers held there by requests further on) and books
each tier's admissions and releases, which the engine's own settling then must match
(``_check_release``). Shapes: every level with blocking servers downstream has only
blocking servers, with no sessions kept in memory (the first tier may keep them) and no
joins; servers beside the first tier only behind blind balancers
(``EventWindow._event_depth``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .admission_kernel import ADMITTED
from .blocking_events import END, UNDECIDED
from .compiler import SimulationError
from .flight import Batch


@dataclass
class SecondTier:
    """The tiers' side of a window: inputs, then the kernel's answers (columns: tiers)."""
    levels: tuple               # the tiers' levels, in order
    e_q2: np.ndarray            # per e row: the tier at whose station it waits since before (-1: none)
    e_bst2: np.ndarray          # per e row and tier: the station and worker it holds there (-1: none)
    e_bw2: np.ndarray
    e_entry2: np.ndarray        # per e row and tier: its hold entry there (-1: none)
    done2: np.ndarray           # hold entries at the tiers whose release is known (their request ends in the window)
    done2_t: np.ndarray
    keys: np.ndarray = None     # per journey row (candidates, then e rows): the request's key
    out: tuple = None           # j_st2, j_w2, j_status2, j_start2, j_hop2, j_a2, j_rel2 (rows × tiers)
    js: np.ndarray = None


class SecondTierWindow:
    def _second_inputs(self, t1: float, n: int, e: dict, free: np.ndarray) -> SecondTier | None:
        """Add to the kernel's journeys (``e``: e_t, e_key, e_bst, e_bw, e_entry, jp, js,
        ja_first, ja_n, arrays over all journey rows) the requests waiting at each tier
        since before, each a journey that starts at its station there; and find the
        workers of each tier held by requests further on. None when a held worker's
        request is nowhere."""
        net = self.net
        levels = tuple(self._ev_chain)
        lvl = net.st_level[self._h_st] if len(self._h_key) else np.zeros(0, dtype=np.int64)
        at_b1 = np.flatnonzero(lvl == self._lb)
        waits = [self._waiting_rows(lv2, g, n, e, t1, at_b1) for g, lv2 in enumerate(levels)]
        ne = len(e["e_t"])
        e_q2 = np.full(ne, -1, dtype=np.int64)
        for g, (lo, hi) in enumerate(waits):
            e_q2[lo:hi] = g
        # the workers of each tier held by requests on their way (by key), or whose release is known
        n_tiers = len(levels)
        e_bst2 = np.full((ne, n_tiers), -1, dtype=np.int64)
        e_bw2 = np.full((ne, n_tiers), -1, dtype=np.int64)
        e_entry2 = np.full((ne, n_tiers), -1, dtype=np.int64)
        done2, done2_t = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
        for g, lv2 in enumerate(levels):
            at_bg = np.flatnonzero(lvl == lv2)
            if not len(at_bg):
                continue
            pos = self._lookup(e["e_key"], np.arange(ne, dtype=float), self._h_key[at_bg])
            is_ev = ~np.isnan(pos)
            r = pos[is_ev].astype(np.int64)
            hit = at_bg[is_ev]
            e_bst2[r, g], e_bw2[r, g], e_entry2[r, g] = self._h_st[hit], self._h_w[hit], hit
            on = Batch.concat([self.pending[k] for k in range(lv2, len(net.levels))])
            fin = self._lookup(on.key, on.fin, self._h_key[at_bg])
            rest = ~is_ev & ~np.isnan(fin)
            if not (is_ev | rest).all():
                return None
            gone = at_bg[rest & (fin < t1)]   # at its last station: it leaves at its end there
            gone_t = np.maximum(fin[rest & (fin < t1)], self._h_from[gone])
            free[self._h_st[gone], self._h_w[gone]] = gone_t
            done2.append(gone)
            done2_t.append(gone_t)
        return SecondTier(levels, e_q2, e_bst2, e_bw2, e_entry2, np.concatenate(done2), np.concatenate(done2_t))

    def _waiting_rows(self, lv2: int, g: int, n: int, e: dict, t1: float, at_b1: np.ndarray) -> tuple[int, int]:
        """Append to ``e`` the requests waiting at tier ``g`` (level ``lv2``) since before, each
        a journey that starts at its station there (then the apply jobs their journeys start),
        with the worker each holds at B; returns the rows of the waiting ones."""
        st, depth = self.stations, self._ev_depth
        p2 = self.pending[lv2]
        wait = np.isinf(p2.start) if len(p2) else np.zeros(0, dtype=bool)
        w = p2.take(wait)
        if len(w):
            w = w.take(np.lexsort((w.key, w.arr, w.st)))   # each queue in its order
        nw = len(w)
        # from that tier on, with the session read its admission there will ask of the next store
        # (a tier keeping sessions in the database; the flag is set when it is admitted, after
        # this: without it the kernel predicted the release a session read too early)
        jw = self._journeys(w, self._session_read_flags(w.flags, w.st), t1)
        na = len(jw[4])
        base = n + len(e["e_t"])              # the first of the new rows
        jp = np.full((nw + na, depth), END, dtype=np.int64)
        js = np.zeros((nw + na, depth), dtype=np.int64)
        jaf = np.full((nw + na, depth), -1, dtype=np.int64)
        jan = np.zeros((nw + na, depth), dtype=np.int64)
        if nw:
            jp[:nw, 0] = w.st
            js[:nw, 0] = st._service_ns(w, np.unique(w.st))
            jp[:nw, 1:] = jw[0][:, :depth - 1]
            js[:nw, 1:] = jw[1][:, :depth - 1]
            jaf[:nw, 1:] = np.where(jw[2][:, :depth - 1] >= 0, jw[2][:, :depth - 1] + base + nw, -1)
            jan[:nw, 1:] = jw[3][:, :depth - 1]
        if na:
            jp[nw:, 0] = jw[4]
            js[nw:, 0] = jw[5]
        # their workers at B (released when they leave), found by key among the holds at B
        i1 = self._lookup(self._h_key[at_b1], at_b1.astype(float), w.key) if nw else np.zeros(0)
        w_bst = np.full(nw, -1, dtype=np.int64)
        w_bw = np.full(nw, -1, dtype=np.int64)
        w_entry = np.full(nw, -1, dtype=np.int64)
        ok = ~np.isnan(i1)
        if ok.any():
            k = i1[ok].astype(np.int64)
            w_bst[ok], w_bw[ok], w_entry[ok] = self._h_st[k], self._h_w[k], k
        first = len(e["e_t"])
        e["e_t"] = np.concatenate([e["e_t"], w.arr, np.full(na, np.inf)])
        e["e_key"] = np.concatenate([e["e_key"], w.key, jw[6]])
        e["e_bst"] = np.concatenate([e["e_bst"], w_bst, np.full(na, -1, dtype=np.int64)])
        e["e_bw"] = np.concatenate([e["e_bw"], w_bw, np.full(na, -1, dtype=np.int64)])
        e["e_entry"] = np.concatenate([e["e_entry"], w_entry, np.full(na, -1, dtype=np.int64)])
        e["e_delay"] = np.concatenate([e["e_delay"], np.zeros(nw), jw[9]])
        for name, extra in (("jp", jp), ("js", js), ("ja_first", jaf), ("ja_n", jan)):
            e[name] = np.concatenate([e[name], extra])
        px_first, px_n, px_st, px_svc = e["parts"]   # cross-shard parts of the new rows' journeys, a hop later
        pf, pn = np.zeros((nw + na, depth), dtype=np.int64), np.zeros((nw + na, depth), dtype=np.int64)
        if nw:
            pf[:nw, 1:] = jw[7][0][:, :depth - 1] + len(px_st)
            pn[:nw, 1:] = jw[7][1][:, :depth - 1]
        e["parts"] = (np.concatenate([px_first, pf]), np.concatenate([px_n, pn]),
                      np.concatenate([px_st, jw[7][2]]), np.concatenate([px_svc, jw[7][3]]))
        return first, first + nw

    def _second_releases(self, sec: SecondTier, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """After the kernel: (hold entries at the tiers released in the window, their times;
        keys and times of the holds taken and released in it)."""
        j_st2, j_w2, j_status2, j_start2, j_hop2, j_a2, j_rel2 = sec.out
        ne = len(sec.e_q2)
        entries, times, keys, rels = [sec.done2], [sec.done2_t], [], []
        for g in range(len(sec.levels)):
            e_done = np.flatnonzero((sec.e_entry2[:, g] >= 0) & np.isfinite(j_rel2[n:n + ne, g]))
            entries.append(sec.e_entry2[e_done, g])
            times.append(j_rel2[n + e_done, g])
            new = (j_status2[:, g] == ADMITTED) & np.isfinite(j_rel2[:, g])
            new[n:n + ne] &= sec.e_entry2[:, g] < 0
            keys.append(sec.keys[new])
            rels.append(j_rel2[new, g])
        return np.concatenate(entries), np.concatenate(times), np.concatenate(keys), np.concatenate(rels)

    def _commit_second(self, k: int, t0: float, t1: float, inbox: list[list[Batch]], sec: SecondTier) -> None:
        """Book the admissions at the tier of level ``k`` as the kernel decided them (the
        arrivals the earlier levels' settling sent, and those waiting since before)."""
        st = self.stations
        g = sec.levels.index(k)
        j_st2, j_w2, j_status2, j_start2, j_hop2, j_a2, j_rel2 = (a[:, g] for a in sec.out)
        pend = self.pending[k]
        waiting = np.isinf(pend.start) if len(pend) else np.zeros(0, dtype=bool)
        deferred, self.pending[k] = pend.split(waiting)
        real = Batch.concat([deferred, self._take_arrivals(k, t1, inbox)])
        row = self._lookup(sec.keys, np.arange(len(sec.keys), dtype=float), real.key)
        if np.isnan(row).any():
            raise SimulationError("blocking servers: a request reached a tier downstream that the window did not "
                                  "see (please report this)")
        row = row.astype(np.int64)
        status = j_status2[row]
        if (status == -2).any() or (j_st2[row] != real.st).any():
            raise SimulationError("blocking servers: the arrivals at a tier downstream changed while the window was "
                                  "decided")
        dec = status != UNDECIDED
        r = row[dec]
        b = self._admit_decided(k, real.take(dec), status[dec].astype(np.int8), j_start2[r],
                                sec.js[r, np.maximum(j_hop2[r], 0)])
        held = (status[dec] == ADMITTED) & (j_w2[r] >= 0)
        rel = j_rel2[r]
        now = held & np.isfinite(rel)
        self._book_held(b.st[now], b.fin[now], rel[now])
        later = held & ~np.isfinite(rel)
        if later.any():
            st.new_holds.append((b.key[later], b.st[later], j_w2[r][later], b.fin[later]))
            self._add_holds()
        if len(deferred):
            self._snap_decided(k, deferred.key, t0)
        self._put_back(k, real.take(~dec), t1, inbox)
