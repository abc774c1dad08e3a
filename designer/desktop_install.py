"""Install the launcher for the current user (no root): ``scalelab --install-desktop``.

Copies ``resources/scalelab.desktop``, the app icon and the ``application/x-scalelab``
MIME type into ``$XDG_DATA_HOME`` (``~/.local/share``), then refreshes the desktop's
caches when their tools exist. ``Exec=scalelab`` needs the ``scalelab`` command on PATH
(``pip install .`` puts it there).
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


def install(prefix: Path | None = None, refresh: bool = True) -> list[Path]:
    """Copy the launcher files under ``prefix`` (default: the user's data home); returns what was written."""
    prefix = Path(prefix) if prefix else data_home()
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
        shutil.copyfile(source, target)
        written.append(target)
    if refresh:
        for tool, arg in (("update-mime-database", prefix / "mime"),
                          ("update-desktop-database", prefix / "applications"),
                          ("gtk-update-icon-cache", prefix / "icons" / "hicolor")):
            if shutil.which(tool):
                subprocess.run([tool, str(arg)], check=False, capture_output=True)
    return written


if __name__ == "__main__":
    for path in install(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
