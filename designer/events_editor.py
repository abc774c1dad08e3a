"""The lesson's scheduled events (fail / recover a node at a time), listed and edited
in the inspector when nothing is selected. Every change is an undo step."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QGroupBox, QHBoxLayout,
                               QHeaderView, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from simulation.document import ScheduledEvent
from simulation.kinds import EVENT_ACTIONS


def describe(doc, event: ScheduledEvent) -> str:
    """``fail Web 2`` (``replica 1 of`` when it targets one replica)."""
    name = doc.node(event.node).label or event.node if event.node in doc else f"{event.node} (deleted)"
    replica = f"replica {event.replica} of " if event.replica is not None else ""
    return f"{event.action} {replica}{name}"


class EventsEditor(QGroupBox):
    """A table of the scheduled events and a row to add one."""

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__("Scheduled events", parent)
        self.setObjectName("eventsEditor")
        self.setToolTip("Failures and recoveries that happen by themselves during every run of this lesson.")
        self.controller = controller
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["At", "Action", "Node"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
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
        layout.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignRight)
        for sig in (controller.eventsChanged, controller.nodeAdded, controller.nodeRemoved,
                    controller.documentReplaced):
            sig.connect(self.refresh)
        controller.nodeChanged.connect(self._node_changed)
        self.refresh()

    def _node_changed(self, node_id: str, what: str) -> None:
        if what == "label":
            self.refresh()

    def refresh(self, *args) -> None:
        doc = self.controller.document
        self.table.setRowCount(len(doc.events))
        for row, ev in enumerate(doc.events):
            action, _, target = describe(doc, ev).partition(" ")
            for col, text in enumerate((f"{ev.at_s:g} s", action, target)):
                item = QTableWidgetItem(text)
                if ev.node not in doc:
                    item.setForeground(Qt.GlobalColor.red)
                self.table.setItem(row, col, item)
        current = self.node.currentData()
        self.node.clear()
        for node_id in doc.node_ids():
            if doc.kind(node_id) != "client":
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
        self.controller.add_event(event, index)

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if not rows and self.table.rowCount():
            rows = [self.table.rowCount() - 1] if self.table.currentRow() < 0 else [self.table.currentRow()]
        for row in rows:
            self.controller.remove_event(row)
