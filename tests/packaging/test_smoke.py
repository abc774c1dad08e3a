"""``scalelab --smoke-test OUT.png [FILE]`` from the source tree (the bundle's test runs the same
in the built folder): it opens the lesson, runs it the asked simulated seconds and writes the
lesson snapshot; bad input ends it with one line and a non-zero code."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def smoke(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "share"), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path)


def test_the_starter_runs_and_its_snapshot_is_written(tmp_path: Path) -> None:
    out = tmp_path / "starter.png"
    done = smoke(tmp_path, "--smoke-test", str(out), "--smoke-seconds", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starter.scalelab: ran 4.0 s" in done.stdout and done.stderr == "", done.stdout + done.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 2400 and height > 1200


def test_bad_input_is_one_line_and_no_picture(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    missing = smoke(tmp_path, "--smoke-test", str(out), str(tmp_path / "nope.scalelab"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nope.scalelab" in missing.stderr
    zero = smoke(tmp_path, "--smoke-test", str(out), "--smoke-seconds", "0")
    assert zero.returncode == 2 and "--smoke-seconds must be > 0, got 0.0" in zero.stderr
    nowhere = smoke(tmp_path, "--smoke-test", str(tmp_path / "no" / "such" / "x.png"))
    assert nowhere.returncode == 1 and nowhere.stderr.count("\n") == 1 and "no such folder" in nowhere.stderr
    lesson = tmp_path / "mine.scalelab"
    lesson.write_bytes((ROOT / "resources" / "lessons" / "starter.scalelab").read_bytes())
    itself = smoke(tmp_path, "--smoke-test", str(lesson), str(lesson))   # never overwrite the lesson
    assert itself.returncode == 1 and "the lesson being read" in itself.stderr
    assert lesson.read_bytes() == (ROOT / "resources" / "lessons" / "starter.scalelab").read_bytes()
    assert not out.exists()
