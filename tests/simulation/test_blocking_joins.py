"""Blocking servers in front of partitioned databases: a join that fails frees its worker."""
from __future__ import annotations

import json

from simulation.engine import Simulation
from simulation.fileformat import loads


def doc(fail: bool):
    d = {"format": "scalelab", "version": 1, "simulation": {"duration_s": 30, "seed": 2},
         "nodes": [{"id": "u", "kind": "client", "params": {"rate_rps": 150, "table_mix": {"users": 0.4, "flights": 0.6},
                                                             "join_share": 0.3}},
                   {"id": "web", "kind": "server", "params": {"capacity_rps": 400, "workers": 8,
                                                              "blocking_calls": True}},
                   {"id": "dba", "kind": "database", "params": {"tables": ["users"]}},
                   {"id": "dbb", "kind": "database", "params": {"tables": ["flights"]}}],
         "edges": [{"source": "u", "target": "web"}, {"source": "web", "target": "dba"},
                   {"source": "web", "target": "dbb"}],
         "events": [{"at_s": 10, "action": "fail", "node": "dbb"}] if fail else []}
    return loads(json.dumps(d))


def test_conservation_holds_at_every_stop_and_the_dead_share_fails():
    sim = Simulation(doc(True))
    for stop in (5.0, 10.37, 15.0, 20.5, 30.0):
        sim.advance(stop - sim.now)
        t = sim.totals()
        assert t["arrived"] == t["served"] + t["failed"] + t["in_flight"]
    # From 10 s on, flights (0.6 of the plain requests) and every join (they read flights) fail:
    # (1 − 0.3) × 0.6 + 0.3 = 0.72 of the 20 s × 150 req/s that follow.
    lost = sim.totals()["failed"] / (20 * 150)
    assert abs(lost - 0.72) < 0.05


def test_failed_calls_free_the_workers():
    held, freed = Simulation(doc(False)), Simulation(doc(True))
    for sim in (held, freed):
        sim.advance(30)
    busy = [float(s.metrics.util["web"][15:30].mean()) for s in (held, freed)]
    assert busy[1] < 0.8 * busy[0]     # the workers no longer wait on the dead database
