"""Single points of failure for clients whose queries join: across shards (every shard
is needed) and across partitioned databases (both are needed). The structural
analysis takes each client's own cross-shard share, so a client whose every query
joins across shards is cut off by one dead shard (a full SPOF) even when another
client is not; checked against closed forms and against the engine (check --empirical)."""
from __future__ import annotations

import numpy as np
import pytest

from simulation import analysis
from simulation.document import Document, NodeData
from simulation.sharding import owner

from test_partitioning import partitioned

SHARDS, ITEMS = 4, 1000


def sharded(cross_a: float, cross_b: float | None = None, rr: float = 0.9, **db) -> Document:
    """Clients a (and b) with uniformly popular items → a server → a database of 4 shards."""
    d = Document()
    d.add_node(NodeData("a", "client", params={"rate_rps": 100, "cross_shard_share": cross_a, "read_ratio": rr,
                                               "items": ITEMS, "zipf_s": 0.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 2000, "workers": 32}))
    d.add_node(NodeData("db", "database", params={"shards": SHARDS, **db}))
    d.add_edge("a", "web")
    d.add_edge("web", "db")
    if cross_b is not None:
        d.add_node(NodeData("b", "client", params={"rate_rps": 300, "cross_shard_share": cross_b, "read_ratio": rr,
                                                   "items": ITEMS, "zipf_s": 0.0}))
        d.add_edge("b", "web")
    return d


MINE = float(np.mean(owner("hash", SHARDS, np.arange(ITEMS), ITEMS) == 0))   # keys shard 0 owns (uniform popularity)


def both(d: Document, seconds: float = 40.0):
    return analysis.structural_spof(d), analysis.empirical_spof(d, seconds, overload=False)


def test_a_client_whose_every_query_crosses_shards_is_cut_off_by_one_shard():
    """a (100/s) joins across shards every time, b (300/s) never: shard 0 down, a loses all
    and b the keys shard 0 owns. Averaged over clients (50 % cross-shard), it looked partial."""
    structural, measured = both(sharded(1.0, 0.0))
    share = (100 * 1.0 + 300 * MINE) / 400
    assert structural["db"].full and structural["db"].share == pytest.approx(share, abs=1e-9)
    assert "joins across shards" in structural["db"].reason
    assert measured["db"].kind == "full" and measured["db"].worst >= analysis.FULL_MIN
    assert measured["db"].spof_share == pytest.approx(share, abs=0.03)


def test_cross_shard_shares_are_each_clients_own():
    """a half cross-shard, b never: the loss is a's 0.5 + 0.5 · mine and b's mine, partial."""
    structural, measured = both(sharded(0.5, 0.0))
    share = (100 * (0.5 + 0.5 * MINE) + 300 * MINE) / 400
    assert not structural["db"].full and structural["db"].share == pytest.approx(share, abs=1e-9)
    assert measured["db"].kind == "partial" and measured["db"].spof_share == pytest.approx(share, abs=0.03)


@pytest.mark.parametrize("failover", [0.0, 5.0])
def test_cross_shard_reads_at_a_dead_primarys_place_fail(failover):
    """Shards with a read replica each, every query cross-shard: a query sends its parts to
    the same place in every shard (the primary's or the replica's, 1/2 each) without asking
    the proxy, so a read fails when its own shard is another one and its place is the dead
    primary's: (1 − mine)/2 of the reads; every write needs shard 0's primary unless failover
    promotes its replica."""
    rr = 0.9
    structural, measured = both(sharded(1.0, rr=rr, read_replicas=1, failover_s=failover))
    share = rr * (1 - MINE) / 2 + (1 - rr) * (0.0 if failover else 1.0)
    assert structural["db"].share == pytest.approx(share, abs=1e-9)
    assert measured["db"].kind == "partial" and measured["db"].spof_share == pytest.approx(share, abs=0.03)


def test_a_client_whose_every_query_joins_two_partitions_is_cut_off_by_either():
    """Join share 1 over two databases: either one down cuts the client off; a second
    client that reads one table only loses everything at its own database only."""
    d = partitioned(100, {"users": 0.5, "flights": 0.5}, join=1.0, tables={"db_u": ["users"], "db_f": ["flights"]})
    d.add_node(NodeData("c2", "client", params={"rate_rps": 300, "table_mix": {"flights": 1.0}}))
    d.add_edge("c2", "web")
    structural, measured = both(d)
    for db, share in (("db_u", 100 / 400), ("db_f", 1.0)):
        assert structural[db].full and structural[db].share == pytest.approx(share, abs=1e-9), db
        assert measured[db].kind == "full" and measured[db].spof_share == pytest.approx(share, abs=0.02), db
    assert "only home of table users" in structural["db_u"].reason


def test_a_joins_second_query_to_a_sharded_database_needs_only_its_keys_shard():
    """All-join client, cross-shard 1, the flights database sharded (2): the join's first
    query goes to the users database (first in the file), its second to the shard owning
    its key only (a second query is not a cross-shard query): shard 0 loses its keys."""
    d = partitioned(100, {"users": 0.5, "flights": 0.5}, join=1.0, tables={"db_u": ["users"], "db_f": ["flights"]})
    d.set_params("c", {"cross_shard_share": 1.0, "zipf_s": 0.0, "items": ITEMS})
    d.set_params("db_f", {"shards": 2})
    structural, measured = both(d)
    mine = float(np.mean(owner("hash", 2, np.arange(ITEMS), ITEMS) == 0))
    assert not structural["db_f"].full and structural["db_f"].share == pytest.approx(mine, abs=1e-9)
    assert measured["db_f"].kind == "partial" and measured["db_f"].spof_share == pytest.approx(mine, abs=0.03)


def test_check_and_check_empirical_agree_on_the_cut_off_client(tmp_path, capsys):
    from simulation.cli import main
    from simulation.fileformat import dumps
    path = tmp_path / "cross.scalelab"
    path.write_text(dumps(sharded(1.0, 0.0)))
    assert main(["check", str(path), "--empirical", "20"]) == 0
    out = capsys.readouterr().out
    assert "db — full: Every query of a joins across shards" in out
    assert "db (shard 0)" in out and out.split("db (shard 0)")[1].split("\n")[0].strip().endswith("full SPOF")
