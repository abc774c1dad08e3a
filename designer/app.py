"""Start the ScaleLab desktop app: ``main([FILE])``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

import simulation

from .lessons import icon_path, starter_path


def make_app(argv: list[str]) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "scalelab", *argv])
    app.setApplicationName("ScaleLab")
    app.setApplicationDisplayName("ScaleLab")
    app.setOrganizationName("ScaleLab")
    app.setOrganizationDomain("scalelab.app")
    app.setApplicationVersion(simulation.__version__)
    app.setDesktopFileName("scalelab")
    if icon_path("scalelab").exists():
        app.setWindowIcon(QIcon(str(icon_path("scalelab"))))
    return app


def main(argv: list[str] | None = None) -> int:
    """Open FILE, or a crash-recovery file if there is one, or the built-in starter lesson."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="scalelab", description="ScaleLab: learn how web apps scale.")
    parser.add_argument("file", nargs="?", help="a .scalelab lesson to open")
    parser.add_argument("--version", action="version", version=f"ScaleLab {simulation.__version__}")
    parser.add_argument("--install-desktop", action="store_true",
                        help="install the launcher (.desktop file, icon, file type) for this user, then exit")
    parser.add_argument("--smoke-test", metavar="OUT.png",
                        help="open FILE (else the starter), run it, export the lesson snapshot to OUT.png, quit")
    parser.add_argument("--smoke-seconds", type=float, default=10.0, metavar="S",
                        help="simulated seconds that --smoke-test runs (default 10)")
    args, qt_args = parser.parse_known_args(argv)
    if args.install_desktop:
        from .desktop_install import install
        for path in install():
            print(f"installed {path}")
        return 0
    app = make_app(qt_args)
    if args.smoke_test:
        from .smoke import run
        return run(app, args.smoke_test, args.file, args.smoke_seconds)
    window = start(args.file)
    code = app.exec()
    del window
    return code


def start(file: str | None = None):
    """Show the main window with FILE (else the starter lesson); crashed sessions' work is
    offered in any case (a restored lesson takes this window when no FILE was given)."""
    from simulation.compiled import warm_in_background
    warm_in_background()   # first launch: compile the engine's kernels in another process (runs start at once meanwhile)
    from .main_window import MainWindow
    window = MainWindow()
    window.show()
    opened = bool(file) and window.open_file(file)
    if window.restore_sessions(into_this_window=not opened):
        opened = True
    if not opened:
        window.open_file(starter_path())
    return window


if __name__ == "__main__":
    sys.exit(main())
