"""A multi-primary database on the canvas: its badge, and a right-click that fails one primary."""
from __future__ import annotations

from tests.designer.main_window_support import open_main_window


def test_the_canvas_shows_primaries_and_a_click_fails_one_of_them(qtbot, tmp_path, monkeypatch):
    win = open_main_window(qtbot, tmp_path, monkeypatch, lesson="database_scaling.scalelab")
    try:
        item = win.canvas.canvas_scene.nodes["db"]
        assert item.primaries == 1
        menu_texts = [a.text() for a in win.canvas.node_menu("db").actions()]
        assert not any("primary" in t for t in menu_texts)      # one primary: fail the whole node as before
        win.controller.set_params(["db"], {"primaries": 3})
        assert item.primaries == 3 and item.replicas == 5        # 3 primaries + 2 read replicas
        menu = win.canvas.node_menu("db")
        texts = [a.text() for a in menu.actions()]
        assert "Fail primary 2 of Database" in texts and "Recover primary 3 of Database" in texts
        next(a for a in menu.actions() if a.text() == "Fail primary 2 of Database").trigger()
        state = win.run.sim.node_states()["db"]
        assert state.failed_replicas == (1,) and state.replicas_up == 4
        win.controller.undo_stack.undo()
        assert item.primaries == 1
    finally:
        win.run.reset()
        win.files.remove_recovery()
