"""The launcher for a pip install or a bundle: the installed .desktop entry runs the app by its
absolute path with the double-clicked file (%f), the .scalelab type is registered, and the
desktop's own tools (xdg-mime, xdg-open, gio, desktop-file-validate) agree, each test
skipping where its tool is missing."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from designer import desktop_install
from designer.desktop_install import desktop_entry, install, launcher_command
from designer.lessons import LESSONS_DIR

MIME = "application/x-scalelab"
# A folder name that needs every kind of quoting the Desktop Entry spec has.
AWKWARD = 'my apps/100% "real" $HOME `x` \\ (1)'


def entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def fake_app(folder: Path, record: Path) -> Path:
    """An executable that writes its arguments, one a line, to ``record``: the 'app' a double-click starts."""
    folder.mkdir(parents=True, exist_ok=True)
    app = folder / "ScaleLab"
    app.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n', encoding="utf-8")
    app.chmod(0o755)
    return app


@pytest.fixture
def desktop_env(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """XDG folders in tmp_path, and no desktop environment (xdg-utils take their generic path)."""
    dirs = {name: tmp_path / name for name in ("data", "config", "home")}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(dirs["data"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["config"]))
    monkeypatch.setenv("HOME", str(dirs["home"]))
    for var in ("XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION", "GNOME_DESKTOP_SESSION_ID", "DE",
                "XDG_SESSION_DESKTOP"):
        monkeypatch.delenv(var, raising=False)
    return dirs


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: xdg-utils, desktop-file-utils, shared-mime-info, "
                    "libfile-mimeinfo-perl, libglib2.0-bin)")


# ----- what install() writes (no tools needed) -------------------------------------------------
def test_the_entry_runs_the_given_command_with_the_file(tmp_path: Path) -> None:
    command = str(tmp_path / "opt" / "ScaleLab")
    written = install(tmp_path / "share", refresh=False, command=command)
    assert sorted(p.relative_to(tmp_path / "share").as_posix() for p in written) == [
        "applications/scalelab.desktop", "icons/hicolor/scalable/apps/scalelab.svg", "mime/packages/scalelab.xml"]
    section = entry(tmp_path / "share" / "applications" / "scalelab.desktop")
    assert section["Exec"] == f"{command} %f" and section["TryExec"] == command
    assert section["MimeType"].split(";")[0] == MIME and section["Icon"] == "scalelab"
    mime = (tmp_path / "share" / "mime" / "packages" / "scalelab.xml").read_text(encoding="utf-8")
    assert f'type="{MIME}"' in mime and 'pattern="*.scalelab"' in mime


def test_a_path_with_spaces_and_specials_is_quoted_as_the_spec_says() -> None:
    command = f"/home/{AWKWARD}/ScaleLab"
    line = next(l for l in desktop_entry(command).splitlines() if l.startswith("Exec="))
    # Undo the two layers by hand: the string escapes (\\ → \), then the quoting (\" \` \$ \\ → the char).
    value = line[len("Exec="):].replace("\\\\", "\\")
    assert value.startswith('"') and value.endswith('" %f')
    quoted = value[1:-len('" %f')]
    unquoted, i = [], 0
    while i < len(quoted):
        if quoted[i] == "\\":
            assert quoted[i + 1] in '"`$\\'
            i += 1
        else:
            assert quoted[i] not in '"`$\\'   # each of these must be escaped
        unquoted.append(quoted[i])
        i += 1
    assert "".join(unquoted) == command.replace("%", "%%")


def test_the_command_is_the_script_beside_this_python_or_the_bundle(monkeypatch, tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "scalelab"
    if beside.is_file():       # a venv or an install with its scripts: a desktop session's PATH lacks them
        assert launcher_command() == str(beside.absolute())
    bundle = tmp_path / "ScaleLab"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle))
    assert launcher_command() == str(bundle)
    assert desktop_install.launcher_command is launcher_command


# ----- the desktop's tools ---------------------------------------------------------------------
def test_desktop_file_validate_accepts_the_entry(tmp_path: Path) -> None:
    need("desktop-file-validate")
    install(tmp_path, refresh=False, command=f"/home/{AWKWARD}/ScaleLab")
    done = subprocess.run(["desktop-file-validate", str(tmp_path / "applications" / "scalelab.desktop")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "error" not in done.stdout.lower(), done.stdout + done.stderr


def test_xdg_mime_knows_the_type_and_its_default_app(desktop_env, tmp_path: Path) -> None:
    need("xdg-mime", "update-mime-database", "update-desktop-database")
    if shutil.which("mimetype") is None:
        pytest.skip("mimetype not installed (libfile-mimeinfo-perl): xdg-mime would ask `file`, "
                    "which does not read the shared MIME database")
    install(refresh=True, command=str(tmp_path / "ScaleLab"))   # into $XDG_DATA_HOME
    assert f"{MIME}:*.scalelab" in (desktop_env["data"] / "mime" / "globs2").read_text(encoding="utf-8")
    lesson = desktop_env["home"] / "a lesson.scalelab"
    shutil.copyfile(LESSONS_DIR / "starter.scalelab", lesson)
    query = lambda *args: subprocess.run(["xdg-mime", "query", *args], capture_output=True, text=True,
                                         timeout=60).stdout.strip()
    assert query("filetype", str(lesson)) == MIME
    assert query("default", MIME) == "scalelab.desktop"


def test_xdg_open_a_lesson_starts_the_app_with_it(desktop_env, tmp_path: Path, monkeypatch) -> None:
    """What a file manager's double-click does where no desktop environment answers (generic xdg-open)."""
    need("xdg-open", "xdg-mime", "mimetype", "update-mime-database", "update-desktop-database")
    record = tmp_path / "opened.txt"
    app = fake_app(tmp_path / "opt", record)     # xdg-open's generic path splits Exec on spaces: a plain path
    install(refresh=True, command=str(app))
    lesson = desktop_env["home"] / "a lesson.scalelab"
    shutil.copyfile(LESSONS_DIR / "starter.scalelab", lesson)
    monkeypatch.setenv("DISPLAY", ":0")     # xdg-open asks the desktop's apps only with a display
    subprocess.run(["xdg-open", str(lesson)], capture_output=True, timeout=60, check=True)
    assert record.read_text(encoding="utf-8").splitlines() == [str(lesson)]


def test_gio_launches_the_entry_with_the_file_from_an_awkward_folder(desktop_env, tmp_path: Path) -> None:
    """GLib (GNOME's file manager) parses Exec= by the spec: quoting and escapes included (but
    not a '%' in the program's path: GLib checks that path before it expands %%)."""
    need("gio")
    record = tmp_path / "opened.txt"
    app = fake_app(tmp_path / AWKWARD.replace("100% ", ""), record)
    install(refresh=False, command=str(app))
    lesson = desktop_env["home"] / "100% $x.scalelab"
    shutil.copyfile(LESSONS_DIR / "starter.scalelab", lesson)
    done = subprocess.run(["gio", "launch", str(desktop_env["data"] / "applications" / "scalelab.desktop"),
                           str(lesson)], capture_output=True, text=True, timeout=60)
    if "Unknown command" in done.stderr:
        pytest.skip("this gio has no `launch` (GLib < 2.72)")
    assert done.returncode == 0, done.stderr
    for _ in range(100):          # gio does not wait for the app
        if record.exists() and record.read_text(encoding="utf-8"):
            break
        subprocess.run(["sleep", "0.05"])
    assert record.read_text(encoding="utf-8").splitlines() == [str(lesson)]
