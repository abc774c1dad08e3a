"""Machine types: the catalogue, its price and its ceiling, files that name a type, and cost in dollars."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation import machines
from simulation.cli import csv_text
from simulation.engine import Simulation
from simulation.fileformat import dumps, load, loads
from simulation.kinds import KINDS
from simulation.params import FormatError

LESSON = Path(__file__).parents[2] / "resources" / "lessons" / "vertical_scaling.scalelab"


def _doc(server: dict, rate: float = 50.0, duration: float = 30.0, **client) -> dict:
    return {"format": "scalelab", "version": 1, "simulation": {"duration_s": duration, "seed": 5},
            "nodes": [{"id": "u", "kind": "client", "params": {"rate_rps": rate, **client}},
                      {"id": "web", "kind": "server", "params": server}],
            "edges": [{"source": "u", "target": "web"}]}


# ----- the catalogue ------------------------------------------------------------------------
def test_catalogue_follows_its_stated_model():
    for m in machines.CATALOGUE:
        n = m.vcpus
        cores = n / (1 + 0.02 * (n - 1) + 0.00003 * n * (n - 1))       # USL, written out again
        assert m.workers == round(2 * cores)
        assert m.capacity_rps == pytest.approx(25.0 * m.workers)
        assert m.price_per_hour == pytest.approx(0.048 * n)             # m5: $0.096 per 2 vCPUs
    large = machines.BY_NAME["m5.large"]
    server = KINDS["server"]
    assert (large.capacity_rps, large.workers, large.price_per_hour) == (
        server.param("capacity_rps").default, server.param("workers").default, server.param("price_per_hour").default)


def test_bigger_types_cost_more_per_request_and_the_largest_is_the_ceiling():
    cat = machines.CATALOGUE
    assert all(a.vcpus < b.vcpus and a.capacity_rps < b.capacity_rps and a.price_per_hour < b.price_per_hour
               for a, b in zip(cat, cat[1:]))
    per_rps = [m.usd_per_rps_hour for m in cat]
    assert all(b >= a - 1e-12 for a, b in zip(per_rps, per_rps[1:]))       # never cheaper per req/s
    assert per_rps[-1] / per_rps[0] > 3.0                                  # price grows faster than capacity
    # doubling the price (vCPUs) buys less than double the capacity at the top
    top = cat[-3:]
    assert top[1].capacity_rps / top[0].capacity_rps < top[1].price_per_hour / top[0].price_per_hour
    choices = KINDS["server"].param("machine").choices
    assert choices[0] == "custom" and choices[-1] == machines.LARGEST.name == "m5.24xlarge"
    assert max(machines.BY_NAME.values(), key=lambda m: m.capacity_rps) is machines.LARGEST


# ----- files and edits ------------------------------------------------------------------------
def test_a_type_sets_capacity_workers_and_price():
    doc = loads(json.dumps(_doc({"machine": "m5.4xlarge"})))
    p = doc.params("web")
    assert (p["capacity_rps"], p["workers"], p["price_per_hour"]) == (600.0, 24, 0.768)
    assert "capacity_rps" not in json.loads(dumps(doc))["nodes"][1]["params"]      # saved as the type alone
    custom = loads(json.dumps(_doc({"capacity_rps": 70, "workers": 2, "price_per_hour": 0.5})))
    assert custom.params("web")["machine"] == "custom" and custom.params("web")["capacity_rps"] == 70


@pytest.mark.parametrize("name", ["capacity_rps", "workers", "price_per_hour"])
def test_a_file_may_not_set_what_its_type_decides(name):
    value = {"capacity_rps": 900.0, "workers": 8, "price_per_hour": 1.0}[name]
    with pytest.raises(FormatError) as err:
        loads(json.dumps(_doc({"machine": "m5.large", name: value})))
    assert str(err.value).startswith(f'node "web", {name}: is set by machine "m5.large"')
    assert 'set machine to "custom"' in str(err.value)


def test_unknown_type_is_refused_with_the_choices():
    with pytest.raises(FormatError) as err:
        loads(json.dumps(_doc({"machine": "m5.48xlarge"})))
    assert "machine" in str(err.value) and '"m5.24xlarge"' in str(err.value)   # nothing bigger exists


def test_changing_type_keeps_the_node_unambiguous_and_undo_restores_it():
    doc = loads(json.dumps(_doc({"capacity_rps": 70, "workers": 2})))
    old = doc.set_params("web", {"machine": "m5.2xlarge"})
    assert doc.node("web").params == {"machine": "m5.2xlarge"}
    assert doc.params("web")["capacity_rps"] == 350.0
    with pytest.raises(FormatError, match="is set by machine"):
        doc.set_params("web", {"workers": 3})
    back = doc.set_params("web", {"machine": "custom"})     # keeps the type's values as its own
    assert doc.node("web").params == {"machine": "custom", "capacity_rps": 350.0, "workers": 14,
                                      "price_per_hour": 0.384}
    doc.set_params("web", back)
    doc.set_params("web", old)
    assert doc.node("web").params == {"capacity_rps": 70, "workers": 2}


# ----- cost ---------------------------------------------------------------------------------------
def test_cost_is_replica_seconds_times_the_price():
    doc = loads(json.dumps(_doc({"machine": "m5.4xlarge", "replicas": 3}, duration=20.0)))
    sim = Simulation(doc)
    sim.run_until(20.0)
    totals = sim.totals()
    assert totals["cost_usd"] == pytest.approx(3 * 0.768 * 20 / 3600, rel=1e-9)
    assert totals["server_hours"] == pytest.approx(3 * 20 / 3600, rel=1e-9)
    header, *rows = csv_text(sim).splitlines()
    col = header.split(",").index("cost_usd")
    assert float(rows[0].split(",")[col]) == pytest.approx(3 * 0.768 / 3600, rel=1e-5)


def test_autoscaled_replicas_cost_from_their_boot():
    doc = loads(json.dumps(_doc({"machine": "m5.large", "autoscale": True, "min_replicas": 1, "max_replicas": 6,
                                 "scale_interval_s": 5, "boot_time_s": 10, "target_utilization": 0.5},
                                rate=250.0, duration=60.0)))
    sim = Simulation(doc)
    sim.run_until(60.0)
    m = sim.metrics
    assert np.allclose(m.cost_usd, m.cost_server_s * 0.096 / 3600)     # every replica that exists is paid for
    booting = m.cost_server_s > m.active_servers                          # paid for, not yet taking traffic
    assert booting.sum() >= 10 and m.cost_server_s.max() >= 3
    assert sim.totals()["cost_usd"] == pytest.approx(float((m.cost_server_s * m.span_s).sum()) * 0.096 / 3600)


# ----- the lesson ---------------------------------------------------------------------------------
def _saturates_at(sim: Simulation, node: str, until: float) -> float:
    sim.run_until(until)
    m = sim.metrics
    busy = np.nonzero(m.util[node] > 0.95)[0]
    return float(m.time_s[busy[0]]) if len(busy) else np.inf


def test_vertical_scaling_lesson_reaches_the_ceiling():
    doc = load(LESSON)
    p = doc.params("users")
    ramp = p["pattern"]
    rate = p["rate_rps"]

    def when(load_rps: float) -> float:   # the time the ramp offers load_rps (closed form)
        f = load_rps / rate
        return ramp["start_s"] + (f - ramp["from_factor"]) / (ramp["to_factor"] - ramp["from_factor"]) \
            * (ramp["end_s"] - ramp["start_s"])

    assert doc.params("app")["machine"] == machines.LARGEST.name
    assert rate * ramp["to_factor"] > machines.LARGEST.capacity_rps      # the ramp passes the ceiling
    sim = Simulation(doc)
    t_sat = _saturates_at(sim, "app", doc.settings["duration_s"])
    assert t_sat == pytest.approx(when(0.95 * machines.LARGEST.capacity_rps), abs=4.0)
    m = sim.metrics
    after = m.time_s > t_sat
    assert m.failed_by_cause["queue_full"][after].sum() > 100        # failures even on the largest type
    assert m.failed_by_cause["queue_full"][(m.time_s > 50) & ~after].sum() == 0
    totals = sim.totals()
    assert totals["cost_usd"] == pytest.approx(machines.LARGEST.price_per_hour * doc.settings["duration_s"] / 3600
                                               * (1 - 5 / 120), rel=0.02)   # not paid while failed 5 s
    # a smaller type saturates earlier, when the ramp reaches its capacity
    doc.set_params("app", {"machine": "m5.4xlarge"})
    small = Simulation(doc)
    assert _saturates_at(small, "app", 60.0) == pytest.approx(when(0.95 * 600.0), abs=4.0)
