"""The menu entries of Compare (File → Compare) and Load test (Tools → Load test…).

Kept apart from ``compare_view`` and ``load_test_dialog`` so that the window starts without
importing pyqtgraph and numpy: the view and the dialog are built on first use.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

ENTRIES = (   # key, text, status tip, shortcut
    ("compare_with", "Compare &with…", "Open a second lesson as B, to run it beside the canvas (A) on the same seed",
     ""),
    ("compare_copy", "Keep a &copy as B", "Freeze the canvas as it is now as B; change the canvas, then Run comparison",
     ""),
    ("compare_run", "&Run comparison", "Run A (the canvas) and B on the same seed and duration; B's curves are dashed",
     "Ctrl+Shift+R"),
    ("compare_stop", "&Stop comparing", "Forget B and remove its dashed curves and totals", ""),
)


def menu_named(window: QMainWindow, title: str, before: str = "") -> QMenu:
    """The menu bar's menu with this title (``&File``), created (before ``before``) if missing."""
    bar = window.menuBar()
    plain = title.replace("&", "")
    for action in bar.actions():
        if action.menu() is not None and action.text().replace("&", "") == plain:
            return action.menu()
    menu = QMenu(title, window)
    anchor = next((a for a in bar.actions() if before and a.text().replace("&", "") == before.replace("&", "")), None)
    if anchor is not None:
        bar.insertMenu(anchor, menu)
    else:
        bar.addMenu(menu)
    return menu


def compare_view(window: Any) -> Any:
    """The window's CompareView, built on first use."""
    view = getattr(window, "compare", None)
    if view is None:
        from .compare_view import CompareView
        view = window.compare = CompareView(window, {k: window.actions_[k] for k, *_ in ENTRIES})
    return view


def open_load_test(window: Any) -> Any:
    from .busy import prepare_workers
    from .load_test_dialog import LoadTestDialog
    prepare_workers()                      # the workers' server starts while the user sets up the rates
    dialog = LoadTestDialog(window.controller.document, window, window.files.name)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.load_test = dialog
    dialog.show()
    return dialog


def install(window: Any) -> None:
    """Add File → Compare and Tools → Load test… to the main window (``window.actions_``)."""
    window.compare = None
    actions: dict[str, QAction] = {}
    for key, text, tip, shortcut in ENTRIES:
        action = actions[key] = QAction(text, window)
        action.setStatusTip(tip)
        action.setToolTip(tip)
        if shortcut:
            action.setShortcut(shortcut)
        window.addAction(action)
    slots = {"compare_with": lambda: compare_view(window).compare_with(),
             "compare_copy": lambda: compare_view(window).keep_copy(),
             "compare_run": lambda: compare_view(window).run_comparison(),
             "compare_stop": lambda: compare_view(window).stop()}
    for key, slot in slots.items():
        actions[key].triggered.connect(lambda checked=False, slot=slot: slot())
    for key in ("compare_run", "compare_stop"):
        actions[key].setEnabled(False)                 # until there is a B
    file_menu = menu_named(window, "&File")
    sub = QMenu("Co&mpare", file_menu)
    sub.setObjectName("compareMenu")
    sub.addActions([actions["compare_with"], actions["compare_copy"]])
    sub.addSeparator()
    sub.addActions([actions["compare_run"], actions["compare_stop"]])
    anchor = next((a for a in file_menu.actions() if a.isSeparator()), None)
    if anchor is not None:
        file_menu.insertMenu(anchor, sub)
    else:
        file_menu.addMenu(sub)

    load = actions["load_test"] = QAction("&Load test…", window)
    load.setStatusTip("Run the lesson at a range of request rates and find where latency explodes (the knee)")
    load.triggered.connect(lambda checked=False: open_load_test(window))
    window.addAction(load)
    menu_named(window, "&Tools", before="&Help").addAction(load)
    window.actions_.update(actions)
