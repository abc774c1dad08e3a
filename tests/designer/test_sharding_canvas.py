"""A sharded database on the canvas: its badge, and failing or recovering one shard."""
from __future__ import annotations

from pathlib import Path

import pytest

from designer.canvas import CanvasView
from designer.controller import DocumentController
from simulation.engine import Simulation
from simulation.fileformat import load

STARTER = Path(__file__).resolve().parents[2] / "resources" / "lessons" / "starter.scalelab"


@pytest.fixture
def view(qtbot) -> CanvasView:
    v = CanvasView(DocumentController(load(STARTER)))
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_a_sharded_database_shows_its_shards_and_fails_one_of_them(view, qtbot):
    ctl = view.controller
    item = view.canvas_scene.nodes["db"]
    assert item.shards == 1 and not any(a.text() == "Fail one shard" for a in view.node_menu("db").actions())
    ctl.set_params(["db"], {"shards": 3})
    assert item.shards == 3 and item.replicas == 3            # badge "3 shards" over a stack of 3
    menu = view.node_menu("db")
    sub = next(a.menu() for a in menu.actions() if a.text() == "Fail one shard")
    assert [a.text() for a in sub.actions()] == ["Shard 0", "Shard 1", "Shard 2"]
    with qtbot.waitSignal(view.shardFailRequested) as blocker:
        sub.actions()[1].trigger()
    assert blocker.args == ["db", 1]
    sim = Simulation(ctl.document)
    sim.fail(*blocker.args)
    assert sim.node_states()["db"].failed_replicas == (1,)
    recover = next(a.menu() for a in menu.actions() if a.text() == "Recover one shard")
    with qtbot.waitSignal(view.shardRecoverRequested) as blocker:
        recover.actions()[1].trigger()
    assert blocker.args == ["db", 1]
    ctl.set_params(["db"], {"shards": None})
    assert item.shards == 1
