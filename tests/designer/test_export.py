"""Export: PNG at 2× (white or transparent), SVG, plots, lesson snapshot, headless."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from designer import export
from designer.main_window import MainWindow
from tests.designer.main_window_support import LESSONS, Dialogs, isolate_profile, wait_settled

ROOT = Path(__file__).resolve().parents[2]


def distinct_colours(image: QImage, step: int = 7) -> int:
    seen = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            seen.add(image.pixel(x, y))
    return len(seen)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    isolate_profile(tmp_path, monkeypatch)
    Dialogs(monkeypatch)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    win.open_file(LESSONS / "starter.scalelab")
    qtbot.waitExposed(win)
    return win


def test_canvas_png_is_twice_the_scene_and_not_blank(window, tmp_path):
    out = tmp_path / "canvas.png"
    export.export_canvas_png(window.canvas, out)
    image = QImage(str(out))
    expected = window.canvas.render_to_image(scale=2.0, transparent=False).size()
    assert image.size() == expected
    assert image.width() >= 2 * 700                # the starter spans ~760 scene units
    assert distinct_colours(image) > 20
    assert image.pixelColor(1, 1).alpha() == 255   # white background
    transparent = tmp_path / "canvas-t.png"
    export.export_canvas_png(window.canvas, transparent, transparent=True)
    assert QImage(str(transparent)).pixelColor(1, 1).alpha() == 0


def test_svg_plots_and_snapshot(qtbot, window, tmp_path):
    window.run.step(5.0)
    window.plots.refresh(window.run.sim.metrics)
    svg = tmp_path / "canvas.svg"
    export.export_canvas_svg(window.canvas, svg)
    assert b"<svg" in svg.read_bytes()
    wait_settled(qtbot, window)          # the docks take their sizes after the first frames (slower under load)
    width = window.plots.width()
    plots = tmp_path / "plots.png"
    export.export_plots_png(window.plots, plots)
    image = QImage(str(plots))
    assert image.width() == 2 * width and distinct_colours(image) > 10
    snap = tmp_path / "snap.png"
    export.export_snapshot_png("Starter", window.canvas, window.plots, snap)
    image = QImage(str(snap))
    assert image.width() == export.SNAPSHOT_WIDTH and image.height() > 1000
    assert distinct_colours(image) > 20


def test_export_menu_writes_where_the_user_chose(window, tmp_path, monkeypatch):
    dialogs = Dialogs(monkeypatch)
    dialogs.save_path = str(tmp_path / "slide")
    window.actions_["export_snapshot"].trigger()
    assert (tmp_path / "slide.png").exists()
    assert "Exported" in window.statusBar().currentMessage()


def test_export_leaves_no_partial_file_on_failure(window, tmp_path):
    with pytest.raises(OSError):
        export.export_canvas_png(window.canvas, tmp_path / "missing-folder" / "x.png")
    assert not list(tmp_path.glob("**/*.tmp"))


def test_export_headless_without_a_display(tmp_path):
    """What ``scalelab export FILE --png OUT --svg OUT --run 20`` does, in a fresh process."""
    png, svg, plain = tmp_path / "run.png", tmp_path / "run.svg", tmp_path / "plain.png"
    code = (
        "import sys; from simulation.fileformat import load; from designer.export import export_headless\n"
        f"doc = load({str(LESSONS / 'lb_demo.scalelab')!r})\n"
        f"export_headless(doc, {str(png)!r}, {str(svg)!r}, run_seconds=20)\n"
        f"export_headless(load({str(LESSONS / 'starter.scalelab')!r}), {str(plain)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    snapshot = QImage(str(png))
    assert snapshot.width() == export.SNAPSHOT_WIDTH and distinct_colours(snapshot) > 20
    assert b"<svg" in svg.read_bytes()
    image = QImage(str(plain))
    assert image.width() > 1000 and distinct_colours(image) > 20
