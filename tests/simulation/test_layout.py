"""Nodes without positions of their own (a file written by hand or by a script) are laid
out by level, left to right, as the lessons are drawn (simulation/layout.py)."""
from __future__ import annotations

import itertools
import random

from simulation.document import Document, NodeData
from simulation.layout import COLUMN, ROW, arranged, stacked_nodes
from wallclock import within


def script_doc() -> Document:
    """users → lb → web ×3 → db, and a cache beside the database, all at (0, 0)."""
    d = Document()
    for i, k in (("users", "client"), ("lb", "load_balancer"), ("web1", "server"), ("web2", "server"),
                 ("web3", "server"), ("cache", "cache"), ("db", "database")):
        d.add_node(NodeData(i, k))
    for a, b in (("users", "lb"), ("lb", "web1"), ("lb", "web2"), ("lb", "web3"), ("web1", "cache"),
                 ("web2", "cache"), ("web3", "cache"), ("cache", "db")):
        d.add_edge(a, b)
    return d


def apart(pos: dict) -> bool:
    """No two nodes closer than a column across or a row down (their boxes do not overlap)."""
    return all(abs(a[0] - b[0]) >= COLUMN or abs(a[1] - b[1]) >= ROW for a, b in itertools.combinations(pos.values(), 2))


def test_a_pile_of_nodes_is_laid_out_by_level_left_to_right():
    d = script_doc()
    assert stacked_nodes(d) == d.node_ids()
    pos = arranged(d)
    assert set(pos) == set(d.node_ids()) and apart(pos)
    column = {i: round(p[0] / COLUMN) for i, p in pos.items()}
    assert column == {"users": 0, "lb": 1, "web1": 2, "web2": 2, "web3": 2, "cache": 3, "db": 4}
    assert all(pos[a][0] < pos[b][0] for a, b in d.edges())   # every connection points right
    assert pos["web1"][1] < pos["web2"][1] < pos["web3"][1]   # the file's order within a column
    # the single nodes sit level with the middle of the widest column
    assert pos["users"][1] == pos["lb"][1] == pos["web2"][1] == pos["cache"][1] == pos["db"][1]


def test_placed_nodes_keep_their_places_and_the_pile_goes_below_them():
    d = script_doc()
    d.move_node("users", 500.0, -40.0)
    d.move_node("lb", 740.0, 300.0)
    pos = arranged(d)
    assert set(pos) == {"web1", "web2", "web3", "cache", "db"}
    assert min(p[1] for p in pos.values()) > 300.0 and min(p[0] for p in pos.values()) == 500.0
    assert apart({**pos, "users": (500.0, -40.0), "lb": (740.0, 300.0)})


def test_a_file_with_its_own_positions_is_left_alone():
    d = script_doc()
    for k, i in enumerate(d.node_ids()):
        d.move_node(i, 100.0 * k, 0.0)
    assert stacked_nodes(d) == [] and arranged(d) == {}


def test_random_graphs_end_quickly_and_overlap_nowhere():
    rng = random.Random(5)
    with within(20, "laying out random graphs"):
        for n in (2, 5, 30, 300):
            d = Document()
            for k in range(n):
                d.add_node(NodeData(f"n{k}", "server"))
            for _ in range(2 * n):
                a, b = rng.sample(range(n), 2)
                if not d.connect_problem(f"n{a}", f"n{b}"):   # (loops are refused)
                    d.add_edge(f"n{a}", f"n{b}")
            pos = arranged(d)
            assert len(pos) == n and len(set(pos.values())) == n
            if n <= 30:
                assert apart(pos)


def test_twenty_thousand_nodes_in_a_chain_are_laid_out_at_once():
    """An attacker's (or a script's) file: a chain of 20,000 nodes without positions."""
    d = Document()
    for k in range(20_000):
        d.add_node(NodeData(f"n{k}", "server"))
        if k:
            d.add_edge(f"n{k - 1}", f"n{k}")
    with within(30, "laying out 20,000 nodes"):
        pos = arranged(d)
    assert pos["n19999"][0] == 19_999 * COLUMN and len(set(pos.values())) == 20_000
