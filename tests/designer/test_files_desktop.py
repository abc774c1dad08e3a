"""The desktop launcher: .desktop entry, icon and file type install for one user."""
from __future__ import annotations

import configparser

from designer.desktop_install import install
from designer.lessons import RESOURCES


def test_desktop_entry_is_complete():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(RESOURCES / "scalelab.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Exec"] == "scalelab %f"
    assert section["Icon"] == "scalelab" and "application/x-scalelab" in section["MimeType"]
    assert (RESOURCES / "icons" / "scalelab.svg").exists()


def test_install_for_one_user(tmp_path):
    written = install(tmp_path, refresh=False)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == ["applications/scalelab.desktop", "icons/hicolor/scalable/apps/scalelab.svg",
                     "mime/packages/scalelab.xml"]
    assert "*.scalelab" in (tmp_path / "mime/packages/scalelab.xml").read_text()
