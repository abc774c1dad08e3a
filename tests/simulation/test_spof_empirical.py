"""Single points of failure measured with the engine, and checked against the structure.

Every built-in lesson and a few purpose-built files: the engine (one machine failed
at t = 0, the loss counted over the second half of the run, unlimited capacity so
that only what nothing takes over counts) must find the same full and partial SPOFs
as the structural analysis, with the same shares within a few percent of noise.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from simulation.analysis import DEAD_REPLICA_GETS_READS, empirical_spof, structural_spof
from simulation.fileformat import dumps, load
from tests.simulation.test_analysis import topo

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"
SHARE_TOLERANCE = 0.05   # Poisson noise over ~10^4 requests, caches warming, requests in flight


def assert_agree(doc, seconds: float = 30.0, overload: bool = False, **kw) -> dict:
    spof = structural_spof(doc)
    measured = empirical_spof(doc, seconds=seconds, seed=2, overload=overload, **kw)
    for node, m in measured.items():
        s = spof.get(node)
        assert m.kind == (s.kind if s else None), (node, s, m)
        if s is not None:
            assert m.spof_share == pytest.approx(s.share, abs=SHARE_TOLERANCE), (node, s, m)
    return measured


SPECIAL = ("starter.scalelab", "lb_demo.scalelab", "database_scaling.scalelab")   # checked below, with more


@pytest.mark.parametrize("lesson", sorted(p.name for p in LESSONS.glob("*.scalelab") if p.name not in SPECIAL))
def test_structure_and_engine_agree_on_every_lesson(lesson: str) -> None:
    doc = load(LESSONS / lesson)
    # the structure weighs clients by their rate_rps: compare at steady rates (some lessons'
    # groups of users take turns, e.g. one minute each)
    for node in doc.node_ids():
        if doc.kind(node) == "client":
            doc.set_params(node, {"pattern": {"type": "constant"}})
    assert_agree(doc, seconds=60.0 if any(doc.kind(n) == "cache" for n in doc.node_ids()) else 30.0)


def test_every_lesson_is_checked() -> None:
    assert set(SPECIAL) <= {p.name for p in LESSONS.glob("*.scalelab")}


def test_two_equal_databases_behind_one_server_each_lose_half() -> None:
    doc = topo([("users", "client"), ("web", "server", {"capacity_rps": 400}), ("db1", "database"),
                ("db2", "database")], ["users>web", "web>db1", "web>db2"], rate_rps=200)
    assert structural_spof(doc)["db1"].share == 0.5
    m = assert_agree(doc)
    assert m["db1"].spof_share == pytest.approx(0.5, abs=0.03)
    assert m["web"].kind == "full"


def test_one_of_two_dns_entries_loses_half() -> None:
    doc = topo([("users", "client"), ("a", "server"), ("b", "server")], ["users>a", "users>b"], rate_rps=100)
    m = assert_agree(doc)
    assert m["a"].kind == m["b"].kind == "partial"
    assert m["a"].spof_share == pytest.approx(0.5, abs=0.03)
    doc.set_params("users", {"entry_policy": "failover"})
    assert not structural_spof(doc)
    assert {n: x.kind for n, x in empirical_spof(doc, seconds=20, seed=2, overload=False).items()} == \
        {"a": None, "b": None}


def primary_topology(failover_s: float):
    return topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}),
                 ("db", "database", {"read_replicas": 2, "failover_s": failover_s})],
                ["users>lb", "lb>web", "web>db"], rate_rps=200, read_ratio=0.6)


def test_database_primary_without_failover_loses_its_writes() -> None:
    m = assert_agree(primary_topology(0.0))["db"]
    reads = 0.6 / 3 if DEAD_REPLICA_GETS_READS else 0.0
    assert m.kind == "partial" and m.spof_share == pytest.approx(0.4 + reads, abs=0.03)


def test_database_primary_with_failover_loses_no_writes() -> None:
    m = assert_agree(primary_topology(3.0))["db"]
    if DEAD_REPLICA_GETS_READS:
        assert m.spof_share == pytest.approx(0.6 / 3, abs=0.03)   # reads still sent to the dead primary
    else:
        assert m.kind is None


def test_one_lb_and_replicated_servers() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 3})],
               ["users>lb", "lb>web"], rate_rps=150)
    m = assert_agree(doc)
    assert (m["lb"].kind, m["web"].kind) == ("full", None)


def test_replicas_without_a_balancer_lose_the_dead_ones_share() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 3, "capacity_rps": 100})], ["users>web"],
               rate_rps=60)
    one = assert_agree(doc)
    whole = empirical_spof(doc, seconds=20, seed=1, whole_node=True)
    assert one["web"].kind == "partial" and one["web"].spof_share == pytest.approx(1 / 3, abs=0.03)
    assert whole["web"].kind == "full" and whole["web"].share > 0.99


@pytest.mark.parametrize("balanced", [True, False])
def test_autoscaled_server_is_replaced(balanced: bool) -> None:
    params = {"autoscale": True, "replicas": 1, "min_replicas": 1, "max_replicas": 4, "boot_time_s": 5,
              "scale_interval_s": 5}
    if balanced:
        doc = topo([("users", "client"), ("lb", "load_balancer"), ("s", "server", params)], ["users>lb", "lb>s"],
                   rate_rps=50)
    else:
        doc = topo([("users", "client"), ("s", "server", params)], ["users>s"], rate_rps=50)
    m = assert_agree(doc, seconds=40)
    assert m["s"].kind == (None if balanced else "partial")


def test_overload_is_told_apart_from_a_spof_on_the_starter_lesson() -> None:
    """240 req/s over three 100 req/s servers: without one, the other two serve 200 and lose about a
    sixth, although the balancer routes around the dead one (no SPOF)."""
    doc = load(LESSONS / "starter.scalelab")
    seen = []
    m = assert_agree(doc, overload=True, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12)   # 5 failures and a baseline, with and without overload
    assert (m["lb"].kind, m["db"].kind) == ("full", "full")
    assert m["lb"].share > 0.99 and m["db"].share > 0.99
    for web in ("web1", "web2", "web3"):
        assert m[web].kind is None and m[web].spof_share < 0.01
        assert 0.1 < m[web].share < 0.25


def test_lb_demo_scheduled_failure_of_web2_is_left_out() -> None:
    """lb_demo fails Web 2 from 30 to 90 s: Web 2 costs what Web 1 and Web 3 cost, the load balancer
    everything, and the caller's document keeps its events."""
    doc = load(LESSONS / "lb_demo.scalelab")
    before = dumps(doc)
    m = assert_agree(doc, seconds=50, overload=True)
    assert dumps(doc) == before and len(doc.events) == 2
    assert m["web2"].share == pytest.approx(m["web1"].share, abs=0.02)
    assert m["web2"].share == pytest.approx(m["web3"].share, abs=0.02)
    assert m["lb"].share > 0.99


def test_database_scaling_scheduled_failure_of_the_primary_is_left_out() -> None:
    """database_scaling fails the database's primary at 40 s: the balancer and the cache still cost
    everything (not 94 %), and the primary what the structure says."""
    doc = load(LESSONS / "database_scaling.scalelab")
    m = assert_agree(doc, seconds=60)
    assert m["lb"].spof_share > 0.99 and m["cache"].spof_share > 0.99
    assert m["app"].spof_share < 0.01
    assert len(doc.events) == 1
