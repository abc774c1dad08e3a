"""The inspector: a form generated from the parameter declarations.

With one node selected it edits that node; with several it edits the fields
common to all their kinds at once; with nothing selected it edits the
simulation settings and the lesson's title and notes. Every edit goes through
the controller (so it is undoable); refused values show the reason beside the field.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon, QTextDocument
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextDocumentLayout, QPlainTextEdit, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from simulation.kinds import KINDS, SIMULATION_PARAMS
from simulation.machines import CUSTOM, DERIVED
from simulation.params import FormatError, Param, object_with_defaults

from .lessons import icon_path
from .notes import MAX_MARKDOWN, break_long_runs, needs_plain
from .param_fields import FieldRow, choice_text, tooltip


def common_params(kinds: list[str]) -> list[Param]:
    """Parameters (by name and type) shared by every kind in ``kinds``, in the first kind's order."""
    if not kinds:
        return []
    first = KINDS[kinds[0]]
    out = []
    for p in first.params:
        if all(p.name in KINDS[k].param_names and KINDS[k].param(p.name).type == p.type for k in kinds[1:]):
            out.append(p)
    return out


class PatternEditor(QGroupBox):
    """Sub-form for an object-typed parameter (a traffic pattern): variant + its fields."""

    def __init__(self, param: Param, commit, parent: QWidget | None = None) -> None:
        super().__init__(param.title, parent)
        self.param = param
        self._commit = commit            # callable(name, value) -> error message or ""
        self._value: dict = {"type": next(iter(param.variants))}
        self.setToolTip(tooltip(param))
        self.form = QFormLayout(self)
        self.variant = QComboBox(self)
        self.variant.setObjectName(f"field_{param.name}_type")
        for v in param.variants:
            self.variant.addItem(choice_text(v), v)
        self.variant.activated.connect(self._variant_chosen)
        self.form.addRow("Shape:", self.variant)
        self.error = QLabel(self)
        self.error.setObjectName(f"error_{param.name}")
        self.error.setStyleSheet("color: #c62828;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.form.addRow(self.error)
        self.rows: dict[str, FieldRow] = {}

    def set_value(self, value: dict, mixed: bool = False) -> None:
        value = object_with_defaults(self.param, value)
        rebuild = value["type"] != self._value.get("type") or not self.rows and self.param.variants[value["type"]]
        self._value = value
        self.variant.setCurrentIndex(self.variant.findData(value["type"]))
        self.setTitle(self.param.title + (" (mixed)" if mixed else ""))
        if rebuild:
            self._build_fields(value["type"])
        for name, row in self.rows.items():
            row.set_value(value[name])

    def _build_fields(self, variant: str) -> None:
        for row in self.rows.values():
            self.form.removeRow(row.label)
        self.rows = {}
        for sub in self.param.variants[variant]:
            row = FieldRow(sub, self.form, self, where=f"{self.param.name}.{sub.name}")
            row.committed.connect(self._field_committed)
            self.rows[sub.name] = row

    def clear_errors(self) -> None:
        self.error.hide()
        for row in self.rows.values():
            row.show_error("")

    def _variant_chosen(self, index: int) -> None:
        variant = self.variant.itemData(index)
        if variant != self._value.get("type"):
            self._send({"type": variant})

    def _field_committed(self, name: str, value: Any) -> None:
        new = dict(self._value)
        new[name] = value
        problem = self._send(new)
        if problem and name in self.rows:
            self.rows[name].revert()

    def _send(self, value: dict) -> str:
        problem = self._commit(self.param.name, value)
        self.error.setText(f"Refused: {problem}" if problem else "")
        self.error.setVisible(bool(problem))
        if problem:
            self.variant.setCurrentIndex(self.variant.findData(self._value["type"]))
        return problem


class Inspector(QScrollArea):
    """Edits the selection's parameters (or the simulation settings)."""

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self.setWidgetResizable(True)
        self.setMinimumWidth(260)
        self.controller = controller
        self._ids: list[str] = []
        self.rows: dict[str, FieldRow] = {}
        self.pattern: PatternEditor | None = None
        self.label_edit: QLineEdit | None = None
        self.title_edit: QLineEdit | None = None
        self.notes_edit: QPlainTextEdit | None = None
        self._notes_timer = QTimer(self, singleShot=True, interval=700)
        self._notes_timer.timeout.connect(self._commit_notes)
        self._notes_pending = False
        self._notes_doc = QTextDocument(self)
        self._notes_doc.setDocumentLayout(QPlainTextDocumentLayout(self._notes_doc))
        self._notes_full = False        # huge notes: loaded into the editor only on request
        self._notes_shown: str | None = None   # the notes text the editor holds (None: a preview)
        controller.nodeChanged.connect(self._node_changed)
        controller.nodeRemoved.connect(self._node_removed)
        controller.settingsChanged.connect(self._settings_changed)
        controller.metaChanged.connect(self._settings_changed)
        controller.documentReplaced.connect(self._document_replaced)
        self._rebuild()

    # ----- selection -------------------------------------------------------------------
    def selection(self) -> list[str]:
        return list(self._ids)

    def set_selection(self, ids: list[str]) -> None:
        self._commit_notes()
        doc = self.controller.document
        self._ids = [i for i in ids if i in doc]
        self._rebuild()

    def _document_replaced(self, *args) -> None:
        self._notes_timer.stop()      # a pending notes edit belonged to the old document
        self._notes_pending = False
        self._notes_full = False
        self._ids = []
        self._rebuild()

    def _node_removed(self, node_id: str, *args) -> None:
        if node_id in self._ids:
            self.set_selection([i for i in self._ids if i != node_id])

    def _node_changed(self, node_id: str, what: str = "params") -> None:
        if node_id in self._ids and what in ("params", "label"):
            self._refresh_values()

    def _settings_changed(self, *args) -> None:
        if not self._ids:
            self._refresh_values()

    # ----- building --------------------------------------------------------------------
    def _rebuild(self) -> None:
        old = self.takeWidget()
        if old is not None:
            old.deleteLater()
        self.rows, self.pattern = {}, None
        self.label_edit = self.title_edit = self.notes_edit = None
        self.notes_load: QPushButton | None = None
        self.events_editor = None
        self.text_errors: dict[str, QLabel] = {}
        page = QWidget()
        page.setObjectName("inspectorPage")
        outer = QVBoxLayout(page)
        if self._ids:
            self._build_nodes(page, outer)
        else:
            self._build_settings(page, outer)
        outer.addStretch(1)
        self.setWidget(page)
        self._refresh_values()

    @staticmethod
    def _error_line(page: QWidget, name: str) -> QLabel:
        line = QLabel(page)
        line.setObjectName(f"error_{name}")
        line.setStyleSheet("color: #c62828;")
        line.setWordWrap(True)
        line.hide()
        return line

    def _show_text_error(self, name: str, problem: str) -> None:
        line = self.text_errors.get(name)
        if line is not None:
            line.setText(f"Refused: {problem}" if problem else "")
            line.setVisible(bool(problem))

    def _header(self, page: QWidget, outer: QVBoxLayout, icon: str | None, title: str, text: str) -> None:
        row = QHBoxLayout()
        if icon and icon_path(icon).exists():
            pic = QLabel(page)
            pic.setPixmap(QIcon(str(icon_path(icon))).pixmap(32, 32))
            row.addWidget(pic)
        head = QLabel(f"<b>{title}</b>", page)
        head.setObjectName("inspectorTitle")
        row.addWidget(head, 1)
        outer.addLayout(row)
        if text:
            sub = QLabel(text, page)
            sub.setWordWrap(True)
            sub.setStyleSheet("color: palette(mid);")
            outer.addWidget(sub)

    def _build_nodes(self, page: QWidget, outer: QVBoxLayout) -> None:
        doc = self.controller.document
        kinds = [doc.kind(i) for i in self._ids]
        distinct = list(dict.fromkeys(kinds))
        if len(self._ids) == 1:
            kind = KINDS[kinds[0]]
            self._header(page, outer, kind.name, f"{kind.label} · {self._ids[0]}", kind.description)
        else:
            names = ", ".join(f"{KINDS[k].label} ×{kinds.count(k)}" for k in distinct)
            self._header(page, outer, distinct[0] if len(distinct) == 1 else None,
                         f"{len(self._ids)} nodes selected", f"{names}. Edits apply to all of them.")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(form)
        if len(self._ids) == 1:
            self.label_edit = QLineEdit(page)
            self.label_edit.setObjectName("field_label")
            self.label_edit.setToolTip("The name shown on the canvas.")
            self.label_edit.editingFinished.connect(self._commit_label)
            form.addRow("Label:", self.label_edit)
            self.text_errors["label"] = self._error_line(page, "label")
            form.addRow(self.text_errors["label"])
        params = common_params(distinct)
        groups: dict[str, QFormLayout] = {}
        for p in params:
            if p.type == "object":
                self.pattern = PatternEditor(p, self._commit_param, page)
                outer.addWidget(self.pattern)
                continue
            target = form
            if p.group:               # declared groups (e.g. Autoscaling) get their own box
                if p.group not in groups:
                    box = QGroupBox(p.group, page)
                    box.setObjectName(f"group_{p.group}")
                    groups[p.group] = QFormLayout(box)
                    groups[p.group].setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
                    outer.addWidget(box)
                target = groups[p.group]
            row = FieldRow(p, target, page)
            row.committed.connect(self._commit_row)
            self.rows[p.name] = row
        if not params:
            outer.addWidget(QLabel("These kinds share no parameter.", page))

    def _build_settings(self, page: QWidget, outer: QVBoxLayout) -> None:
        self._header(page, outer, None, "Lesson and simulation",
                     "Nothing is selected. Click a node on the canvas to edit it.")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(form)
        self.title_edit = QLineEdit(page)
        self.title_edit.setObjectName("field_title")
        self.title_edit.setToolTip("The lesson's title (shown in the notes and on exported snapshots).")
        self.title_edit.editingFinished.connect(self._commit_title)
        form.addRow("Title:", self.title_edit)
        self.text_errors["title"] = self._error_line(page, "title")
        form.addRow(self.text_errors["title"])
        for p in SIMULATION_PARAMS:
            row = FieldRow(p, form, page, where=f"simulation.{p.name}")
            row.committed.connect(self._commit_setting)
            self.rows[p.name] = row
        outer.addWidget(QLabel("Lesson notes (Markdown):", page))
        self.notes_edit = QPlainTextEdit(page)
        # One text document for the notes, kept across rebuilds: setting a long text
        # again each time the selection is cleared would cost ~0.5 s per million characters.
        notes = str(self.controller.document.meta.get("notes", ""))
        self.notes_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap
                                        if needs_plain(notes) and self._notes_shown is not None
                                        else QPlainTextEdit.LineWrapMode.WidgetWidth)   # before: layout
        self.notes_edit.setDocument(self._notes_doc)
        self.notes_edit.setObjectName("field_notes")
        self.notes_edit.setToolTip("Shown in the Lesson notes panel. Markdown: # heading, **bold**, - lists.")
        self.notes_edit.setMinimumHeight(160)
        self.notes_edit.textChanged.connect(self._notes_typed)
        outer.addWidget(self.notes_edit, 1)
        self.notes_load = QPushButton("Edit all of these notes", page)
        self.notes_load.setObjectName("loadNotes")
        self.notes_load.setToolTip("Very long notes (or very long words) make the editor slow; "
                                   "they are loaded only when you ask.")
        self.notes_load.clicked.connect(self._load_full_notes)
        self.notes_load.hide()
        outer.addWidget(self.notes_load)
        self.text_errors["notes"] = self._error_line(page, "notes")
        outer.addWidget(self.text_errors["notes"])
        from .events_editor import EventsEditor
        self.events_editor = EventsEditor(self.controller, page)
        outer.addWidget(self.events_editor)

    # ----- values ----------------------------------------------------------------------
    def _refresh_values(self) -> None:
        doc = self.controller.document
        if self._ids:
            all_params = [doc.params(i) for i in self._ids]
            for name, row in self.rows.items():
                values = [p[name] for p in all_params]
                row.set_value(values[0], mixed=any(v != values[0] for v in values))
            derived = any(p.get("machine", CUSTOM) != CUSTOM for p in all_params)
            for name in DERIVED:   # a machine type sets these: shown, not edited (machines.py)
                if name in self.rows:
                    self.rows[name].editor.widget.setEnabled(not derived)
                    self.rows[name].editor.widget.setToolTip(
                        "Set by the machine type; choose machine “custom” to set it yourself." if derived
                        else tooltip(self.rows[name].param))
            if self.pattern is not None:
                values = [p[self.pattern.param.name] for p in all_params]
                self.pattern.set_value(values[0], mixed=any(v != values[0] for v in values))
            if self.label_edit is not None and not self.label_edit.hasFocus():
                self.label_edit.setText(doc.node(self._ids[0]).label)
            return
        for name, row in self.rows.items():
            row.set_value(doc.settings[name])
        if self.title_edit is not None and not self.title_edit.hasFocus():
            self.title_edit.setText(str(doc.meta.get("title", "")))
            self.title_edit.setCursorPosition(0)     # a long title shows its start
        if self.notes_edit is not None and not self.notes_edit.hasFocus():
            notes = str(doc.meta.get("notes", ""))
            huge = needs_plain(notes)
            if huge and not self._notes_full:
                # Laying out (and painting) a huge text or word is slow: a short read-only
                # preview until the user asks for the whole text.
                preview = (f"(These notes are {len(notes):,} characters long"
                           f"{'' if len(notes) > MAX_MARKDOWN else ', with very long words'}. "
                           "Press “Edit all of these notes” to edit them.)\n\n" + break_long_runs(notes[:2000]))
                self._set_notes_text(preview, None)
            elif self._notes_shown != notes:
                self._set_notes_text(notes, notes)
            self.notes_edit.setReadOnly(self._notes_shown is None)
            self.notes_load.setVisible(self._notes_shown is None)

    # ----- commits (all through the controller: undoable) ------------------------------
    def _commit_param(self, name: str, value: Any) -> str:
        """Set ``name`` on every selected node; returns the refusal reason or ''."""
        try:
            self.controller.set_params(list(self._ids), {name: value})
        except FormatError as err:
            return err.message or str(err)
        self._edit_went_through()
        return ""

    def _edit_went_through(self) -> None:
        """An edit was applied: earlier refusals beside other fields no longer apply (those
        fields show the values in force), as a refusal in the status bar goes once the next
        action succeeds. A refusal of the notes stays: the refused text is still in the editor."""
        for row in self.rows.values():
            row.show_error("")
        if self.pattern is not None:
            self.pattern.clear_errors()
        for name in ("label", "title"):
            self._show_text_error(name, "")

    def _commit_row(self, name: str, value: Any) -> None:
        problem = self._commit_param(name, value)
        row = self.rows[name]
        if problem:
            row.show_error(f"Refused: {problem}")
            row.revert()

    def _commit_setting(self, name: str, value: Any) -> None:
        try:
            self.controller.set_settings(**{name: value})
        except FormatError as err:
            self.rows[name].show_error(f"Refused: {err.message or err}")
            self.rows[name].revert()
            return
        self._edit_went_through()

    def _commit_label(self) -> None:
        if self.label_edit is None or len(self._ids) != 1:
            return
        text = self.label_edit.text().strip()
        current = self.controller.document.node(self._ids[0]).label
        if text == current:
            return
        try:
            self.controller.set_label(self._ids[0], text)
        except FormatError as err:
            self._show_text_error("label", err.message)
            self.label_edit.setText(current)
            return
        self._edit_went_through()

    def _commit_title(self) -> None:
        if self.title_edit is None or self.title_edit.text() == self.controller.document.meta.get("title", ""):
            return
        try:
            self.controller.set_meta(title=self.title_edit.text())
        except FormatError as err:
            self._show_text_error("title", err.message)
            self.title_edit.setText(str(self.controller.document.meta.get("title", "")))
            return
        self._edit_went_through()

    def _set_notes_text(self, text: str, notes: str | None) -> None:
        # Wrapping a huge text or a very long word takes quadratic time (see notes.py).
        self.notes_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap if notes is not None and needs_plain(notes)
                                        else QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.notes_edit.blockSignals(True)
        self.notes_edit.setPlainText(text)
        self.notes_edit.blockSignals(False)
        self._notes_shown = notes

    def _load_full_notes(self) -> None:
        self._notes_full = True
        self._refresh_values()

    def _notes_typed(self) -> None:
        self._notes_pending = True
        self._notes_timer.start()

    def _commit_notes(self) -> None:
        """Commit a pending (debounced) edit of the notes."""
        if not self._notes_pending:
            return
        self._notes_pending = False
        self._notes_timer.stop()
        if self.notes_edit is None:
            return
        if self._notes_shown is None:
            return                        # a preview is never committed
        text = self.notes_edit.toPlainText()
        self._notes_shown = text
        if text != self.controller.document.meta.get("notes", ""):
            try:
                self.controller.set_meta(notes=text)
            except FormatError as err:     # kept in the editor, so that it can be shortened
                self._show_text_error("notes", f"{err.message}; the notes were not changed")
                return
        self._show_text_error("notes", "")
