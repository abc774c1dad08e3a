"""Single points of failure: what a user sees outlined in red, and why."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulation.analysis import empirical_spof, structural_spof
from simulation.fileformat import document_from_dict, load

ROOT = Path(__file__).resolve().parents[2]


def topo(nodes: list[tuple], edges: list[str], **client_params: Any):
    """``nodes``: (id, kind[, params]); ``edges``: "a>b"."""
    out = []
    for n in nodes:
        params = dict(n[2]) if len(n) > 2 else {}
        if n[1] == "client":
            params.update(client_params)
        out.append({"id": n[0], "kind": n[1], "label": n[0].capitalize(), "params": params})
    return document_from_dict({
        "format": "scalelab", "version": 1, "nodes": out,
        "edges": [{"source": e.split(">")[0], "target": e.split(">")[1]} for e in edges],
    })


def test_starter_lesson_lb_and_database_are_spofs_web_servers_are_not() -> None:
    doc = load(ROOT / "resources" / "lessons" / "starter.scalelab")
    spof = structural_spof(doc)
    assert set(spof) == {"lb", "db"}
    assert spof["lb"] == "If this load balancer fails, Users cannot reach any server"
    assert spof["db"] == "Every server of Users calls this database; it has no replica"


def test_single_server_without_replica_is_a_spof() -> None:
    doc = topo([("users", "client"), ("web", "server")], ["users>web"])
    spof = structural_spof(doc)
    assert list(spof) == ["web"]
    assert "Users cannot reach any server" in spof["web"]


def test_server_with_two_replicas_alone_behind_a_client_is_not_a_spof() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2})], ["users>web"])
    assert structural_spof(doc) == {}


def test_replicated_server_behind_lone_lb_only_the_lb_is_a_spof() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 3})],
               ["users>lb", "lb>web"])
    assert list(structural_spof(doc)) == ["lb"]


def test_replicated_servers_sharing_one_database_the_database_is_the_spof() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 3}), ("db", "database")],
               ["users>web", "web>db"])
    spof = structural_spof(doc)
    assert list(spof) == ["db"]
    assert spof["db"].startswith("Every server of Users calls this database")


def test_two_lbs_in_dns_round_robin_are_not_spofs() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web1", "server"), ("web2", "server")],
               ["users>lb1", "users>lb2", "lb1>web1", "lb1>web2", "lb2>web1", "lb2>web2"])
    assert structural_spof(doc) == {}


def test_two_lbs_each_with_its_own_single_server_are_not_spofs() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web1", "server"), ("web2", "server")],
               ["users>lb1", "users>lb2", "lb1>web1", "lb2>web2"])
    assert structural_spof(doc) == {}


def test_two_lbs_in_front_of_one_server_the_server_is_the_spof() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"), ("web", "server")],
               ["users>lb1", "users>lb2", "lb1>web", "lb2>web"])
    assert list(structural_spof(doc)) == ["web"]


def test_lb_with_one_backend_makes_that_backend_a_spof() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server")], ["users>lb", "lb>web"])
    assert set(structural_spof(doc)) == {"lb", "web"}


def test_database_used_by_only_one_of_two_servers_is_not_a_spof() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web1", "server"), ("web2", "server"),
                ("db", "database")],
               ["users>lb", "lb>web1", "lb>web2", "web1>db"])
    assert list(structural_spof(doc)) == ["lb"]


def test_server_calling_two_databases_can_do_without_either() -> None:
    """The engine spreads a server's calls over its downstream nodes: losing one loses a share, not all."""
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2}), ("db1", "database"),
                ("db2", "database")],
               ["users>web", "web>db1", "web>db2"])
    assert structural_spof(doc) == {}


def test_both_databases_behind_one_cache_share_the_cache() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2}), ("cache", "cache"),
                ("db1", "database"), ("db2", "database")],
               ["users>web", "web>cache", "cache>db1", "cache>db2"])
    assert list(structural_spof(doc)) == ["cache"]


def test_second_tier_service_called_by_servers() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2}), ("auth", "server")],
               ["users>web", "web>auth"])
    spof = structural_spof(doc)
    assert list(spof) == ["auth"]
    assert spof["auth"] == "Every server of Users calls this server; it has no replica"


def test_cache_in_front_of_database() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2}), ("cache", "cache"), ("db", "database")],
               ["users>web", "web>cache", "cache>db"])
    spof = structural_spof(doc)
    assert set(spof) == {"cache", "db"}
    assert spof["cache"] == "If this cache fails, Users cannot reach any server"
    assert spof["db"] == ("Every server of Users calls this database through a cache that only answers read hits: "
                          "writes and misses need it; it has no replica")


def test_reason_names_every_client_cut_off() -> None:
    doc = topo([("users", "client"), ("admins", "client"), ("lb", "load_balancer"),
                ("web", "server", {"replicas": 2})],
               ["users>lb", "admins>lb", "lb>web"])
    assert structural_spof(doc) == {"lb": "If this load balancer fails, Users and Admins cannot reach any server"}


def test_node_needed_by_one_client_only_is_still_a_spof_for_that_client() -> None:
    doc = topo([("users", "client"), ("admins", "client"), ("lb", "load_balancer"),
                ("web", "server", {"replicas": 2})],
               ["users>lb", "admins>web", "lb>web"])
    spof = structural_spof(doc)
    assert spof == {"lb": "If this load balancer fails, Users cannot reach any server"}


def test_unconnected_or_broken_topologies_have_no_spof_and_do_not_crash() -> None:
    assert structural_spof(topo([], [])) == {}
    assert structural_spof(topo([("users", "client"), ("db", "database")], [])) == {}
    # a load balancer without backends serves nobody whatever fails: broken, not fragile
    doc = topo([("users", "client"), ("lb", "load_balancer")], ["users>lb"])
    assert structural_spof(doc) == {}
    doc = topo([("users", "client"), ("web", "server"), ("lb", "load_balancer")], ["users>web", "web>lb"])
    assert structural_spof(doc) == {}


def test_large_topology_is_fast() -> None:
    import time
    nodes: list[tuple] = [("users", "client"), ("lb", "load_balancer"), ("db", "database")]
    edges = ["users>lb"]
    for i in range(2000):
        nodes.append((f"web{i}", "server"))
        edges += [f"lb>web{i}", f"web{i}>db"]
    doc = topo(nodes, edges)
    start = time.perf_counter()
    assert set(structural_spof(doc)) == {"lb", "db"}
    assert time.perf_counter() - start < 2.0


# ----- empirical: with the engine -------------------------------------------------------------
def test_empirical_spof_agrees_with_structure_on_the_starter_lesson() -> None:
    doc = load(ROOT / "resources" / "lessons" / "starter.scalelab")
    seen = []
    lost = empirical_spof(doc, seconds=30, seed=3, progress=lambda done, total: seen.append((done, total)))
    assert set(lost) == {"lb", "web1", "web2", "web3", "db"}
    assert seen[-1] == (6, 6)
    assert lost["lb"] > 0.9 and lost["db"] > 0.9
    for web in ("web1", "web2", "web3"):
        assert lost[web] < 0.5, lost


def test_empirical_spof_replicas_are_redundancy() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 3, "capacity_rps": 100})], ["users>web"],
               rate_rps=60)
    one = empirical_spof(doc, seconds=20, seed=1)
    whole = empirical_spof(doc, seconds=20, seed=1, whole_node=True)
    assert 0.2 < one["web"] < 0.45  # one replica of three down, no balancer to route around it: about a third
    assert whole["web"] > 0.95  # every replica down: nothing is served


def test_empirical_loss_is_total_only_for_structural_spofs() -> None:
    """Both analyses ask the same question: a SPOF loses everything, any other node a share."""
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web", "server", {"replicas": 2, "capacity_rps": 200}), ("db1", "database"), ("db2", "database"),
                ("auth", "server", {"capacity_rps": 400})],
               ["users>lb1", "users>lb2", "lb1>web", "lb2>web", "web>db1", "web>db2", "web>auth"],
               rate_rps=80)
    spof = structural_spof(doc)
    lost = empirical_spof(doc, seconds=20, seed=2)
    assert set(spof) == {n for n, share in lost.items() if share > 0.9}, (spof, lost)


def test_an_autoscaled_server_is_redundant_only_with_two_or_more_minimum_replicas() -> None:
    from simulation.document import Document, NodeData
    from simulation.analysis import structural_spof
    d = Document()
    d.add_node(NodeData("c", "client"))
    d.add_node(NodeData("s", "server", params={"autoscale": True, "min_replicas": 1, "max_replicas": 8}))
    d.add_edge("c", "s")
    assert "s" in structural_spof(d)
    d.set_params("s", {"min_replicas": 2})
    assert "s" not in structural_spof(d)


def test_read_replicas_do_not_remove_the_primary_as_a_single_point_of_failure() -> None:
    d = load(ROOT / "resources" / "lessons" / "starter.scalelab")
    d.set_params("db", {"read_replicas": 2})
    assert "primary" in structural_spof(d)["db"]
