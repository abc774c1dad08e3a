"""PySide6 6.12.0 corrupts the refcount of None on Python 3.11 and aborts the process
("Fatal Python error: none_dealloc") after ~200,000 calls that return None. The pin in
pyproject.toml excludes it; this test makes sure an upgrade cannot bring it back."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

CALLS = 300_000


def test_installed_pyside6_is_not_the_broken_release() -> None:
    installed = version("PySide6-Essentials") if _has("PySide6-Essentials") else version("PySide6")
    assert installed != "6.12.0"
    import PySide6
    assert PySide6.__version__ != "6.12.0"


def _has(dist: str) -> bool:
    try:
        version(dist)
    except Exception:
        return False
    return True


def test_many_calls_returning_none_do_not_abort() -> None:
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication, QGraphicsEllipseItem\n"
        "app = QApplication([])\n"
        "item = QGraphicsEllipseItem(0, 0, 10, 10)\n"
        f"for i in range({CALLS}):\n"
        "    item.setPos(i % 100, i % 7)\n"
        "print('ok', item.pos().x())\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "none_dealloc" not in result.stderr
    assert result.stdout.startswith("ok ")


def test_the_pin_in_pyproject_excludes_the_broken_release() -> None:
    import re
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    # (a regex rather than tomllib, which Python 3.10 lacks)
    deps = re.findall(r'^\s*"(PySide6[^"]*)"', pyproject.read_text(encoding="utf-8"), flags=re.MULTILINE | re.I)
    pyside = [Requirement(d) for d in deps]
    assert pyside, "PySide6 is not declared in pyproject.toml"
    for req in pyside:
        assert not req.specifier.contains("6.12.0"), f"{req} allows the none_dealloc release"
        assert req.specifier.contains("6.11.3"), f"{req} excludes the known-good release"
