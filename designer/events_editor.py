"""The lesson's scheduled events (fail / recover a node at a time), listed and edited
in the inspector when nothing is selected. Every change is an undo step, checked with
the loader's rules first.

The list is a model/view table: rows are described when they are drawn, so a lesson
with 100,000 events opens as fast as one with two.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTableView, QVBoxLayout, QWidget)

from simulation.document import ScheduledEvent
from simulation.kinds import EVENT_ACTIONS
from simulation.params import FormatError

MAX_NODE_CHOICES = 2_000      # the node list of the "add" row (a bigger lesson shows the first ones)


def describe(doc, event: ScheduledEvent) -> str:
    """``fail Web 2`` (``replica 1 of`` when it targets one replica)."""
    name = doc.node(event.node).label or event.node if event.node in doc else f"{event.node} (deleted)"
    replica = f"replica {event.replica} of " if event.replica is not None else ""
    return f"{event.action} {replica}{name}"


class EventsModel(QAbstractTableModel):
    """The document's events as rows (At, Action, Node), read when drawn."""

    HEADERS = ("At", "Action", "Node")

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt
        return 0 if parent.isValid() else len(self.controller.document.events)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else 3

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        doc = self.controller.document
        if not index.isValid() or index.row() >= len(doc.events):
            return None
        ev = doc.events[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == 0:
                return f"{ev.at_s:g} s"
            action, _, target = describe(doc, ev).partition(" ")
            return action if index.column() == 1 else target
        if role == Qt.ItemDataRole.ForegroundRole and ev.node not in doc:
            return QColor(Qt.GlobalColor.red)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def reload(self) -> None:
        self.beginResetModel()
        self.endResetModel()


class EventsEditor(QGroupBox):
    """A table of the scheduled events and a row to add one."""

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__("Scheduled events", parent)
        self.setObjectName("eventsEditor")
        self.setToolTip("Failures and recoveries that happen by themselves during every run of this lesson.")
        self.controller = controller
        layout = QVBoxLayout(self)
        self.model = EventsModel(controller, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        # Interactive widths: ResizeToContents would measure every one of 100,000 rows.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 64)
        header.resizeSection(1, 64)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setMinimumWidth(120)
        self.table.setMaximumHeight(130)
        layout.addWidget(self.table)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setToolTip("Remove the selected event")
        self.remove_button.clicked.connect(self.remove_selected)
        first, second = QHBoxLayout(), QHBoxLayout()
        self.at = QDoubleSpinBox(self)
        self.at.setRange(0, 1e7)
        self.at.setDecimals(1)
        self.at.setSuffix(" s")
        self.at.setValue(30)
        self.at.setToolTip("Simulated time of the event")
        self.action = QComboBox(self)
        self.action.addItems(list(EVENT_ACTIONS))
        self.node = QComboBox(self)
        self.node.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.node.setMinimumContentsLength(6)
        self.node.setToolTip("The node that fails or recovers (every replica of it)")
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self.add)
        first.addWidget(self.at)
        first.addWidget(self.action)
        second.addWidget(self.node, 1)
        second.addWidget(self.add_button)
        layout.addLayout(first)
        layout.addLayout(second)
        self.error = QLabel(self)
        self.error.setObjectName("error_events")
        self.error.setStyleSheet("color: #c62828;")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        layout.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignRight)
        # Node lists are rebuilt once after a burst of changes (a paste of 1,000 nodes).
        self._later = QTimer(self, singleShot=True, interval=0)
        self._later.timeout.connect(self.refresh)
        controller.eventsChanged.connect(self.refresh)
        controller.documentReplaced.connect(self.refresh)
        for sig in (controller.nodeAdded, controller.nodeRemoved):
            sig.connect(self._refresh_later)
        controller.nodeChanged.connect(self._node_changed)
        self.refresh()

    def _refresh_later(self, *args) -> None:
        self.model.reload()
        self._later.start()

    def _node_changed(self, node_id: str, what: str) -> None:
        if what == "label":
            self._refresh_later()

    def refresh(self, *args) -> None:
        self._later.stop()
        doc = self.controller.document
        self.model.reload()
        current = self.node.currentData()
        self.node.clear()
        choices = [i for i in doc.node_ids() if doc.kind(i) != "client"][:MAX_NODE_CHOICES]
        for node_id in choices:
            self.node.addItem(doc.node(node_id).label or node_id, node_id)
        index = self.node.findData(current)
        self.node.setCurrentIndex(max(0, index))
        self.add_button.setEnabled(self.node.count() > 0)
        self.remove_button.setEnabled(bool(doc.events))

    def add(self) -> None:
        node_id = self.node.currentData()
        if node_id is None:
            return
        doc = self.controller.document
        event = ScheduledEvent(float(self.at.value()), self.action.currentText(), node_id)
        index = sum(1 for ev in doc.events if ev.at_s <= event.at_s)   # keep them in time order
        try:
            self.controller.add_event(event, index)
        except FormatError as err:
            self.error.setText(f"Refused: {err}")
            self.error.show()
            return
        self.error.hide()

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()}, reverse=True)
        count = self.model.rowCount()
        if not rows and count:
            current = self.table.currentIndex().row()
            rows = [count - 1] if current < 0 else [current]
        for row in rows:
            self.controller.remove_event(row)
