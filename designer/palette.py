"""The palette of component kinds: drag one onto the canvas, or press Enter / double-click to add it."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from simulation.kinds import KINDS

from .canvas import KIND_MIME
from .canvas.icons import icon, icon_pixmap

KIND_ROLE = Qt.ItemDataRole.UserRole


class _KindList(QListWidget):
    """A list whose drags carry the kind name under :data:`KIND_MIME`."""

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt)
        return [KIND_MIME]

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:  # noqa: N802 (Qt)
        return kind_mime(items[0].data(KIND_ROLE)) if items else QMimeData()

    def startDrag(self, actions) -> None:  # noqa: N802 (Qt)
        item = self.currentItem()
        if item is None:
            return
        drag = QDrag(self)
        drag.setMimeData(kind_mime(item.data(KIND_ROLE)))
        drag.setPixmap(icon_pixmap(item.data(KIND_ROLE), 48))
        drag.setHotSpot(drag.pixmap().rect().center())
        drag.exec(Qt.DropAction.CopyAction)


def kind_mime(kind: str) -> QMimeData:
    """What a palette drag carries: the kind's name as bytes."""
    mime = QMimeData()
    mime.setData(KIND_MIME, kind.encode("utf-8"))
    return mime


class PaletteWidget(QWidget):
    """The five kinds with icon, name and description."""

    addRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = _KindList(self)
        self.list.setIconSize(QSize(36, 36))
        self.list.setSpacing(2)
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setAccessibleName("Components")
        for kind in KINDS.values():
            item = QListWidgetItem(icon(kind.name), kind.label)
            item.setData(KIND_ROLE, kind.name)
            item.setToolTip(f"<b>{kind.label}</b><br>{kind.description}<br><i>Drag onto the canvas, "
                            f"or press Enter to add one.</i>")
            item.setStatusTip(kind.description)
            self.list.addItem(item)
        self.list.itemActivated.connect(lambda item: self.addRequested.emit(item.data(KIND_ROLE)))
        hint = QLabel("Drag a component onto the canvas. Drag from a node’s ○ handle to another node to connect them.", self)
        hint.setStyleSheet("color: #868e96;")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addWidget(hint)
        self.setMinimumWidth(150)

    def kinds(self) -> list[str]:
        return [self.list.item(i).data(KIND_ROLE) for i in range(self.list.count())]
