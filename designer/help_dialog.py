"""Help: a short tutorial, the keyboard shortcuts and the glossary, in one window.

The shortcuts are read from the window's actual QActions each time the tab is shown,
so the list cannot go stale; the glossary comes from ``designer.glossary``. F1 opens
the glossary at what the keyboard focus is in (an inspector field: that parameter)
or the mouse is over (a plot: that plot); a right-click on a plot offers its entry.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QUrl
from PySide6.QtGui import QAction, QContextMenuEvent, QCursor, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QHeaderView, QLineEdit, QListWidget,
                               QListWidgetItem, QMenu, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
                               QTextBrowser, QVBoxLayout, QWidget)

from .glossary import PLOT_TEXT, Entry, entries, param_key

TUTORIAL = """\
# ScaleLab in five minutes

## 1. Build
Drag a **Client**, a **Load balancer** and two **Servers** from the *Components* panel onto
the canvas. Drag from a node's round handle to another node to connect them: client → load
balancer → each server. A connection that makes no sense is refused with the reason.
Click a node to edit it in the *Inspector*: give one server a *Capacity* of 50 req/s.
Press **F1** in any field to read what it means in the glossary.

## 2. Run
Press **Run** (Space). Requests flow along the edges; nodes turn from green to red as
they get busy. **Step** (Ctrl+T) advances one simulated second; **Reset** (Ctrl+R) goes
back to t = 0. The speed box sets simulated seconds per real second.

## 3. Fail
Right-click a server and choose **Fail**. Until the load balancer's health checks notice
(*Health-check interval* × *Unhealthy after*), requests sent to it fail as *backend down*;
then the others take all the load. **Recover** it and watch it come back. Events can also
be scheduled in the file, so a lesson tells its story by itself.

## 4. Read the plots
- **Throughput**: offered, served and failed requests per second. Served below offered:
  requests are waiting or failing.
- **Latency**: p50, p95 and p99 in ms. A p95 that shoots up while throughput stays flat is
  the *knee*: a node is saturated.
- **Failures by cause**: which part broke and when (queue full, timeout, backend down, …).
- **Utilization**: busy share of each node; the first to reach 100 % is the bottleneck.
- **Active servers**: replicas up (autoscaling, failures).

Hover over a plot to read exact values; right-click it for its glossary entry. The status
bar sums up the run: share served, failures, p95 and counters such as stale reads.

## 5. Share
*File → Export* writes pictures for slides. Every PNG carries its topology: open or drop
the picture on ScaleLab (or run `scalelab simulate picture.png`) to get the lesson back.
"""


def shortcut_rows(window: QWidget) -> list[tuple[str, str, str]]:
    """``(action, keys, what it does)`` for every action of ``window`` (and its children)
    that has a shortcut, sorted by action name; read from the live QActions."""
    seen: set[int] = set()
    rows = []
    for action in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        if not keys or id(action) in seen:
            continue
        seen.add(id(action))
        name = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")
        rows.append((name, ", ".join(keys), action.statusTip() or action.toolTip().split(" (")[0]))
    return sorted(set(rows), key=lambda r: r[0].lower())


class HelpDialog(QDialog):
    """Tutorial, Shortcuts and Glossary tabs (one per window, not modal)."""

    TABS = ("tutorial", "shortcuts", "glossary")

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setObjectName("helpDialog")
        self.setWindowTitle("ScaleLab Help")
        self.resize(820, 600)
        self._window = window
        self.tabs = QTabWidget(self)
        QVBoxLayout(self).addWidget(self.tabs)

        self.tutorial = QTextBrowser(self)
        self.tutorial.setObjectName("helpTutorial")
        self.tutorial.setMarkdown(TUTORIAL)
        self.tabs.addTab(self.tutorial, "Tutorial")

        self.shortcuts = QTableWidget(0, 3, self)
        self.shortcuts.setObjectName("helpShortcuts")
        self.shortcuts.setHorizontalHeaderLabels(["Command", "Keys", "What it does"])
        self.shortcuts.verticalHeader().hide()
        self.shortcuts.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.shortcuts.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.tabs.addTab(self.shortcuts, "Keyboard shortcuts")

        page = QWidget(self)
        lay = QVBoxLayout(page)
        self.filter = QLineEdit(page)
        self.filter.setObjectName("glossaryFilter")
        self.filter.setPlaceholderText("Filter: e.g. timeout, replica, p95, stale")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter)
        lay.addWidget(self.filter)
        split = QSplitter(page)
        self.list = QListWidget(split)
        self.list.setObjectName("glossaryList")
        self.text = QTextBrowser(split)
        self.text.setObjectName("glossaryText")
        self.text.setOpenLinks(False)
        self.text.anchorClicked.connect(self._link)
        split.setSizes([260, 540])
        lay.addWidget(split, 1)
        self.tabs.addTab(page, "Glossary")
        self.entries: dict[str, Entry] = {e.key: e for e in entries()}
        for entry in self.entries.values():
            item = QListWidgetItem(f"{entry.title}  ·  {entry.section}", self.list)
            item.setData(Qt.ItemDataRole.UserRole, entry.key)
        self.list.currentItemChanged.connect(self._show_current)
        self.list.setCurrentRow(0)
        self.tabs.currentChanged.connect(lambda i: self.TABS[i] == "shortcuts" and self.fill_shortcuts())
        self.fill_shortcuts()

    # ----- tabs --------------------------------------------------------------------------
    def show_tab(self, name: str) -> None:
        if name == "shortcuts":
            self.fill_shortcuts()
        self.tabs.setCurrentIndex(self.TABS.index(name))
        self.show()
        self.raise_()
        self.activateWindow()

    def fill_shortcuts(self) -> None:
        rows = shortcut_rows(self._window)
        self.shortcuts.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.shortcuts.setItem(r, c, QTableWidgetItem(text))
        self.shortcuts.resizeColumnsToContents()

    # ----- glossary ----------------------------------------------------------------------
    def visible_keys(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def current_key(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def _filter(self, text: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setHidden(not self.entries[item.data(Qt.ItemDataRole.UserRole)].matches(text))
        current = self.list.currentItem()
        if current is None or current.isHidden():
            shown = [self.list.item(i) for i in range(self.list.count()) if not self.list.item(i).isHidden()]
            self.list.setCurrentItem(shown[0] if shown else None)
            if not shown:
                self.text.setHtml(f"<p>Nothing in the glossary matches <b>{text}</b>.</p>")

    def _show_current(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is not None:
            self.text.setHtml(self.entries[item.data(Qt.ItemDataRole.UserRole)].html)

    def _link(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("glossary:"):
            self.show_entry(text[len("glossary:"):])

    def show_entry(self, key: str) -> bool:
        """Open the glossary at ``key`` (clearing a filter that hides it). False if there is no such entry."""
        self.show_tab("glossary")
        if key not in self.entries:
            return False
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == key:
                if item.isHidden():
                    self.filter.clear()
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
                return True
        return False


# ----- wiring into the main window -----------------------------------------------------------
def dialog(window: Any) -> HelpDialog:
    if getattr(window, "help_dialog", None) is None:
        window.help_dialog = HelpDialog(window)
    return window.help_dialog


def inspector_key(window: Any, widget: QWidget | None) -> str:
    """The glossary entry of the inspector field ``widget`` is in (``""`` if it is not in the inspector):
    the parameter, a pattern's field or shape, else the selected kind."""
    inspector = getattr(window, "inspector", None)
    chain = []
    while widget is not None and widget is not inspector:
        chain.append(widget)
        widget = widget.parentWidget()
    if widget is None:
        return ""
    doc = window.controller.document
    kinds = [doc.kind(i) for i in inspector.selection() if i in doc]
    pattern = getattr(inspector, "pattern", None)
    variant = pattern.variant.currentData() if pattern is not None else ""
    for w in chain:
        name = w.objectName()
        if name == "field_pattern_type" or (w is pattern and not name):
            return f"pattern:{variant}"
        if name.startswith("field_"):
            field = name[len("field_"):]
            if pattern is not None and pattern in chain:
                return f"pattern:{variant}.{field}"
            key = param_key(kinds, field)
            if key:
                return key
    return f"kind:{kinds[0]}" if kinds else ""


def plot_at(window: Any, global_pos: QPoint) -> str:
    """The name of the plot under ``global_pos`` (``""`` if none or the plots are not built)."""
    plots = getattr(window, "_plots", None)
    for name, plot in (getattr(plots, "plots", None) or {}).items():
        scene = plot.scene()
        for view in scene.views() if scene is not None else []:
            if not view.isVisible():
                continue
            pos = view.mapToScene(view.viewport().mapFromGlobal(global_pos))
            if plot.sceneBoundingRect().contains(pos):
                return name
    return ""


def context_key(window: Any) -> str:
    """What F1 explains: the focused inspector field, else the field or plot under the mouse."""
    key = (inspector_key(window, QApplication.focusWidget())
           or inspector_key(window, QApplication.widgetAt(QCursor.pos())))
    if not key:
        plot = plot_at(window, QCursor.pos())
        key = f"plot:{plot}" if plot else ""
    return key


def context_help(window: Any) -> None:
    key = context_key(window)
    if not (key and dialog(window).show_entry(key)):
        dialog(window).show_tab("glossary")


class PlotMenu(QObject):
    """Right-click on a plot: its glossary entry (an event filter on the plots dock: a
    plot's context-menu event that pyqtgraph leaves unhandled reaches it)."""

    def __init__(self, window: Any, target: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self.menu: QMenu | None = None
        target.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ContextMenu and isinstance(event, QContextMenuEvent):
            name = plot_at(self._window, event.globalPos())
            if name:
                self.popup(name, event.globalPos())
                return True
        return False

    def popup(self, name: str, global_pos: QPoint) -> QMenu:
        self.menu = QMenu(self._window)
        self.menu.setObjectName("plotHelpMenu")
        act = self.menu.addAction(f"What is the {PLOT_TEXT[name][0]} plot? (glossary)")
        act.triggered.connect(lambda checked=False: dialog(self._window).show_entry(f"plot:{name}"))
        self.menu.addAction("Reading the plots (tutorial)").triggered.connect(
            lambda checked=False: dialog(self._window).show_tab("tutorial"))
        self.menu.popup(global_pos)
        return self.menu


def install(window: Any, menu: QMenu) -> dict[str, QAction]:
    """Add Tutorial, Keyboard shortcuts, Glossary and F1 (context help) to ``menu`` and
    ``window.actions_``; a right-click on a plot offers its glossary entry."""
    from .actions import make_action
    window.help_dialog = None
    new = {
        "tutorial": make_action(window, "&Tutorial", lambda: dialog(window).show_tab("tutorial"),
                                tip="Build, run, fail, read the plots: ScaleLab in five minutes"),
        "shortcuts": make_action(window, "&Keyboard shortcuts", lambda: dialog(window).show_tab("shortcuts"),
                                 tip="Every keyboard shortcut"),
        "glossary": make_action(window, "&Glossary", lambda: dialog(window).show_tab("glossary"),
                                tip="Every component, parameter and metric, searchable"),
        "context_help": make_action(window, "&Explain this", lambda: context_help(window), "F1",
                                    "The glossary entry of the inspector field or plot you are in"),
    }
    menu.addActions(list(new.values()))
    window.actions_.update(new)
    docks = getattr(window, "docks", {})
    if "plots" in docks:
        window.plot_menu = PlotMenu(window, docks["plots"])
    return new
