"""The document's Qt face: its plain events as Qt signals, and every edit as an undo command.

Widgets (canvas, inspector, notes, run controls) read the document and listen to the
controller's signals; they change the document only through the controller's edit
methods, so every edit lands on the one :class:`QUndoStack`.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Iterable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QApplication

from simulation.annotations import MAX_ANNOTATIONS, Annotation, TextNote, check_annotation, check_text
from simulation.document import Document, NodeData, ScheduledEvent
from simulation.kinds import KINDS
from simulation.machines import changes_for as machine_changes
from simulation.params import FormatError, check_value
from simulation.patterns import check_pattern

from . import annotation_commands as acmd
from . import commands as cmd
from . import validation
from .canvas.clipboard import CLIP_MIME, clip_annotations, clip_to_nodes, default_label, nodes_to_clip

Point = tuple[float, float]


class DocumentController(QObject):
    """Owns the current document and its undo stack."""

    nodeAdded = Signal(str)
    nodeRemoved = Signal(str)
    nodeChanged = Signal(str, str)       # node id, what: "params" | "label" | "position"
    edgeAdded = Signal(str, str)
    edgeRemoved = Signal(str, str)
    metaChanged = Signal()
    settingsChanged = Signal()
    eventsChanged = Signal()
    documentReplaced = Signal()
    annotationAdded = Signal(int)        # index in document.annotations
    annotationRemoved = Signal(int)
    annotationChanged = Signal(int)
    editRefused = Signal(str)            # an edit with no field of its own (paste, label on the canvas) was refused

    def __init__(self, document: Document, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._document = document
        self._last_clip = ""
        self._paste_count = 0
        self._subscribe(document)

    # ----- the document ------------------------------------------------------------
    @property
    def document(self) -> Document:
        return self._document

    def set_document(self, doc: Document) -> None:
        """Replace the document (New, Open): clears the undo stack, emits documentReplaced."""
        self._unsubscribe(self._document)
        self._document = doc
        self._subscribe(doc)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.documentReplaced.emit()

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def _handlers(self) -> list[tuple[str, Any]]:
        return [("node_added", self.nodeAdded.emit), ("node_removed", self.nodeRemoved.emit),
                ("node_changed", self.nodeChanged.emit), ("edge_added", self.edgeAdded.emit),
                ("edge_removed", self.edgeRemoved.emit), ("meta_changed", self.metaChanged.emit),
                ("settings_changed", self.settingsChanged.emit), ("events_changed", self.eventsChanged.emit),
                ("annotation_added", self.annotationAdded.emit), ("annotation_removed", self.annotationRemoved.emit),
                ("annotation_changed", self.annotationChanged.emit)]

    def _subscribe(self, doc: Document) -> None:
        # Bound emitters are kept so that the same objects can be disconnected later.
        self._bound = self._handlers()
        for event_name, handler in self._bound:
            getattr(doc, event_name).connect(handler)

    def _unsubscribe(self, doc: Document) -> None:
        for event_name, handler in self._bound:
            try:
                getattr(doc, event_name).disconnect(handler)
            except ValueError:
                pass

    # ----- nodes and edges -----------------------------------------------------------
    def add_node(self, kind: str, x: float, y: float, params: dict[str, Any] | None = None,
                 label: str | None = None) -> str:
        """Add a node of ``kind`` at (x, y); returns its new id."""
        if kind not in KINDS:
            raise FormatError("", f'unknown kind "{kind}"')
        node_id = self._document.new_id(kind)
        checked = self._check_params(kind, params or {})
        data = NodeData(node_id, kind, default_label(kind, node_id) if label is None else label,
                        validation.clamp_coordinate(x), validation.clamp_coordinate(y), checked)
        validation.check_room(self._document, nodes=1)
        data = validation.check_node(data)
        self.undo_stack.push(cmd.AddNodeCommand(self._document, data))
        return node_id

    def remove_nodes(self, ids: Iterable[str]) -> None:
        """Delete nodes and their edges in one undo step."""
        ids = self._existing(ids)
        if ids:
            self.undo_stack.push(cmd.remove_nodes_macro(self._document, ids, cmd.delete_text(ids)))

    def connect(self, source: str, target: str) -> str:
        """Connect source → target. Returns '' on success, else why not (nothing is pushed)."""
        problem = self._document.connect_problem(source, target)
        if not problem:
            try:
                validation.check_room(self._document, edges=1)
            except FormatError as err:
                return err.message

            self.undo_stack.push(cmd.AddEdgeCommand(self._document, source, target))
        return problem

    def remove_edges(self, edges: Iterable[tuple[str, str]]) -> None:
        edges = [e for e in edges if self._document.has_edge(*e)]
        if not edges:
            return
        if len(edges) == 1:
            self.undo_stack.push(cmd.RemoveEdgeCommand(self._document, *edges[0]))
            return
        macro = cmd.MacroCommand(f"Disconnect {len(edges)} connections")
        for s, t in edges:
            macro.add(cmd.RemoveEdgeCommand(self._document, s, t))
        self.undo_stack.push(macro)

    def move_nodes(self, moves: dict[str, tuple[Point, Point]]) -> None:
        """Record one drag: ``{id: ((old_x, old_y), (new_x, new_y))}``."""
        moves = {k: (v[0], (validation.clamp_coordinate(v[1][0]), validation.clamp_coordinate(v[1][1])))
                 for k, v in moves.items() if k in self._document}
        moves = {k: v for k, v in moves.items() if tuple(v[0]) != tuple(v[1])}
        if moves:
            self.undo_stack.push(cmd.MoveNodesCommand(self._document, moves))

    def set_params(self, ids: Iterable[str], changes: dict[str, Any]) -> None:
        """Set parameters of one or more nodes in one step (a value ``None`` resets to default).

        Raises :class:`FormatError` for an invalid value; then nothing changes.
        """
        ids = self._existing(ids)
        if not ids or not changes:
            return
        checked: dict[str, Any] = {}
        for node_id in ids:
            checked = self._check_params(self._document.kind(node_id), changes, allow_none=True)
            # The node as it would be, checked like the loader checks it (cross-field rules,
            # scheduled events of a replica that would no longer exist).
            data = self._document.node(node_id).copy()
            node_changes = machine_changes(data.params, checked) if data.kind == "server" else checked
            for name, value in node_changes.items():
                if value is None:
                    data.params.pop(name, None)
                else:
                    data.params[name] = copy.deepcopy(value)
            validation.check_node(data, node_id, self._document.events)
        self.undo_stack.push(cmd.SetParamsCommand(self._document, ids, checked))

    def set_label(self, node_id: str, text: str) -> None:
        """Rename a node; FormatError (and nothing changes) if the loader would refuse the label."""
        validation.check_label(text)
        if node_id in self._document and self._document.node(node_id).label != text:
            self.undo_stack.push(cmd.SetLabelCommand(self._document, node_id, text))

    def set_settings(self, **changes: Any) -> None:
        """Change simulation settings (tick_ms, duration_s, seed); FormatError if invalid."""
        from simulation.kinds import SIMULATION_PARAMS
        by_name = {p.name: p for p in SIMULATION_PARAMS}
        for name, value in list(changes.items()):
            if name not in by_name:
                raise FormatError(f"simulation.{name}", "unknown setting")
            changes[name] = check_value(by_name[name], value, f"simulation.{name}")
        if changes:
            self.undo_stack.push(cmd.SetSettingsCommand(self._document, changes))

    def set_meta(self, **changes: Any) -> None:
        """Change the lesson's title or notes; FormatError if the loader would refuse the text."""
        for key, value in changes.items():
            validation.check_text(value, key)
        changes = {k: v for k, v in changes.items() if self._document.meta.get(k) != v}
        if changes:
            self.undo_stack.push(cmd.SetMetaCommand(self._document, changes))

    def add_event(self, event: ScheduledEvent, index: int | None = None) -> None:
        """Schedule a fail/recover event (appended unless ``index`` is given)."""
        index = len(self._document.events) if index is None else index
        event = validation.check_event(self._document, event)
        self.undo_stack.push(cmd.InsertEventCommand(self._document, index, event))

    def remove_event(self, index: int) -> None:
        self.undo_stack.push(cmd.RemoveEventCommand(self._document, index))

    # ----- annotations -----------------------------------------------------------------
    def add_annotation(self, annotation: Annotation) -> int:
        """Add a text box or an arrow (one undo step); returns its index. FormatError if refused."""
        self._check_annotation_room(1)
        index = len(self._document.annotations)
        self.undo_stack.push(acmd.InsertAnnotationCommand(self._document, index, check_annotation(annotation)))
        return index

    def set_annotation_text(self, index: int, text: str) -> None:
        """Retype a text box; an emptied box is deleted. FormatError if the text is refused."""
        note = self._document.annotations[index]
        if not isinstance(note, TextNote) or note.text == text:
            return
        if not text.strip():
            self.remove_items([], [index])
            return
        check_text(text, "text")
        self.undo_stack.push(acmd.ReplaceAnnotationCommand(self._document, index, replace(note, text=text),
                                                           "Edit text"))

    def change_annotations(self, changes: dict[int, Annotation], text: str) -> None:
        """Replace annotations (resize, an arrow's end, a colour) in one undo step."""
        doc = self._document
        changes = {i: check_annotation(a) for i, a in changes.items() if 0 <= i < len(doc.annotations)
                   and doc.annotations[i] != a}
        if len(changes) == 1:
            (i, a), = changes.items()
            self.undo_stack.push(acmd.ReplaceAnnotationCommand(doc, i, a, text))
        elif changes:
            macro = cmd.MacroCommand(text)
            acmd.replace_annotations(macro, doc, changes, text)
            self.undo_stack.push(macro)

    def move_items(self, moves: dict[str, tuple[Point, Point]], notes: dict[int, Annotation]) -> None:
        """One drag of nodes and annotations together: one undo step."""
        if not notes:
            self.move_nodes(moves)
            return
        moves = {k: (v[0], (validation.clamp_coordinate(v[1][0]), validation.clamp_coordinate(v[1][1])))
                 for k, v in moves.items() if k in self._document and tuple(v[0]) != tuple(v[1])}
        doc = self._document
        notes = {i: a for i, a in notes.items() if 0 <= i < len(doc.annotations) and doc.annotations[i] != a}
        if not moves and not notes:
            return
        n = len(moves) + len(notes)
        macro = cmd.MacroCommand("Move " + ("1 item" if n == 1 else f"{n} items"))
        if moves:
            macro.add(cmd.MoveNodesCommand(doc, moves))
        acmd.replace_annotations(macro, doc, notes, macro.text())
        self.undo_stack.push(macro)

    def remove_items(self, ids: Iterable[str], notes: Iterable[int]) -> None:
        """Delete nodes (with their edges) and annotations in one undo step."""
        ids = self._existing(ids)
        notes = sorted({i for i in notes if 0 <= i < len(self._document.annotations)})
        if not notes:
            self.remove_nodes(ids)
            return
        if ids:
            macro = cmd.remove_nodes_macro(self._document, ids, f"Delete {len(ids) + len(notes)} items")
        else:
            macro = cmd.MacroCommand(f"Delete {acmd.what(self._document.annotations[notes[0]])}"
                                     if len(notes) == 1 else f"Delete {len(notes)} annotations")
        acmd.remove_annotations(macro, self._document, notes)
        self.undo_stack.push(macro)

    def _check_annotation_room(self, n: int) -> None:
        if n and len(self._document.annotations) + n > MAX_ANNOTATIONS:
            raise FormatError("annotations", f"too many annotations (at most {MAX_ANNOTATIONS})")

    # ----- clipboard -------------------------------------------------------------------
    def copy_nodes(self, ids: Iterable[str], notes: Iterable[int] = ()) -> str:
        """JSON of the nodes, the edges among them and the annotations ``notes``; also put on
        the system clipboard."""
        ids = self._existing(ids)
        notes = sorted({i for i in notes if 0 <= i < len(self._document.annotations)})
        text = nodes_to_clip(self._document, ids, notes)
        self._last_clip = text
        self._paste_count = 0
        app = QApplication.instance()
        if (ids or notes) and app is not None:
            # Plain text (the clip is self-describing JSON). A QMimeData made in Python and
            # handed to the clipboard outlives the interpreter and crashes PySide at exit.
            QApplication.clipboard().setText(text)
        return text

    def paste(self, text: str | None = None, offset: Point = (40, 40)) -> list[str]:
        """Add the clip's nodes with fresh ids in one undo step; returns their ids.

        Without ``text`` the system clipboard is read. Repeated pastes of one clip step
        further by ``offset`` so copies do not pile up. Invalid text pastes nothing.
        """
        if text is None:
            text = self._clipboard_text()
            if not text:
                return []
        if text == self._last_clip:
            self._paste_count += 1
            n = self._paste_count
        else:
            n = 1
        try:
            nodes, edges = clip_to_nodes(self._document, text, (offset[0] * n, offset[1] * n))
            validation.check_room(self._document, len(nodes), len(edges))
            notes = clip_annotations(text, (offset[0] * n, offset[1] * n))
            self._check_annotation_room(len(notes))
        except FormatError as err:
            self.editRefused.emit(f"Nothing pasted: {err}")
            return []
        return self._push_nodes(nodes, edges, "Paste" if len(nodes) != 1 or notes else f"Paste {nodes[0].id}",
                                notes)

    def duplicate(self, ids: Iterable[str], notes: Iterable[int] = ()) -> list[str]:
        """Copies of the nodes (and the edges among them) and annotations, shifted; the clipboard
        is untouched. New annotations are appended to the document's list."""
        ids = self._existing(ids)
        notes = sorted({i for i in notes if 0 <= i < len(self._document.annotations)})
        if not ids and not notes:
            return []
        try:
            clip = nodes_to_clip(self._document, ids, notes)
            nodes, edges = clip_to_nodes(self._document, clip, (40, 40))
            validation.check_room(self._document, len(nodes), len(edges))
            copies = clip_annotations(clip, (40, 40))
            self._check_annotation_room(len(copies))
        except FormatError as err:
            self.editRefused.emit(f"Not duplicated: {err}")
            return []
        text = f"Duplicate {ids[0]}" if len(ids) == 1 and not notes else f"Duplicate {len(ids) + len(notes)} items"
        return self._push_nodes(nodes, edges, text, copies)

    def cut(self, ids: Iterable[str]) -> None:
        ids = self._existing(ids)
        if ids:
            self.copy_nodes(ids)
            self._paste_count = 0
            self.undo_stack.push(cmd.remove_nodes_macro(self._document, ids, cmd.delete_text(ids, "Cut")))

    # ----- helpers ---------------------------------------------------------------------
    def _push_nodes(self, nodes: list[NodeData], edges: list[tuple[str, str]], text: str,
                    notes: list[Annotation] = ()) -> list[str]:
        if not nodes and not notes:
            return []
        macro = cmd.paste_macro(self._document, nodes, edges, text)
        start = len(self._document.annotations)
        for k, note in enumerate(notes):
            macro.add(acmd.InsertAnnotationCommand(self._document, start + k, note))
        self.undo_stack.push(macro)
        return [n.id for n in nodes]

    def _clipboard_text(self) -> str:
        if QApplication.instance() is None:
            return self._last_clip
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasFormat(CLIP_MIME):
            return bytes(mime.data(CLIP_MIME).data()).decode("utf-8", "replace")
        if mime is not None and mime.hasText():
            return mime.text()
        return self._last_clip

    def _existing(self, ids: Iterable[str]) -> list[str]:
        """The ids that exist, in document order, without duplicates."""
        wanted = set(ids)
        return [n for n in self._document.node_ids() if n in wanted]

    @staticmethod
    def _check_params(kind_name: str, changes: dict[str, Any], allow_none: bool = False) -> dict[str, Any]:
        kind = KINDS[kind_name]
        out: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in kind.param_names:
                raise FormatError(name, f"a {kind.label.lower()} has no parameter {name!r}")
            if value is None and allow_none:
                out[name] = None
                continue
            value = check_value(kind.param(name), copy.deepcopy(value), name)
            if kind.param(name).type == "object":
                check_pattern(value, name)
            out[name] = value
        return out
