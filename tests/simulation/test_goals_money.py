"""Goals in dollars and on stale page views: measured as the run's own totals and rows."""
from __future__ import annotations

import json
import math

from simulation.engine import Simulation
from simulation.fileformat import loads
from simulation.goals import format_value
from simulation.grading import evaluate


def shop(machine: str, replicas: int, goals: list) -> dict:
    """Users → a fixed fleet of one machine type (no autoscaling), for 20 s."""
    return {
        "format": "scalelab", "version": 1, "simulation": {"duration_s": 20, "seed": 5},
        "nodes": [{"id": "users", "kind": "client", "params": {"rate_rps": 50}},
                  {"id": "web", "kind": "server", "params": {"machine": machine, "replicas": replicas}}],
        "edges": [{"source": "users", "target": "web"}],
        "goals": goals,
    }


def graded(data: dict):
    doc = loads(json.dumps(data))
    sim = Simulation(doc)
    sim.advance(data["simulation"]["duration_s"])
    return sim, evaluate(doc.goals, doc, sim)


def test_a_dollar_goal_is_price_times_replicas_times_time() -> None:
    # m5.large: $0.096 an hour. Three of them for 20 s, and for the 10 s window 5-15 s.
    goals = [{"metric": "cost_usd", "at_most": 0.01}, {"metric": "cost_usd", "at_most": 0.0005, "from_s": 5, "to_s": 15}]
    sim, (whole, window) = graded(shop("m5.large", 3, goals))
    assert math.isclose(whole.measured, 3 * 0.096 * 20 / 3600, rel_tol=1e-9)
    assert math.isclose(whole.measured, sim.totals()["cost_usd"], rel_tol=1e-12)
    assert math.isclose(window.measured, 3 * 0.096 * 10 / 3600, rel_tol=1e-9)
    assert whole.met and not window.met          # $0.0008 > $0.0005
    assert "$0.0016" in whole.text and "$" in window.text


def test_a_bigger_machine_costs_more_dollars_and_misses_a_budget() -> None:
    goals = [{"metric": "cost_usd", "at_most": 0.002}]
    _, (small,) = graded(shop("m5.large", 3, goals))
    _, (big,) = graded(shop("m5.24xlarge", 1, goals))
    assert small.met and not big.met
    assert math.isclose(big.measured, 4.608 * 20 / 3600, rel_tol=1e-9)


def test_dollars_are_written_with_cents_or_enough_decimals() -> None:
    assert format_value("money", 1234.5) == "$1,234.50"
    assert format_value("money", 0.0016) == "$0.0016"
    assert format_value("money", 0.00161, near=0.0016) != format_value("money", 0.0016)


def test_a_stale_page_view_goal_counts_the_runs_stale_page_views() -> None:
    data = shop("m5.large", 2, [{"metric": "stale_page_views", "at_most": 0}])
    data["nodes"][0]["params"].update(users=20, items=5, read_ratio=0.8)
    data["nodes"][1]["params"].update(cache_max_age_s=60)
    sim, (goal,) = graded(data)
    stale = sim.totals()["stale_page_views"]
    assert stale > 0 and goal.measured == stale and not goal.met
