"""Fixtures shared by the designer tests: an inspector on the starter lesson, and a main
window with its dialogs answered by the test."""
from __future__ import annotations

import pytest

from designer.controller import DocumentController
from designer.inspector import Inspector
from simulation.fileformat import load
from tests.designer.main_window_support import LESSONS, Dialogs, open_main_window


@pytest.fixture
def setup(qtbot):
    """(controller, inspector) on the starter lesson, shown."""
    controller = DocumentController(load(LESSONS / "starter.scalelab"))
    inspector = Inspector(controller)
    qtbot.addWidget(inspector)
    inspector.resize(320, 700)
    inspector.show()
    return controller, inspector


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, dialogs):
    win = open_main_window(qtbot, tmp_path, monkeypatch)
    yield win
    win.files.remove_recovery()
