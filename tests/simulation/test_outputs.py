"""Outputs never destroy anything: not the lesson being read, not each other, not a symlink,
a FIFO or a device; '-' is standard output; the umask holds; SIGTERM and SIGKILL leave no
temporary file for long; an unwritable output is refused before the run; --csv and --json
are written together or not at all."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simulation import cli, outputs
from simulation.fileformat import load, save

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "resources" / "lessons" / "starter.scalelab"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    path = tmp_path / "lesson.scalelab"
    path.write_bytes(STARTER.read_bytes())
    return path


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if outputs.TEMP_MARK in p.name)


def fake_export(document, run_seconds=None, svg=False):
    return b"\x89PNG new", (b"<svg>new</svg>" if svg else None)


# ----- an output that is an input, two outputs on one place --------------------------------------
@pytest.mark.parametrize("option", ["--csv", "--json"])
def test_simulate_refuses_to_write_over_the_lesson(option: str, lesson: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    before = lesson.read_bytes()
    monkeypatch.setattr(cli, "run_simulation", lambda *a, **k: pytest.fail("the run must not start"))
    assert cli.main(["simulate", str(lesson), option, str(lesson)]) == 1
    assert one_error_line(capsys.readouterr().err) == \
        f"scalelab: cannot write {lesson}: it is the lesson being read (give {option} another file)"
    assert lesson.read_bytes() == before


def test_the_lesson_is_recognised_through_a_symlink_a_hard_link_and_another_spelling(
        lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    before = lesson.read_bytes()
    (tmp_path / "soft.csv").symlink_to(lesson)
    os.link(lesson, tmp_path / "hard.csv")
    monkeypatch.chdir(tmp_path)
    for out in ("soft.csv", "hard.csv", "./lesson.scalelab", "../" + tmp_path.name + "/lesson.scalelab"):
        assert cli.main(["simulate", "lesson.scalelab", "--csv", out]) == 1
        assert "it is the lesson being read" in one_error_line(capsys.readouterr().err)
    assert lesson.read_bytes() == before


def test_export_refuses_to_write_over_the_lesson(lesson: Path, capsys: pytest.CaptureFixture) -> None:
    before = lesson.read_bytes()
    for args in (["--png", str(lesson)], ["--png", str(lesson.with_suffix(".png")), "--svg", str(lesson)]):
        assert cli.main(["export", str(lesson), *args], exporter=fake_export) == 1
        assert "it is the lesson being read" in one_error_line(capsys.readouterr().err)
    assert lesson.read_bytes() == before
    assert not lesson.with_suffix(".png").exists()


@pytest.mark.parametrize("command, first, second", [("simulate", "--csv", "--json"), ("export", "--png", "--svg")])
def test_two_outputs_on_one_path_are_refused(command: str, first: str, second: str, lesson: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.write_text("keep me")
    (tmp_path / "alias").symlink_to(out)
    for b in (str(out), str(tmp_path / "alias")):
        assert cli.main([command, str(lesson), first, str(out), second, b], exporter=fake_export) == 1
        assert one_error_line(capsys.readouterr().err) == \
            f"scalelab: cannot write {b}: {first} and {second} would both write it (give each its own file)"
    assert out.read_text() == "keep me"
    fresh = tmp_path / "fresh"
    assert cli.main([command, str(lesson), first, str(fresh), second, str(fresh)], exporter=fake_export) == 1
    assert "would both write it" in one_error_line(capsys.readouterr().err)
    assert not fresh.exists()
    assert cli.main([command, str(lesson), first, "-", second, "-"], exporter=fake_export) == 1
    assert one_error_line(capsys.readouterr().err) == \
        f"scalelab: cannot write standard output: {first} and {second} would both write it (give each its own file)"


def test_dev_null_may_take_both_outputs(lesson: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", os.devnull, "--json", os.devnull]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [f"wrote {os.devnull}", f"wrote {os.devnull}"]


# ----- symlinks, FIFOs, devices, standard output -------------------------------------------------
def test_a_symlinked_output_is_written_through(lesson: Path, tmp_path: Path) -> None:
    real = tmp_path / "results" / "run.csv"
    real.parent.mkdir()
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(Path("results") / "run.csv")  # relative, as people make them
    assert cli.main(["simulate", str(lesson), "--duration", "3", "--csv", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("results") / "run.csv")
    rows = list(csv.DictReader(io.StringIO(real.read_text())))
    assert [r["time_s"] for r in rows] == ["1", "2", "3"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert temporaries(tmp_path) == [] and temporaries(real.parent) == []


def test_a_dangling_symlink_gets_its_target_created(lesson: Path, tmp_path: Path) -> None:
    link = tmp_path / "summary.json"
    link.symlink_to(tmp_path / "later.json")
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--json", str(link)]) == 0
    assert link.is_symlink() and json.loads((tmp_path / "later.json").read_text())["duration_s"] == 2


def test_saving_a_symlinked_lesson_keeps_the_link(lesson: Path, tmp_path: Path) -> None:
    """The designer's Save (fileformat.save) replaces the link's target, not the link."""
    link = tmp_path / "shortcut.scalelab"
    link.symlink_to(lesson)
    doc = load(link)
    doc.set_meta(title="edited through the link")
    save(doc, link)
    assert link.is_symlink()
    assert load(lesson).meta["title"] == "edited through the link"


def test_a_fifo_output_is_written_to_directly(lesson: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert cli.main(["simulate", str(lesson), "--duration", "4", "--csv", str(fifo)]) == 0
    finally:
        thread.join(60)
        if thread.is_alive():  # the command never opened the FIFO: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not replaced by a file
    rows = list(csv.DictReader(io.StringIO(received[0].decode())))
    assert [r["time_s"] for r in rows] == ["1", "2", "3", "4"]
    assert temporaries(tmp_path) == []


def test_dash_writes_the_csv_to_standard_output_and_the_summary_to_stderr(lesson: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["simulate", str(lesson), "--duration", "3", "--csv", "-"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["time_s"] for r in rows] == ["1", "2", "3"]
    assert "arrived" in err and "wrote" not in err


def test_dash_as_a_process_with_the_json_in_a_pipe(lesson: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "main.py", "simulate", str(lesson), "--duration", "3", "--json", "-"],
                            cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["duration_s"] == 3 and summary["arrived"] == summary["served"] + summary["failed"] + \
        summary["in_flight"]
    assert b"arrived" in result.stderr


def test_a_reader_that_goes_away_ends_quietly(lesson: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(f"{sys.executable} main.py simulate {lesson} --duration 30 --csv - | head -c 40",
                            shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert len(result.stdout) == 40
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_full_device_is_an_error_naming_it(lesson: Path, capsys: pytest.CaptureFixture) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", "/dev/full"]) == 1
    assert one_error_line(capsys.readouterr().err) == "scalelab: cannot write /dev/full: No space left on device"


# ----- permissions -------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_new_outputs_follow_the_umask(mask: int, mode: int, lesson: Path, tmp_path: Path) -> None:
    old = os.umask(mask)
    try:
        assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", str(tmp_path / "a.csv"),
                         "--json", str(tmp_path / "a.json")]) == 0
        assert cli.main(["export", str(lesson), "--png", str(tmp_path / "a.png")], exporter=fake_export) == 0
        save(load(lesson), tmp_path / "copy.scalelab")
    finally:
        os.umask(old)
    for name in ("a.csv", "a.json", "a.png", "copy.scalelab"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_replaced_output_keeps_its_mode(lesson: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    out.write_text("old")
    os.chmod(out, 0o604)
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o604 and out.read_text().startswith("time_s,")


# ----- checked before the run --------------------------------------------------------------------
def _unwritable_folders(tmp_path: Path) -> list[Path]:
    folders = []
    if os.path.isdir("/proc/self"):
        folders.append(Path("/proc/self"))  # refuses new files, even to root
    if not IS_ROOT:
        locked = tmp_path / "locked"
        locked.mkdir()
        os.chmod(locked, 0o500)
        folders.append(locked)
    return folders


def test_an_unwritable_output_folder_is_refused_before_the_run(lesson: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "run_simulation", lambda *a, **k: pytest.fail("the run must not start"))
    folders = _unwritable_folders(tmp_path)
    assert folders
    for folder in folders:
        target = folder / "out.csv"
        assert cli.main(["simulate", str(lesson), "--csv", str(target)]) == 1
        assert one_error_line(capsys.readouterr().err).startswith(
            f"scalelab: cannot write {target}: cannot create a file in {folder}: ")
        assert cli.main(["export", str(lesson), "--png", str(target)],
                        exporter=lambda *a: pytest.fail("nothing must be rendered")) == 1
        assert "cannot create a file in" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(IS_ROOT, reason="root may write a read-only file")
def test_a_read_only_output_is_refused_before_the_run(lesson: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "frozen.csv"
    out.write_text("keep")
    os.chmod(out, 0o444)
    monkeypatch.setattr(cli, "run_simulation", lambda *a, **k: pytest.fail("the run must not start"))
    assert cli.main(["simulate", str(lesson), "--csv", str(out)]) == 1
    assert one_error_line(capsys.readouterr().err) == f"scalelab: cannot write {out}: the file is read-only"
    assert out.read_text() == "keep"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: None, "no such folder"),
])
def test_other_impossible_outputs_are_refused_before_the_run(make, message: str, lesson: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "x" if message != "no such folder" else tmp_path / "missing" / "x"
    make(target)
    monkeypatch.setattr(cli, "run_simulation", lambda *a, **k: pytest.fail("the run must not start"))
    assert cli.main(["simulate", str(lesson), "--json", str(target)]) == 1
    assert message in one_error_line(capsys.readouterr().err)


# ----- --csv and --json together or not at all ---------------------------------------------------
@pytest.mark.parametrize("existed", [True, False])
def test_when_the_second_rename_fails_the_first_is_taken_back(existed: bool, lesson: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    out_csv, out_json = tmp_path / "a.csv", tmp_path / "a.json"
    if existed:
        out_csv.write_text("old csv")
        out_json.write_text("old json")
    real_replace = os.replace
    calls = []

    def replace(src, dst, *args, **kwargs):
        calls.append(Path(dst).name)
        if Path(dst) == out_json and Path(src).name.startswith(".a.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", str(out_csv), "--json", str(out_json)]) == 1
    assert one_error_line(capsys.readouterr().err) == f"scalelab: cannot write {out_json}: No space left on device"
    assert calls[:2] == ["a.csv", "a.json"]  # the CSV had been renamed into place, then taken back
    if existed:
        assert out_csv.read_text() == "old csv" and out_json.read_text() == "old json"
    else:
        assert not out_csv.exists() and not out_json.exists()
    assert temporaries(tmp_path) == []


def test_both_outputs_appear_when_all_goes_well(lesson: Path, tmp_path: Path) -> None:
    out_csv, out_json = tmp_path / "a.csv", tmp_path / "a.json"
    out_csv.write_text("old csv")
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--csv", str(out_csv), "--json", str(out_json)]) == 0
    assert out_csv.read_text().startswith("time_s,") and json.loads(out_json.read_text())["duration_s"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "lesson.scalelab"]


# ----- temporary files: SIGTERM, SIGKILL, stale leftovers ----------------------------------------
SLOW_WRITER = """
import os, sys, time
from simulation import cli
real_fsync = os.fsync
def slow_fsync(fd):
    real_fsync(fd)
    sys.stderr.write("temporary file written\\n"); sys.stderr.flush()
    time.sleep(60)
os.fsync = slow_fsync
sys.exit(cli.main(sys.argv[1:]))
"""


def _stopped_while_writing(lesson: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Run ``simulate --csv OUT`` in a process whose write stalls with the temporary file on disk,
    and send it ``sig`` right then."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, "simulate", str(lesson), "--duration", "2",
                             "--csv", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stderr.readline()  # blocks until the temporary file exists (or the process ends)
    assert line == "temporary file written\n", line + proc.stderr.read()
    assert len(temporaries(out.parent)) == 1
    proc.send_signal(sig)
    out_text, err_text = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_text, line + err_text)


def test_sigterm_removes_the_temporary_file_and_says_so(lesson: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old")
    result = _stopped_while_writing(lesson, out, signal.SIGTERM)
    assert result.returncode == 128 + signal.SIGTERM
    assert result.stderr.splitlines()[1:] == ["scalelab: stopped by SIGTERM"]
    assert temporaries(tmp_path) == []
    assert out.read_text() == "old"


def test_after_sigkill_the_next_run_cleans_up(lesson: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = _stopped_while_writing(lesson, out, signal.SIGKILL)
    assert result.returncode == -signal.SIGKILL
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".out.csv.scalelab-tmp-")
    assert cli.main(["simulate", str(lesson), "--duration", "2", "--json", str(tmp_path / "other.json")]) == 0
    assert temporaries(tmp_path) == []


def test_only_leftovers_of_dead_processes_are_cleaned(tmp_path: Path) -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for pid in (alive.pid, dead.pid):
            (tmp_path / f".x.csv{outputs.TEMP_MARK}{pid}-0123abcd").write_text("partial")
        (tmp_path / ".x.csv.tmp").write_text("not ours")
        (tmp_path / f".x.csv{outputs.TEMP_MARK}{dead.pid}-nothex").write_text("not our pattern")
        removed = outputs.clean_stale(str(tmp_path))
        assert removed == [f".x.csv{outputs.TEMP_MARK}{dead.pid}-0123abcd"]
        old = time.time() - outputs.STALE_AFTER_S - 60
        os.utime(tmp_path / f".x.csv{outputs.TEMP_MARK}{alive.pid}-0123abcd", (old, old))
        assert outputs.clean_stale(str(tmp_path)) == [f".x.csv{outputs.TEMP_MARK}{alive.pid}-0123abcd"]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".x.csv.tmp",
                                                                     f".x.csv{outputs.TEMP_MARK}{dead.pid}-nothex"])
    finally:
        alive.kill()
        alive.wait()


def test_sigterm_during_the_run_exits_143_with_one_line(lesson: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SCALELAB_PROGRESS_DELAY="0")
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "main.py", "simulate", str(lesson), "--duration", "100000",
                             "--progress", "--csv", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stderr.read(12) == b"\rsimulating "  # the run has started
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.decode().splitlines()[-1] == "scalelab: stopped by SIGTERM"
    assert not out.exists() and temporaries(tmp_path) == []


def test_a_signal_during_the_renames_waits_until_both_are_in_place(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM between the two renames must not leave one new file and one old: it is held
    until the pair is in place (or put back), then stops the command."""
    a, b = tmp_path / "a.csv", tmp_path / "b.json"
    a.write_text("old a")
    b.write_text("old b")
    real_replace = os.replace

    def replace_then_signal(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst) == a:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(outputs.Stopped) as info:
        with outputs.stop_on_signals():
            outputs.write_outputs([(outputs.plan(a), b"new a"), (outputs.plan(b), b"new b")])
            for _ in range(1000):  # the signal arrives at the latest here, on the way out
                pass
    assert info.value.name == "SIGTERM"
    assert a.read_text() == "new a" and b.read_text() == "new b"
    assert temporaries(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


@pytest.mark.parametrize("existed", [True, False])
def test_an_io_error_at_any_step_leaves_both_old_or_both_new(existed: bool, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite-style fault injection: the k-th file-system call of a two-file write fails, for
    every k until the write gets through. Each time, either the write raised an error naming
    one of the outputs and both files are as before, or it returned and both are new; never a
    temporary file left."""
    a, b = tmp_path / "a.csv", tmp_path / "b.json"
    names = {str(a), str(b)}
    calls = {"n": 0, "fail_at": 0}

    def failing(real):
        def call(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == calls["fail_at"]:
                raise OSError(5, "Input/output error")
            return real(*args, **kwargs)
        return call

    for name in ("open", "fdopen", "fsync", "chmod", "link", "replace", "unlink"):
        monkeypatch.setattr(os, name, failing(getattr(os, name)))
    outcomes = set()
    for k in range(1, 60):
        if existed:
            a.write_text("old a")
            b.write_text("old b")
        else:
            for p in (a, b):
                if p.exists():
                    p.unlink()
        targets = [outputs.plan(a), outputs.plan(b)]
        calls.update(n=0, fail_at=k)
        try:
            outputs.write_outputs([(targets[0], b"new a"), (targets[1], b"new b")])
        except OSError as e:
            assert e.filename in names and isinstance(e, outputs.OutputError), e
            state = (a.read_text() if a.exists() else None, b.read_text() if b.exists() else None)
            assert state == (("old a", "old b") if existed else (None, None)), (k, state)
            outcomes.add("refused")
        else:
            assert (a.read_text(), b.read_text()) == ("new a", "new b"), k
            outcomes.add("written")
        left = {str(tmp_path / name) for name in temporaries(tmp_path)}
        assert left <= outputs.registered(), k  # only a failed removal leaves one: retried at exit
        calls["fail_at"] = 0
        outputs.remove_registered()
        assert temporaries(tmp_path) == [], k
        if calls["n"] < k:  # the k-th call never came: every step has been tried
            break
    else:
        pytest.fail("the write never got through")
    assert outcomes == {"refused", "written"}


def test_dev_stdout_redirected_to_a_file_gets_the_whole_csv(lesson: Path, tmp_path: Path) -> None:
    """`--csv /dev/stdout > out.txt`: written through the shell's descriptor (reopening
    /dev/stdout would start at offset 0 again and the summary would overwrite the CSV)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        result = subprocess.run([sys.executable, "main.py", "simulate", str(lesson), "--duration", "3",
                                 "--csv", "/dev/stdout"], cwd=ROOT, env=env, stdout=stdout,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["time_s"] for r in rows] == ["1", "2", "3"]
    assert "arrived" in result.stderr


def test_an_open_descriptor_is_written_through(lesson: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "fd.json"
    with open(path, "wb") as f:
        f.write(b"already there\n")
        f.flush()
        assert cli.main(["simulate", str(lesson), "--duration", "2", "--json", f"/dev/fd/{f.fileno()}"]) == 0
    head, body = path.read_text().split("\n", 1)
    assert head == "already there" and json.loads(body)["duration_s"] == 2
    closed = next(n for n in range(900, 1000) if not _is_open(n))
    assert cli.main(["simulate", str(lesson), "--json", f"/dev/fd/{closed}"]) == 1
    assert one_error_line(capsys.readouterr().err) == f"scalelab: cannot write /dev/fd/{closed}: is not open in this process"


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
