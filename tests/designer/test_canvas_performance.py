"""A big canvas is built completely (the frame time itself is measured by
benchmarks/canvas_bench.py, not here: timing does not belong in unit tests)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from canvas_bench import big_document  # noqa: E402

from designer.canvas import CanvasView  # noqa: E402
from designer.controller import DocumentController  # noqa: E402


def test_a_thousand_nodes_and_two_thousand_edges_are_all_on_the_canvas(qtbot):
    doc = big_document()
    assert (len(doc.node_ids()), len(doc.edges())) == (1000, 2000)
    view = CanvasView(DocumentController(doc))
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)
    view.fit_to_view()
    scene = view.canvas_scene
    assert len(scene.nodes) == 1000 and len(scene.edges) == 2000
    # fitted: zoomed far out, centred on the graph
    assert view.transform().m11() < 0.5
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    centre = scene.itemsBoundingRect().center()
    assert abs(visible.center().x() - centre.x()) < 100 and abs(visible.center().y() - centre.y()) < 100
