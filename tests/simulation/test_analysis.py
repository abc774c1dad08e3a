"""Single points of failure by structure: what a user sees outlined (red: full, orange: partial), and why.

The shares are checked against closed forms from the routing rules (docs/engine.md):
equal shares over DNS entries and LB backends, capacity shares over a server's
downstream nodes, 1/n for one of n replicas that nothing health-checks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulation.analysis import DEAD_REPLICA_GETS_READS, structural_spof
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


def kinds(doc) -> dict[str, tuple[str, float]]:
    return {n: (s.kind, round(s.share, 6)) for n, s in structural_spof(doc).items()}


def test_starter_lesson_lb_and_database_are_spofs_web_servers_are_not() -> None:
    doc = load(ROOT / "resources" / "lessons" / "starter.scalelab")
    spof = structural_spof(doc)
    assert kinds(doc) == {"lb": ("full", 1.0), "db": ("full", 1.0)}
    assert spof["lb"].reason == "If this load balancer fails, Users cannot reach any server"
    assert spof["db"].reason == "Every server of Users calls this database; it has no replica"


def test_single_server_without_replica_is_a_spof() -> None:
    doc = topo([("users", "client"), ("web", "server")], ["users>web"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"web": ("full", 1.0)}
    assert "Users cannot reach any server" in spof["web"].reason


def test_one_of_two_replicas_without_a_balancer_loses_half() -> None:
    """A client picks a replica at random and nothing checks their health: the dead one keeps its half."""
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2})], ["users>web"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"web": ("partial", 0.5)}
    assert spof["web"].reason.startswith("50% of requests fail while one of its 2 replicas is down: ")
    assert "a load balancer in front would route around it" in spof["web"].reason


def test_replicated_server_behind_lone_lb_only_the_lb_is_a_spof() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 3})],
               ["users>lb", "lb>web"])
    assert kinds(doc) == {"lb": ("full", 1.0)}


def test_replicated_servers_sharing_one_database_the_database_is_the_spof() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 3}), ("db", "database")],
               ["users>web", "web>db"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"web": ("partial", round(1 / 3, 6)), "db": ("full", 1.0)}
    assert spof["db"].reason.startswith("Every server of Users calls this database")


def test_two_lbs_in_dns_round_robin_each_lose_half() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web1", "server"), ("web2", "server")],
               ["users>lb1", "users>lb2", "lb1>web1", "lb1>web2", "lb2>web1", "lb2>web2"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"lb1": ("partial", 0.5), "lb2": ("partial", 0.5)}
    assert spof["lb1"].reason == ("50% of requests fail while it is down: it is one of the entries of Users in "
                                  "DNS round robin, and a dead entry keeps getting its share "
                                  "(entry policy failover would avoid it)")


def test_two_lbs_with_entry_failover_are_not_spofs() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web1", "server"), ("web2", "server")],
               ["users>lb1", "users>lb2", "lb1>web1", "lb1>web2", "lb2>web1", "lb2>web2"],
               entry_policy="failover")
    assert structural_spof(doc) == {}


def test_dns_shares_are_equal_whatever_the_entries_capacity() -> None:
    """DNS round robin does not know capacities: three entries, a third each."""
    doc = topo([("users", "client"), ("a", "server", {"capacity_rps": 1000}), ("b", "server"),
                ("c", "server", {"capacity_rps": 10})],
               ["users>a", "users>b", "users>c"])
    assert kinds(doc) == {n: ("partial", round(1 / 3, 6)) for n in "abc"}


def test_two_lbs_each_with_its_own_single_server_lose_half() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"),
                ("web1", "server"), ("web2", "server")],
               ["users>lb1", "users>lb2", "lb1>web1", "lb2>web2"])
    assert kinds(doc) == {n: ("partial", 0.5) for n in ("lb1", "lb2", "web1", "web2")}
    assert structural_spof(doc)["web1"].reason == ("50% of requests fail while it is down: it is the only backend "
                                                   "of Lb1, which still gets its share of the requests")


def test_two_lbs_in_front_of_one_server_the_server_is_the_spof() -> None:
    doc = topo([("users", "client"), ("lb1", "load_balancer"), ("lb2", "load_balancer"), ("web", "server")],
               ["users>lb1", "users>lb2", "lb1>web", "lb2>web"])
    assert kinds(doc) == {"lb1": ("partial", 0.5), "lb2": ("partial", 0.5), "web": ("full", 1.0)}


def test_lb_with_one_backend_makes_that_backend_a_spof() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server")], ["users>lb", "lb>web"])
    assert kinds(doc) == {"lb": ("full", 1.0), "web": ("full", 1.0)}


def test_database_used_by_only_one_of_two_servers_loses_that_servers_share() -> None:
    """Health checks see web1 up: it keeps its half of the requests and fails them."""
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web1", "server"), ("web2", "server"),
                ("db", "database")],
               ["users>lb", "lb>web1", "lb>web2", "web1>db"])
    assert kinds(doc) == {"lb": ("full", 1.0), "db": ("partial", 0.5)}
    assert structural_spof(doc)["db"].reason == (
        "50% of requests fail while it is down: requests keep reaching Web1 (health checks see that a server is "
        "up, not what it calls), and they need it")


def test_lb_shares_follow_capacity_for_weighted_and_load_aware_algorithms() -> None:
    for algorithm, share in (("round_robin", 0.5), ("weighted_round_robin", 0.75), ("least_connections", 0.75)):
        doc = topo([("users", "client"), ("lb", "load_balancer", {"algorithm": algorithm}),
                    ("web1", "server", {"capacity_rps": 300}), ("web2", "server"), ("db", "database")],
                   ["users>lb", "lb>web1", "lb>web2", "web1>db"])
        assert kinds(doc)["db"] == ("partial", share), algorithm


def test_server_calling_two_databases_loses_the_calls_to_a_dead_one() -> None:
    """The engine splits a server's calls in proportion to capacity and has no retry."""
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}),
                ("db1", "database"), ("db2", "database", {"read_capacity_rps": 6000})],
               ["users>lb", "lb>web", "web>db1", "web>db2"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"lb": ("full", 1.0), "db1": ("partial", 0.25), "db2": ("partial", 0.75)}
    assert spof["db1"].reason == ("25% of requests fail while it is down: the calls of Web are split over 2 nodes "
                                  "without retry: those sent to this one fail")


def test_database_primary_without_failover_loses_the_writes() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}),
                ("db", "database", {"read_replicas": 2})],
               ["users>lb", "lb>web", "web>db"], read_ratio=0.6)
    spof = structural_spof(doc)["db"]
    reads = 0.6 / 3 if DEAD_REPLICA_GETS_READS else 0.0   # the primary is one of three machines reads go to
    assert (spof.kind, spof.share) == ("partial", pytest.approx(0.4 + reads))
    assert "while its primary is down: only its primary takes writes" in spof.reason
    assert "(failover is off)" in spof.reason


def test_database_primary_with_failover_keeps_the_writes() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}),
                ("db", "database", {"read_replicas": 2, "failover_s": 5})],
               ["users>lb", "lb>web", "web>db"], read_ratio=0.6)
    spof = structural_spof(doc).get("db")
    if DEAD_REPLICA_GETS_READS:
        assert (spof.kind, spof.share) == ("partial", pytest.approx(0.6 / 3))
        assert spof.reason.startswith("20% of requests (reads) fail while its primary is down")
    else:
        assert spof is None


def test_both_databases_behind_one_cache_share_the_cache() -> None:
    doc = topo([("users", "client"), ("web", "server", {"replicas": 2}), ("cache", "cache"),
                ("db1", "database"), ("db2", "database")],
               ["users>web", "web>cache", "cache>db1", "cache>db2"])
    spof = structural_spof(doc)
    assert spof["cache"].full and not spof["db1"].full and not spof["db2"].full
    assert spof["db1"].share == pytest.approx(spof["db2"].share)


def test_second_tier_service_called_by_servers() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}), ("auth", "server")],
               ["users>lb", "lb>web", "web>auth"])
    spof = structural_spof(doc)
    assert kinds(doc) == {"lb": ("full", 1.0), "auth": ("full", 1.0)}
    assert spof["auth"].reason == "Every server of Users calls this server; it has no replica"


def test_cache_in_front_of_database_the_database_loses_writes_and_misses() -> None:
    doc = topo([("users", "client"), ("lb", "load_balancer"), ("web", "server", {"replicas": 2}),
                ("cache", "cache"), ("db", "database")],
               ["users>lb", "lb>web", "web>cache", "cache>db"], read_ratio=0.8)
    spof = structural_spof(doc)
    assert spof["cache"].full and spof["cache"].reason == "If this cache fails, Users cannot reach any server"
    assert spof["db"].kind == "partial" and 0.2 < spof["db"].share < 1.0   # all writes, the read misses
    assert "the cache in front still answers read hits" in spof["db"].reason
    # a bigger cache answers more: the database loses less (the engine's measure: test_spof_empirical.py)
    doc.set_params("cache", {"capacity_items": 9000})
    assert 0.2 < structural_spof(doc)["db"].share < spof["db"].share


def test_reason_names_every_client_cut_off() -> None:
    doc = topo([("users", "client"), ("admins", "client"), ("lb", "load_balancer"),
                ("web", "server", {"replicas": 2})],
               ["users>lb", "admins>lb", "lb>web"])
    spof = structural_spof(doc)
    assert list(spof) == ["lb"]
    assert spof["lb"].reason == "If this load balancer fails, Users and Admins cannot reach any server"


def test_node_needed_by_one_client_only_is_a_full_spof_weighted_by_that_clients_rate() -> None:
    doc = topo([("users", "client", {"rate_rps": 300}), ("admins", "client", {"rate_rps": 100}),
                ("lb", "load_balancer"), ("web", "server", {"replicas": 2})],
               ["users>lb", "admins>web", "lb>web"])
    spof = structural_spof(doc)
    assert spof["lb"].full
    assert spof["lb"].reason == "If this load balancer fails, Users cannot reach any server (75% of all requests)"
    assert spof["lb"].share == pytest.approx(0.75)     # Users send 300 of the 400 requests per second
    assert (spof["web"].kind, spof["web"].share) == ("partial", pytest.approx(0.5 * 0.25))   # Admins pick a replica


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


def test_an_autoscaled_server_behind_a_balancer_is_replaced_not_a_spof() -> None:
    """The autoscaler boots a replacement for a failed replica and the balancer routes around the dead
    one: nothing is lost for good (the engine measures the same: test_spof_empirical.py)."""
    doc = topo([("users", "client"), ("lb", "load_balancer"),
                ("s", "server", {"autoscale": True, "min_replicas": 1, "max_replicas": 8})], ["users>lb", "lb>s"])
    assert kinds(doc) == {"lb": ("full", 1.0)}


def test_an_autoscaled_server_without_a_balancer_keeps_sending_the_dead_replica_its_share() -> None:
    """Without health checks the dead replica stays among the n + 1 (the replacement included)."""
    for n in (1, 2):
        doc = topo([("users", "client"), ("s", "server", {"autoscale": True, "replicas": n, "min_replicas": n,
                                                         "max_replicas": 8})], ["users>s"])
        assert kinds(doc) == {"s": ("partial", round(1 / (n + 1), 6))}
        assert "the autoscaler replaces a dead replica, but nothing checks their health" in structural_spof(doc)["s"].reason


def test_read_replicas_do_not_remove_the_primary_as_a_single_point_of_failure() -> None:
    d = load(ROOT / "resources" / "lessons" / "starter.scalelab")
    d.set_params("db", {"read_replicas": 2})
    assert structural_spof(d)["db"].kind == "partial"
    assert "primary" in structural_spof(d)["db"].reason


def test_shares_are_of_what_is_served_with_nothing_failed() -> None:
    """Half the users' requests go to a balancer without backends and always fail: the server that
    serves the other half loses everything that was served (the engine measures the same)."""
    doc = topo([("users", "client"), ("web", "server"), ("empty", "load_balancer"), ("db1", "database"),
                ("db2", "database", {"read_capacity_rps": 6000})],
               ["users>web", "users>empty", "web>db1", "web>db2"])
    assert kinds(doc) == {"web": ("full", 1.0), "db1": ("partial", 0.25), "db2": ("partial", 0.75)}


def test_a_client_is_cut_off_only_if_it_loses_what_it_was_served() -> None:
    """A weighted balancer sends most requests to an empty balancer (always lost) and 300 of 20,300
    parts to three replicas; one replica down leaves 200 of 20,200: a third of what was served."""
    doc = topo([("users", "client"), ("lb", "load_balancer", {"algorithm": "weighted_round_robin"}),
                ("web", "server", {"replicas": 3}), ("empty", "load_balancer")],
               ["users>lb", "lb>web", "lb>empty"])
    served, left = 300 / 20_300, 200 / 20_200
    assert kinds(doc) == {"lb": ("full", 1.0), "web": ("partial", round(1 - left / served, 6))}
