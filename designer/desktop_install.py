"""Install the launcher for the current user (no root): ``scalelab --install-desktop``.

Copies ``resources/scalelab.desktop``, the app icon and the ``application/x-scalelab``
MIME type into ``$XDG_DATA_HOME`` (``~/.local/share``), then refreshes the desktop's
caches when their tools exist. The installed entry's ``Exec=`` names the command by its
absolute path: the bundle's executable when frozen (PyInstaller), else the ``scalelab``
script beside this Python (a venv's ``bin/``, which a desktop session's PATH lacks), else
``scalelab`` from PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .lessons import RESOURCES


def data_home() -> Path:
    """``$XDG_DATA_HOME`` when it is an absolute path, else ``~/.local/share`` (the XDG Base
    Directory spec: a relative path in these variables is invalid and must be ignored)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def launcher_command() -> str:
    """The absolute path of the command that opens the app (``scalelab`` when none is found)."""
    if getattr(sys, "frozen", False):
        return str(Path(sys.executable).absolute())
    beside = Path(sys.executable).parent / "scalelab"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside.absolute())
    return shutil.which("scalelab") or "scalelab"


def _exec_quote(arg: str) -> str:
    """One argument of an ``Exec=`` line (Desktop Entry spec: quoting, then string escapes)."""
    arg = arg.replace("%", "%%")
    if any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return arg.replace("\\", "\\\\")


def desktop_entry(command: str) -> str:
    """``resources/scalelab.desktop`` with ``Exec=COMMAND %f`` and ``TryExec=COMMAND``."""
    lines = (RESOURCES / "scalelab.desktop").read_text(encoding="utf-8").splitlines()
    escaped = command.replace("\\", "\\\\")
    for i, line in enumerate(lines):
        if line.startswith("Exec="):
            lines[i] = f"Exec={_exec_quote(command)} %f"
        elif line.startswith("TryExec="):
            lines[i] = f"TryExec={escaped}"
    return "\n".join(lines) + "\n"


def install(prefix: Path | None = None, refresh: bool = True, command: str | None = None) -> list[Path]:
    """Copy the launcher files under ``prefix`` (default: the user's data home), the entry
    running ``command`` (default: :func:`launcher_command`); returns what was written."""
    prefix = Path(prefix) if prefix else data_home()
    command = command or launcher_command()
    targets = {
        RESOURCES / "scalelab.desktop": prefix / "applications" / "scalelab.desktop",
        RESOURCES / "icons" / "scalelab.svg": prefix / "icons" / "hicolor" / "scalable" / "apps" / "scalelab.svg",
        RESOURCES / "scalelab-mime.xml": prefix / "mime" / "packages" / "scalelab.xml",
    }
    written = []
    for source, target in targets.items():
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".desktop":
            target.write_text(desktop_entry(command), encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        written.append(target)
    if refresh:
        for tool, *args in (("update-mime-database", prefix / "mime"),
                            ("update-desktop-database", prefix / "applications"),
                            ("gtk-update-icon-cache", "-q", "-f", "-t", prefix / "icons" / "hicolor")):
            if shutil.which(tool):
                subprocess.run([tool, *map(str, args)], check=False, capture_output=True)
    return written


if __name__ == "__main__":
    for path in install(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
