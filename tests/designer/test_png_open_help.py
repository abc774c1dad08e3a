"""Pictures that carry their topology, as a user meets them (export, Open, drop, recent
files, Save never over the PNG), and the Help menu: tutorial, shortcuts read from the
actions, a glossary of every kind, parameter and metric, F1 in the inspector and a
right-click on a plot."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QContextMenuEvent, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from designer import glossary
from simulation.cli import csv_text, run_simulation
from simulation.fileformat import dumps, load
from simulation.goals import METRICS
from simulation.kinds import KINDS, PATTERN_VARIANTS, SIMULATION_PARAMS
from simulation.ledger import COUNTERS
from simulation.png_embed import topology_text
from simulation.state import FAILURE_CAUSES
from tests.designer.main_window_support import LESSONS


def enrich(window) -> str:
    """Give the lesson non-ASCII notes and title (its events and goals stay); return its text."""
    doc = window.controller.document
    doc.meta["title"] = "Équilibrage — 負荷分散"
    doc.meta["notes"] = "# Größe\n\nFail **Web 2** at 30 s 🚀"
    return dumps(doc)


def export_via_menu(window, dialogs, action: str, path: Path) -> bytes:
    dialogs.save_path = str(path)
    window.actions_[action].trigger()
    assert "Exported" in window.statusBar().currentMessage()
    return path.read_bytes()


@pytest.mark.parametrize("action", ["export_png", "export_plots", "export_snapshot"])
def test_every_exported_png_carries_the_lesson(window, dialogs, tmp_path, action):
    assert window.open_file(LESSONS / "challenge_single_failure.scalelab")
    text = enrich(window)
    data = export_via_menu(window, dialogs, action, tmp_path / "slide.png")
    assert not QImage.fromData(data).isNull()           # still a picture any viewer shows
    assert topology_text(data) == text
    assert QImage.fromData(data).text("scalelab") == text   # Qt reads the chunk too


def test_open_a_picture_restores_the_topology_and_never_saves_over_it(window, dialogs, tmp_path, qtbot):
    assert window.open_file(LESSONS / "lb_demo.scalelab")
    text = enrich(window)
    png = tmp_path / "slide.png"
    picture = export_via_menu(window, dialogs, "export_snapshot", png)
    window.actions_["new"].trigger()
    assert window.controller.document.node_ids() == []
    dialogs.open_path = str(png)
    window.actions_["open"].trigger()                   # File → Open, the user picks the PNG
    assert dumps(window.controller.document) == text    # notes, title, events: everything
    assert window.files.path is None and window.windowTitle() == "slide.scalelab[*]"
    assert "slide.png" in window.statusBar().currentMessage()
    assert str(png.resolve()) in window.files.recent_files()
    dialogs.save_path = str(tmp_path / "slide")         # Save asks for a name: the user types "slide"
    assert window.file_save()
    assert png.read_bytes() == picture                  # the picture is untouched
    assert dumps(load(tmp_path / "slide.scalelab")) == text
    assert window.files.path == (tmp_path / "slide.scalelab").resolve()


def test_open_recent_and_the_command_line_open_a_picture(qtbot, window, dialogs, tmp_path):
    assert window.open_file(LESSONS / "sticky_sessions.scalelab")
    text = dumps(window.controller.document)
    png = tmp_path / "sticky.png"
    export_via_menu(window, dialogs, "export_png", png)
    assert window.open_file(png)
    window.actions_["new"].trigger()
    window.fill_recent_menu()
    entry = next(a for a in window.recent_menu.actions() if a.text() == str(png.resolve()))
    entry.trigger()
    assert dumps(window.controller.document) == text
    from designer.app import start                      # `python main.py sticky.png`
    other = start(str(png))
    qtbot.addWidget(other)
    assert dumps(other.controller.document) == text and other.files.path is None
    other.files.remove_recovery()


def test_dropping_a_picture_on_the_window_opens_its_lesson(qtbot, window, dialogs, tmp_path):
    assert window.open_file(LESSONS / "lb_demo.scalelab")
    text = dumps(window.controller.document)
    png = tmp_path / "demo.png"
    export_via_menu(window, dialogs, "export_png", png)
    assert window.open_file(LESSONS / "starter.scalelab")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    enter = QDragEnterEvent(QPoint(60, 60), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(60, 60), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.windowTitle() == "demo.scalelab[*]", timeout=3000)
    assert dumps(window.controller.document) == text


def test_a_picture_without_a_lesson_is_refused_with_one_line(window, dialogs, tmp_path):
    png = tmp_path / "photo.png"
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.red)
    assert image.save(str(png))
    before = dumps(window.controller.document)
    assert not window.open_file(png)
    kind, _, text = dialogs.shown[-1]
    assert kind == "critical" and text.endswith(f"{png}: this picture has no ScaleLab topology in it")
    assert dumps(window.controller.document) == before


def test_headless_export_carries_the_lesson(tmp_path):
    from designer.entry import main
    out = tmp_path / "demo.png"
    assert main(["export", str(LESSONS / "lb_demo.scalelab"), "--png", str(out), "--run", "5"]) == 0
    assert dumps(load(out)) == dumps(load(LESSONS / "lb_demo.scalelab"))


# ----- Help ---------------------------------------------------------------------------------------
def test_help_menu_has_tutorial_shortcuts_glossary_and_about(window):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    texts = [a.text() for a in help_menu.actions() if not a.isSeparator()]
    assert texts == ["&Tutorial", "&Keyboard shortcuts", "&Glossary", "&Explain this", "&About ScaleLab"]
    window.actions_["tutorial"].trigger()
    dialog = window.help_dialog
    assert dialog.isVisible() and dialog.tabs.currentIndex() == 0
    text = dialog.tutorial.toPlainText()
    for step in ("Build", "Run", "Fail", "Read the plots"):
        assert step in text


def test_shortcuts_are_read_from_the_actions(window):
    window.actions_["shortcuts"].trigger()
    table = window.help_dialog.shortcuts
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Run"] == "Space" and rows["Step"] == "Ctrl+T" and rows["Undo"] == "Ctrl+Z"
    assert rows["Explain this"] == "F1"
    window.actions_["step"].setShortcut("Ctrl+Shift+T")          # never stale: a changed key shows
    window.actions_["shortcuts"].trigger()
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Step"] == "Ctrl+Shift+T"


def test_glossary_lists_every_kind_parameter_and_setting_and_filters(window, qtbot):
    window.actions_["glossary"].trigger()
    dialog = window.help_dialog
    listed = dialog.visible_keys()
    expected = ([f"kind:{k}" for k in KINDS] + [f"param:{k}.{p.name}" for k in KINDS for p in KINDS[k].params]
                + [f"pattern:{v}.{p.name}" for v, ps in PATTERN_VARIANTS.items() for p in ps]
                + [f"setting:{p.name}" for p in SIMULATION_PARAMS] + [f"cause:{c}" for c in FAILURE_CAUSES])
    assert set(expected) <= set(listed)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert any(t.startswith("Capacity (server)") for t in texts)
    dialog.show_entry("param:server.capacity_rps")
    assert KINDS["server"].param("capacity_rps").help in dialog.text.toPlainText()
    assert "req/s" in dialog.text.toPlainText()
    dialog.show_entry("kind:server")
    assert 'href="glossary:param:server.workers"' in dialog.entries["kind:server"].html
    dialog.text.anchorClicked.emit(QUrl("glossary:param:server.workers"))   # a link in the entry
    assert dialog.current_key() == "param:server.workers"
    assert len(dialog.visible_keys()) == len(listed) and not dialog.entries["kind:server"].matches("href")
    qtbot.keyClicks(dialog.filter, "stale")                     # the user types in the filter box
    shown = dialog.visible_keys()
    assert "metric:stale_reads" in shown and "param:cache.invalidation" in shown
    assert "kind:client" not in shown and len(shown) < len(listed) / 4
    assert all(dialog.entries[k].matches("stale") for k in shown)
    dialog.filter.clear()
    qtbot.keyClicks(dialog.filter, "zzqx")
    assert dialog.visible_keys() == [] and "Nothing in the glossary matches" in dialog.text.toPlainText()


def test_glossary_explains_every_metric_the_engine_produces():
    names = set(METRICS) | set(COUNTERS) | {"failed_by_cause", "in_flight", "arrived"}
    for lesson in ("lb_demo", "partitioning", "browser_caching", "multi_primary"):
        path = LESSONS / f"{lesson}.scalelab"
        if path.exists():
            sim = run_simulation(load(path), 2.0, 1)
            names |= set(sim.totals())
            names |= {c.split(":")[0] for c in csv_text(sim).splitlines()[0].split(",")}
    names -= {"file", "seed", "duration_s"}
    keys = {e.key for e in glossary.entries()}
    missing = [n for n in names if f"metric:{n}" not in keys and not (n == "failed" and "metric:failed" in keys)]
    assert missing == []


def test_f1_in_an_inspector_field_opens_the_glossary_there(window, qtbot):
    window.canvas.select_ids(["web1"] if "web1" in window.controller.document else
                             [n for n in window.controller.document.node_ids()
                              if window.controller.document.kind(n) == "server"][:1])
    row = window.inspector.rows["capacity_rps"]
    spin = row.editor.widget
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    qtbot.mouseClick(spin.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: spin.hasFocus(), timeout=2000)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_F1)
    dialog = window.help_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.current_key() == "param:server.capacity_rps"
    assert "F1" in spin.toolTip()


def test_f1_in_a_pattern_field_and_on_the_settings(window, qtbot):
    from designer.help_dialog import inspector_key
    doc = window.controller.document
    client = next(n for n in doc.node_ids() if doc.kind(n) == "client")
    window.canvas.select_ids([client])
    window.inspector.pattern._variant_chosen(window.inspector.pattern.variant.findData("spike"))
    window.inspector.set_selection([client])
    field = window.inspector.pattern.rows["factor"].editor.widget
    assert inspector_key(window, field) == "pattern:spike.factor"
    assert inspector_key(window, window.inspector.pattern.variant) == "pattern:spike"
    assert inspector_key(window, window.inspector.rows["users"].editor.widget) == "param:client.users"
    window.canvas.select_ids([])
    window.inspector.set_selection([])
    assert inspector_key(window, window.inspector.rows["tick_ms"].editor.widget) == "setting:tick_ms"


def test_right_click_on_a_plot_offers_its_glossary_entry(window, qtbot):
    plots = window.plots
    qtbot.waitUntil(lambda: plots.isVisible(), timeout=3000)
    plot = plots.plots["latency"]
    view = plot.scene().views()[0]
    centre = view.mapFromScene(plot.sceneBoundingRect().center())
    viewport = view.viewport()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre, viewport.mapToGlobal(centre))
    QApplication.sendEvent(viewport, event)
    menu = window.plot_menu.menu
    assert menu is not None and menu.isVisible()
    action = menu.actions()[0]
    assert "Latency" in action.text()
    action.trigger()
    menu.close()
    assert window.help_dialog.current_key() == "plot:latency"
    assert "p95" in window.help_dialog.text.toPlainText()
