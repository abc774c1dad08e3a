"""The designer shows what a run costs and what the users' page views were, not only the CSV:
a Cost plot, a totals line above the plots, the page-view mean on the latency plot, and a
machine type that sets (and greys) capacity, workers and price in the inspector."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.designer.main_window_support import open_main_window


@pytest.fixture
def caching_window(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch, lesson="browser_caching.scalelab", size=(1300, 850))
    yield win
    win.run.reset()
    win.files.remove_recovery()


def _shown(window) -> str:
    window.plots.refresh(window.run.sim.metrics)
    return window.plots.totals_label.text()


def test_cost_and_page_views_are_shown_after_a_run(caching_window):
    window = caching_window
    window.run.step(20.0)
    sim = window.run.sim
    totals = sim.totals()
    text = _shown(window)
    # "$0.0021 · 0.006 server-hours  |  6,123 page views · 40% from the browser cache · page view mean 20.1 ms"
    money = re.search(r"\$([\d.,]+) · ([\d.,]+) server-hours", text)
    assert money, text
    price = sim.document.params("app")["price_per_hour"]
    assert float(money.group(1)) == pytest.approx(price * 20 / 3600, abs=1e-4)    # one m5.2xlarge for 20 s
    assert float(money.group(1)) == pytest.approx(totals["cost_usd"], abs=1e-4)
    views = re.search(r"([\d,]+) page views · (\d+)% from the browser cache · page view mean ([\d.]+) ms", text)
    assert views, text
    assert int(views.group(1).replace(",", "")) == totals["page_views"]
    assert int(views.group(2)) == round(100 * totals["browser_hit_share"])
    assert float(views.group(3)) == pytest.approx(totals["page_view_mean_ms"], rel=0.01)
    # the Cost plot ends at the money spent; the dashed page-view mean sits under the request mean
    xs, spent = window.plots.curves["cost"].getData()
    assert len(xs) == 20 and spent[-1] == pytest.approx(totals["cost_usd"])
    assert np.all(np.diff(spent) > 0)
    _, page_view = window.plots.curves["page_view"].getData()
    mean = np.asarray(sim.metrics.mean_ms, dtype=float)
    ok = ~np.isnan(page_view)
    assert ok.sum() >= 15 and np.all(page_view[ok] < mean[ok])
    window.plots.show_readout(10.0, "cost")
    assert "spent $" in window.plots.readout.text() and "$/h now" in window.plots.readout.text()
    window.plots.show_readout(10.0, "latency")
    assert "page view mean" in window.plots.readout.text()
    window.plots.clear()
    assert window.plots.totals_label.text() == ""


def test_machine_type_greys_what_it_sets_and_the_cost_follows(qtbot, caching_window):
    window = caching_window
    window.canvas.select_ids(["app"])
    rows = window.inspector.rows
    assert rows["machine"].editor.widget.isEnabled()
    assert not rows["capacity_rps"].editor.widget.isEnabled()      # set by m5.2xlarge
    assert not rows["price_per_hour"].editor.widget.isEnabled()
    window.controller.set_params(["app"], {"machine": "m5.24xlarge"})
    assert window.controller.document.params("app")["capacity_rps"] == 1500.0
    window.run.step(5.0)
    assert window.run.sim.totals()["cost_usd"] == pytest.approx(4.608 * 5 / 3600)
    window.run.reset()
    window.controller.set_params(["app"], {"machine": "custom"})
    qtbot.waitUntil(lambda: rows["capacity_rps"].editor.widget.isEnabled(), timeout=2000)
    assert window.controller.document.params("app")["price_per_hour"] == 4.608     # kept from the type
    window.controller.undo_stack.undo()      # the burst of type choices is one step: back to the lesson's type
    assert window.controller.document.node("app").params == {"machine": "m5.2xlarge", "cache_max_age_s": 30,
                                                            "etag": False, "cache_control": "public",
                                                            "not_modified_cost": 0.2, "timeout_s": 10}
    assert not rows["capacity_rps"].editor.widget.isEnabled()
