"""The canvas view's actions (Delete, Copy, Paste, Zoom, Fit, Add Text, …), also shown in
the main window's Edit and View menus and its toolbar. A mixin of :class:`~designer.canvas.view.CanvasView`."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from .icons import icon


class CanvasActions:
    """Builds the view's keyboard actions (``_make_actions``) and hands them to the menus."""

    # ----- actions (also for the main window's Edit and View menus) ---------------------------
    def _make_actions(self) -> None:
        def action(text: str, keys, slot, tip: str, icon_name: str = "") -> QAction:
            a = QAction(text, self)
            if icon_name:
                a.setIcon(icon(icon_name))
            a.setShortcuts(keys if isinstance(keys, list) else [QKeySequence(keys)])
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        K = QKeySequence.StandardKey
        self.delete_action = action("&Delete", [QKeySequence(K.Delete), QKeySequence(Qt.Key.Key_Backspace)],
                                    self.delete_selection, "Delete the selected nodes and connections", "delete")
        self.copy_action = action("&Copy", K.Copy, self.copy_selection, "Copy the selected nodes")
        self.cut_action = action("Cu&t", K.Cut, self.cut_selection, "Cut the selected nodes")
        self.paste_action = action("&Paste", K.Paste, self.paste, "Paste nodes")
        self.duplicate_action = action("D&uplicate", "Ctrl+D", self.duplicate_selection,
                                       "Duplicate the selected nodes")
        self.select_all_action = action("Select &All", K.SelectAll, self.select_all, "Select every node")
        self.zoom_in_action = action("Zoom &In", [QKeySequence(K.ZoomIn), QKeySequence("Ctrl+=")],
                                     self.zoom_in, "Zoom in", "zoom_in")
        self.zoom_out_action = action("Zoom &Out", K.ZoomOut, self.zoom_out, "Zoom out", "zoom_out")
        self.fit_action = action("&Fit to View", "F", self.fit_to_view, "Show the whole topology", "fit_view")
        self.add_text_action = action("Add &Text", "T", self.add_text_at_center,
                                      "Add a text box to the canvas (for slides; double-click it to edit)")
        self.add_arrow_action = action("Add A&rrow", "A", lambda: self.set_arrow_tool(True),
                                       "Draw an arrow: drag on the canvas from where it starts to where it points")

    def edit_actions(self) -> list[QAction]:
        """Delete, Copy, Cut, Paste, Duplicate, Select All: for the Edit menu."""
        return [self.cut_action, self.copy_action, self.paste_action, self.duplicate_action,
                self.delete_action, self.select_all_action]

    def annotation_actions(self) -> list[QAction]:
        """Add Text, Add Arrow: for the Edit menu and the toolbar."""
        return [self.add_text_action, self.add_arrow_action]

    def view_actions(self) -> list[QAction]:
        return [self.zoom_in_action, self.zoom_out_action, self.fit_action]
