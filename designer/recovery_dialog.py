"""The dialog that offers crashed sessions' unsaved work (like LibreOffice's Document Recovery).

Every recoverable session is listed, newest first, with its title, file name and the
time of its last autosave, each with a check box. *Restore* opens the checked ones,
*Discard* deletes the checked ones, *Later* keeps everything for the next launch; rows
left unchecked are kept too. Damaged recovery files are listed as set aside.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from .recovery import Damaged, Recoverable


class RecoveryDialog(QDialog):
    RESTORE, DISCARD, LATER = 1, 2, 0

    def __init__(self, entries: list[Recoverable], damaged: list[Damaged],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recoveryDialog")
        self.setWindowTitle("Recover unsaved work")
        self.entries = entries
        self.choice = self.LATER
        layout = QVBoxLayout(self)
        if entries:
            intro = QLabel("ScaleLab did not close properly. These lessons had unsaved changes "
                           "(newest first). Check the ones to restore or to discard; the others "
                           "are kept for the next time ScaleLab starts.", self)
            intro.setWordWrap(True)
            layout.addWidget(intro)
        self.list = QListWidget(self)
        self.list.setObjectName("recoveryList")
        for entry in entries:
            item = QListWidgetItem(entry.describe())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setToolTip(f"{entry.path}" + (f"\nfrom {entry.original}" if entry.original else ""))
            self.list.addItem(item)
        self.list.setVisible(bool(entries))
        layout.addWidget(self.list)
        if damaged:
            lines = "".join(f"<li>{d.path.name}: {d.reason}</li>" for d in damaged)
            note = QLabel(f"<b>{len(damaged)} recovery file{'s' if len(damaged) > 1 else ''} could not be "
                          f"read</b> and {'were' if len(damaged) > 1 else 'was'} set aside (renamed *.damaged "
                          f"in {damaged[0].path.parent}):<ul>{lines}</ul>", self)
            note.setObjectName("recoveryDamaged")
            note.setWordWrap(True)
            note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(note)
        buttons = QDialogButtonBox(self)
        self.restore_button = QPushButton("Restore", self)
        self.restore_button.setObjectName("recoveryRestore")
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.setObjectName("recoveryDiscard")
        self.later_button = QPushButton("Later" if entries else "OK", self)
        self.later_button.setObjectName("recoveryLater")
        if entries:
            buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.AcceptRole)
            buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        buttons.addButton(self.later_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.restore_button.setDefault(True)
        self.restore_button.clicked.connect(lambda: self._finish(self.RESTORE))
        self.discard_button.clicked.connect(self._discard)
        self.later_button.clicked.connect(lambda: self._finish(self.LATER))
        layout.addWidget(buttons)
        self.resize(560, 320)

    def checked(self) -> list[Recoverable]:
        return [e for i, e in enumerate(self.entries)
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def _discard(self) -> None:
        n = len(self.checked())
        if not n:
            return
        answer = QMessageBox.question(
            self, "Discard unsaved work?",
            f"Delete the unsaved changes of {n} lesson{'s' if n > 1 else ''}? This cannot be undone.",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Discard:
            self._finish(self.DISCARD)

    def _finish(self, choice: int) -> None:
        self.choice = choice
        self.done(choice)
