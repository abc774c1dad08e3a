"""The plots read the engine's metric arrays; curves, causes, highlight, crosshair, reset."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from designer.plots import PlotsPanel
from simulation.state import FAILURE_CAUSES


def fake_metrics(n: int, capacity: int = 100) -> SimpleNamespace:
    t = np.arange(1, capacity + 1, dtype=float)
    zeros = np.zeros(capacity)
    causes = {c: zeros.copy() for c in FAILURE_CAUSES}
    causes["timeout"][5:n] = 7.0
    return SimpleNamespace(
        n=n, time_s=t, offered_rps=np.full(capacity, 200.0), served_rps=np.full(capacity, 190.0),
        failed_rps=np.full(capacity, 7.0), p50_ms=np.full(capacity, np.nan), p95_ms=np.full(capacity, 80.0),
        p99_ms=np.full(capacity, 120.0), mean_ms=np.full(capacity, 40.0), active_servers=np.full(capacity, 3.0),
        sessions_lost=zeros, failed_by_cause=causes,
        util={"web1": np.full(capacity, 0.5), "web2": np.full(capacity, 0.9), "users": zeros},
    )


@pytest.fixture
def plots(qtbot):
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 400)
    panel.show()
    panel.set_node_labels({"web1": "Web 1", "web2": "Web 2"})
    return panel


def test_refresh_shows_only_the_valid_rows(plots):
    plots.refresh(fake_metrics(30))
    xs, ys = plots.curves["served"].getData()
    assert len(xs) == 30 and ys[0] == 190.0
    assert set(plots.util_curves) == {"web1", "web2"}          # clients have no utilization curve
    assert plots.util_curves["web2"].getData()[1][0] == pytest.approx(90.0)
    assert plots._cause_in_legend == {"timeout"}              # only causes that happened are named
    for curve in plots.curves.values():
        assert curve.opts["clipToView"] and curve.opts["downsampleMethod"] == "peak"


def test_highlight_and_crosshair(plots):
    plots.refresh(fake_metrics(30))
    plots.highlight(["web2"])
    assert plots.highlighted_width("web2") > plots.highlighted_width("web1")
    plots.show_readout(10.2, "throughput")
    assert "offered 200" in plots.readout.text() and "failed 7" in plots.readout.text()
    plots.show_readout(10.2, "latency")
    assert "p50 –" in plots.readout.text() and "p95 80" in plots.readout.text()
    plots.show_readout(10.2, "utilization")
    assert "Web 2 90%" in plots.readout.text()


def test_all_plots_share_one_time_range(plots):
    plots.refresh(fake_metrics(60))
    plots.plots["latency"].setXRange(10, 20, padding=0)
    for plot in plots.plots.values():
        low, high = plot.viewRange()[0]
        assert low == pytest.approx(10) and high == pytest.approx(20)


def test_clear_empties_every_curve(plots):
    plots.refresh(fake_metrics(30))
    plots.clear()
    assert not plots.has_data()
    assert all(len(c.getData()[0] or []) == 0 for c in plots.curves.values())
    assert not plots._cause_in_legend


def test_readout_beyond_the_data(plots):
    plots.refresh(fake_metrics(30))
    plots.show_readout(80.0, "throughput")
    assert "no data" in plots.readout.text()
