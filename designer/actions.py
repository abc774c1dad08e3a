"""The main window's actions, menus and toolbar (icons, shortcuts, tooltips)."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QComboBox, QMainWindow, QMenu, QStyle, QToolBar

from .lessons import built_in_lessons, icon_path
from .run_controller import SPEEDS


def icon(window: QMainWindow, name: str, fallback: QStyle.StandardPixmap | None = None) -> QIcon:
    """An icon from resources/icons, else the desktop theme, else a Qt standard icon."""
    path = icon_path(name)
    if path.exists():
        return QIcon(str(path))
    themed = QIcon.fromTheme(name.replace("_", "-"))
    if not themed.isNull() or fallback is None:
        return themed
    return window.style().standardIcon(fallback)


def make_action(window: QMainWindow, text: str, slot: Callable, shortcut=None, tip: str = "",
                icon_name: str = "", fallback: QStyle.StandardPixmap | None = None) -> QAction:
    action = QAction(text, window)
    if icon_name or fallback is not None:
        action.setIcon(icon(window, icon_name, fallback))
    if shortcut is not None:
        if isinstance(shortcut, (list, tuple)):
            action.setShortcuts([QKeySequence(s) for s in shortcut])
        else:
            action.setShortcut(QKeySequence(shortcut))
    plain = text.replace("&", "").rstrip(".…")
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    action.setToolTip(f"{tip or plain}" + (f" ({keys})" if keys else ""))
    action.setStatusTip(tip or plain)
    action.triggered.connect(lambda checked=False: slot())
    window.addAction(action)
    return action


SP = QStyle.StandardPixmap


def build(window) -> None:
    """Create ``window.actions_`` (a dict), the menus and the toolbar."""
    w = window
    a: dict[str, QAction] = {}
    a["new"] = make_action(w, "&New", w.file_new, QKeySequence.StandardKey.New, "Start an empty topology",
                           "document-new", SP.SP_FileIcon)
    a["open"] = make_action(w, "&Open…", w.file_open, QKeySequence.StandardKey.Open, "Open a .scalelab lesson",
                            "document-open", SP.SP_DialogOpenButton)
    a["save"] = make_action(w, "&Save", w.file_save, QKeySequence.StandardKey.Save, "Save the lesson",
                            "document-save", SP.SP_DialogSaveButton)
    a["save_as"] = make_action(w, "Save &As…", w.file_save_as, "Ctrl+Shift+S", "Save the lesson under a new name",
                               "document-save-as", SP.SP_DialogSaveButton)
    a["export_png"] = make_action(w, "Canvas as &PNG…", lambda: w.export_canvas(False),
                                  tip="Export the canvas at 2× resolution on white")
    a["export_png_t"] = make_action(w, "Canvas as PNG, &transparent…", lambda: w.export_canvas(True),
                                    tip="Export the canvas at 2× resolution with a transparent background")
    a["export_svg"] = make_action(w, "Canvas as &SVG…", w.export_svg, tip="Export the canvas as a vector image")
    a["export_plots"] = make_action(w, "P&lots as PNG…", w.export_plots, tip="Export the plots as an image")
    a["export_snapshot"] = make_action(w, "Lesson s&napshot…", w.export_snapshot, "Ctrl+E",
                                       "One PNG with the title, the canvas and the plots, for a slide")
    a["quit"] = make_action(w, "&Quit", w.close, QKeySequence.StandardKey.Quit, "Close ScaleLab")

    stack = w.controller.undo_stack
    a["undo"] = stack.createUndoAction(w, "&Undo")
    a["undo"].setShortcut(QKeySequence.StandardKey.Undo)
    a["undo"].setIcon(icon(w, "edit-undo", SP.SP_ArrowBack))
    a["redo"] = stack.createRedoAction(w, "&Redo")
    a["redo"].setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    a["redo"].setIcon(icon(w, "edit-redo", SP.SP_ArrowForward))
    for key in ("undo", "redo"):
        w.addAction(a[key])
    # Edit and view actions belong to the canvas (its shortcuts work while it has focus).
    canvas = w.canvas
    a["cut"], a["copy"], a["paste"] = canvas.cut_action, canvas.copy_action, canvas.paste_action
    a["duplicate"], a["delete"], a["select_all"] = (canvas.duplicate_action, canvas.delete_action,
                                                   canvas.select_all_action)
    a["zoom_in"], a["zoom_out"], a["fit"] = canvas.zoom_in_action, canvas.zoom_out_action, canvas.fit_action
    a["add_text"], a["add_arrow"] = canvas.annotation_actions()   # annotations for slides
    for key, name, fallback in (("cut", "edit-cut", None), ("copy", "edit-copy", None),
                                ("paste", "edit-paste", None), ("duplicate", "edit-copy", None)):
        if a[key].icon().isNull():
            a[key].setIcon(icon(w, name, fallback))
    a["reset_layout"] = make_action(w, "Reset &layout", w.reset_layout, tip="Put the panels back where they started")

    a["run"] = make_action(w, "&Run", w.run.toggle, "Space", "Run or pause the simulation",
                           "media-playback-start", SP.SP_MediaPlay)
    a["step"] = make_action(w, "S&tep", lambda: w.run.step(1.0), "Ctrl+T",
                            "Advance one simulated second, then pause", "media-skip-forward", SP.SP_MediaSkipForward)
    a["reset"] = make_action(w, "Rese&t", w.run.reset, "Ctrl+R", "Stop and clear the plots (back to t = 0)",
                             "media-playback-stop", SP.SP_MediaStop)
    a["about"] = make_action(w, "&About ScaleLab", w.about, tip="Version and credits")
    w.actions_ = a

    bar = w.menuBar()
    m = bar.addMenu("&File")
    m.addActions([a["new"], a["open"]])
    w.recent_menu = m.addMenu("Open &Recent")
    w.recent_menu.aboutToShow.connect(w.fill_recent_menu)
    w.examples_menu = m.addMenu(icon(w, "scalelab"), "&Examples")
    challenges = False
    for lesson in built_in_lessons():
        if lesson.name.startswith("challenge_") and not challenges:   # the graded challenges, apart
            challenges = True
            w.examples_menu.addSection("Challenges")
        act = w.examples_menu.addAction(lesson.title)
        act.setToolTip(str(lesson.path))
        act.triggered.connect(lambda checked=False, p=lesson.path: w.open_file(p))
    m.addSeparator()
    m.addActions([a["save"], a["save_as"]])
    export = m.addMenu("E&xport")
    export.addActions([a["export_png"], a["export_png_t"], a["export_svg"], a["export_plots"]])
    export.addSeparator()
    export.addAction(a["export_snapshot"])
    m.addSeparator()
    m.addAction(a["quit"])

    m = bar.addMenu("&Edit")
    m.addActions([a["undo"], a["redo"]])
    m.addSeparator()
    m.addActions([a["cut"], a["copy"], a["paste"], a["duplicate"], a["delete"]])
    m.addSeparator()
    m.addActions([a["add_text"], a["add_arrow"]])
    m.addSeparator()
    m.addAction(a["select_all"])

    m = w.view_menu = bar.addMenu("&View")
    m.addActions([a["zoom_in"], a["zoom_out"], a["fit"]])
    m.addSeparator()
    w.panels_menu = m.addMenu("&Panels")
    m.addAction(a["reset_layout"])

    m = bar.addMenu("&Simulation")
    m.addActions([a["run"], a["step"], a["reset"]])
    speed_menu = m.addMenu("S&peed")
    w.speed_box = QComboBox(w)
    w.speed_box.setObjectName("speed")
    w.speed_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # keep the keyboard on the canvas
    w.speed_box.setToolTip("Simulation speed: simulated seconds per real second (Max: as fast as possible)")
    for i, (text, value) in enumerate(SPEEDS):
        w.speed_box.addItem(text, value)
        act = speed_menu.addAction(text)
        act.triggered.connect(lambda checked=False, i=i: w.speed_box.setCurrentIndex(i))
    w.speed_box.currentIndexChanged.connect(lambda i: w.run.set_speed(w.speed_box.itemData(i)))
    w.speed_box.currentTextChanged.connect(lambda text: QSettings().setValue("run/speed", text))
    remembered = w.speed_box.findText(str(QSettings().value("run/speed", "1×")))
    w.speed_box.setCurrentIndex(max(0, remembered))

    m = bar.addMenu("&Help")
    from .help_dialog import install as install_help   # Tutorial, Keyboard shortcuts, Glossary, F1
    install_help(w, m)
    m.addSeparator()
    m.addAction(a["about"])

    tb = QToolBar("Main toolbar", w)
    tb.setObjectName("mainToolbar")
    w.addToolBar(tb)
    tb.addActions([a["new"], a["open"], a["save"]])
    tb.addSeparator()
    tb.addActions([a["undo"], a["redo"]])
    tb.addSeparator()
    tb.addActions([a["run"], a["step"], a["reset"]])
    for key in ("run", "step", "reset"):        # the run controls say what they do
        button = tb.widgetForAction(a[key])
        if button is not None:
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    run_button = tb.widgetForAction(a["run"])
    if run_button is not None:      # as wide as "Pause": the toolbar does not shift when it changes
        set_running(w, True)
        wide = run_button.sizeHint().width()
        set_running(w, False)
        run_button.setMinimumWidth(max(wide, run_button.sizeHint().width()))
    tb.addWidget(w.speed_box)
    tb.addSeparator()
    tb.addActions([a["zoom_in"], a["zoom_out"], a["fit"]])
    tb.addSeparator()
    tb.addActions([a["add_text"], a["add_arrow"]])


def set_running(window, running: bool) -> None:
    """Show Run or Pause on the run action."""
    act = window.actions_["run"]
    if running:
        act.setText("&Pause")
        act.setIcon(icon(window, "media-playback-pause", SP.SP_MediaPause))
        act.setToolTip("Pause the simulation (Space)")
    else:
        act.setText("&Run")
        act.setIcon(icon(window, "media-playback-start", SP.SP_MediaPlay))
        act.setToolTip("Run the simulation (Space)")


def fill_recent(menu: QMenu, files: list[str], open_file: Callable[[str], None], clear: Callable[[], None]) -> None:
    menu.clear()
    for path in files:
        act = menu.addAction(path)
        act.triggered.connect(lambda checked=False, p=path: open_file(p))
    if not files:
        menu.addAction("(none)").setEnabled(False)
    else:
        menu.addSeparator()
        menu.addAction("Clear list").triggered.connect(lambda checked=False: clear())
