"""The designer side of safe files: Open shows the loader's located message (never a
"TypeError: ..." dialog), Save writes through a symlink, exported pictures stay within a
pixel budget and are never empty, and the launcher ignores a relative XDG_DATA_HOME."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from designer import export
from designer.desktop_install import data_home
from simulation.fileformat import load, loads
from tests.designer.main_window_support import LESSONS, Dialogs, open_main_window


def starter() -> dict:
    return json.loads((LESSONS / "starter.scalelab").read_text(encoding="utf-8"))


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["nodes"][0]["params"].update(pattern={"type": ["ramp"]}), 'node "users", pattern.type: must be one of'),
    (lambda d: d["nodes"][0]["params"].update(users=10 ** 400), 'node "users", users: must be a number of reasonable size, '
                                                                "got a number with 401 digits"),
    (lambda d: d["nodes"][2].update(params="fast"), 'node "web1", params: must be an object, got a string'),
])
def test_open_shows_the_located_message(change, expected: str, window, dialogs, tmp_path: Path) -> None:
    data = starter()
    change(data)
    path = tmp_path / "broken.scalelab"
    path.write_text(json.dumps(data))
    assert not window.open_file(path)
    kind, title, text = dialogs.shown[-1]
    assert kind == "critical" and title == "Cannot open file"
    assert expected in text and "Error" not in text
    assert "web1" in window.controller.document  # the starter is still open


def test_open_refuses_a_fifo_at_once(window, dialogs, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.scalelab"
    os.mkfifo(fifo)
    assert not window.open_file(fifo)  # would wait for a writer forever if it opened the FIFO for reading
    assert "is a pipe (FIFO), not a lesson file" in dialogs.shown[-1][2]


def test_save_writes_through_a_symlinked_lesson(window, dialogs, tmp_path: Path) -> None:
    real = tmp_path / "lessons" / "mine.scalelab"
    real.parent.mkdir()
    real.write_bytes((LESSONS / "starter.scalelab").read_bytes())
    link = tmp_path / "today.scalelab"
    link.symlink_to(real)
    window.controller.set_params(["web1"], {"capacity_rps": 175.0})
    dialogs.save_path = str(link)
    assert window.file_save()
    assert link.is_symlink()
    assert load(real).params("web1")["capacity_rps"] == 175.0
    assert sorted(p.name for p in real.parent.iterdir()) == ["mine.scalelab"]


# ----- exported pictures -------------------------------------------------------------------------
def far_apart(distance: float) -> dict:
    return {"format": "scalelab", "version": 1, "meta": {"title": "far"},
            "nodes": [{"id": "u", "kind": "client", "x": 0, "y": 0},
                      {"id": "s", "kind": "server", "x": distance, "y": distance / 3}],
            "edges": [{"source": "u", "target": "s"}]}


def distinct_colours(image: QImage, step: int = 3) -> int:
    return len({image.pixel(x, y) for y in range(0, image.height(), step) for x in range(0, image.width(), step)})


def drawn_pixels(image: QImage) -> int:
    """Pixels that are not white: what was drawn on the background."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(rgb.constBits(), dtype=np.uint32, count=rgb.height() * rgb.bytesPerLine() // 4)
    a = a.reshape(rgb.height(), rgb.bytesPerLine() // 4)[:, :rgb.width()]
    return int(((a & 0xFFFFFF) != 0xFFFFFF).sum())


@pytest.mark.parametrize("distance", [12_000, 20_000, 10_000_000])
def test_far_apart_nodes_export_within_the_pixel_budget_and_not_empty(qapp, distance: float) -> None:
    png, svg = export.render_headless(loads(json.dumps(far_apart(distance))), svg=True)
    image = QImage()
    assert image.loadFromData(png, "PNG") and not image.isNull()
    assert image.width() <= export.MAX_SIDE and image.height() <= export.MAX_SIDE
    assert image.width() * image.height() <= export.MAX_PIXELS
    assert image.width() >= export.MAX_SIDE - 1  # as large as the budget allows, not shrunk further
    assert drawn_pixels(image) > 5000  # at least the edge across the picture; at 12,000 apart the nodes too
    assert b"<svg" in svg


def test_a_normal_canvas_keeps_its_2x_scale(qapp) -> None:
    png, _ = export.render_headless(load(LESSONS / "starter.scalelab"))
    image = QImage()
    assert image.loadFromData(png, "PNG")
    assert 1000 < image.width() < export.MAX_SIDE and distinct_colours(image) > 20


@pytest.mark.parametrize("w, h, scale, expected", [
    (500, 300, 2.0, 2.0),                            # small: unchanged
    (20_000, 100, 2.0, export.MAX_SIDE / 20_000),    # wide: the side limit
    (100, 30_000, 2.0, export.MAX_SIDE / 30_000),    # tall: the side limit
    (7000, 7000, 2.0, (export.MAX_PIXELS / 49e6) ** 0.5),  # large both ways: the pixel budget
])
def test_fitting_scale(w: float, h: float, scale: float, expected: float) -> None:
    got = export.fitting_scale(w, h, scale)
    assert got == pytest.approx(expected)
    assert w * got <= export.MAX_SIDE + 1e-6 and h * got <= export.MAX_SIDE + 1e-6
    assert w * got * h * got <= export.MAX_PIXELS * (1 + 1e-9)


# ----- the launcher's folder ---------------------------------------------------------------------
def test_a_relative_xdg_data_home_is_ignored(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    assert data_home() == tmp_path / ".local" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", "")
    assert data_home() == tmp_path / ".local" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert data_home() == tmp_path / "data"
