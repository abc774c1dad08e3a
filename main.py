"""ScaleLab: ``python main.py [FILE]`` starts the desktop app;
``python main.py simulate|check|export ...`` runs the headless command line."""
from __future__ import annotations

import sys

HEADLESS = ("simulate", "check", "export")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HEADLESS:
        from simulation.cli import main as cli_main   # no Qt unless exporting
        return int(cli_main(argv) or 0)
    from designer.app import main as gui_main
    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
