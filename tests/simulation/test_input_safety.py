"""Inputs are read safely: only regular files, at most the size limit actually read, and
every malformed file gets one clean line naming its place — never "internal error", a
traceback or an exception's class name. Fuzzed over the JSON structure and over the bytes."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation import cli, file_input
from simulation.fileformat import load, loads
from simulation.params import FormatError

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "resources" / "lessons").glob("*.scalelab"))
STARTER = ROOT / "resources" / "lessons" / "starter.scalelab"
PYTHON_ERRORS = re.compile(r"\b(Type|Value|Key|Attribute|Overflow|Index|Recursion|Memory|ZeroDivision|Assertion|"
                           r"Unicode\w*|Lookup|Runtime|NotImplemented|Name)Error\b|Traceback|internal error|"
                           r"set_int_max_str_digits")


def assert_clean_outcome(code: int, err: str) -> None:
    """Exit 0 with nothing on stderr, or exit 1 with exactly one clean line."""
    assert code in (0, 1), (code, err)
    lines = err.splitlines()
    if code == 0:
        assert lines == [], err
        return
    assert len(lines) == 1, err
    assert lines[0].startswith("scalelab: ") and len(lines[0]) < 2000, err
    assert not PYTHON_ERRORS.search(lines[0]), err


def check_in_process(path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = cli.main(["check", str(path)])
    return code, capsys.readouterr().err


# ----- special files -----------------------------------------------------------------------------
def run_check_limited(target: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``scalelab check TARGET`` in a process that may not use more than 1 GB: reading /dev/zero
    to the end would fail with MemoryError instead of swapping the machine."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
            "from simulation import cli\n"
            "sys.exit(cli.main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code, "check", target], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("device, words", [("/dev/zero", "is a device"), ("/dev/urandom", "is a device"),
                                           ("/dev/null", "is a device")])
def test_a_device_is_refused_without_reading_it(device: str, words: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    result = run_check_limited(device)
    assert result.returncode == 1
    assert result.stderr == f"scalelab: {device}: {words}, not a lesson file\n"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "lesson.scalelab"
    os.mkfifo(fifo)
    result = run_check_limited(str(fifo))  # a blocking open would wait forever: the timeout fails the test
    assert result.returncode == 1
    assert result.stderr == f"scalelab: {fifo}: is a pipe (FIFO), not a lesson file\n"


def test_a_fifo_full_of_data_is_refused_without_reading_any(tmp_path: Path) -> None:
    """A writer has filled the FIFO: the loader refuses it and takes nothing out of it."""
    fifo = tmp_path / "full.scalelab"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that a writer may open
    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        written = 0
        while True:  # until the pipe is full
            try:
                written += os.write(writer, b"[" * 4096)
            except BlockingIOError:
                break
        assert written >= 4096
        with pytest.raises(FormatError, match="is a pipe"):
            load(fifo)
        left = 0
        while True:
            try:
                chunk = os.read(reader, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            left += len(chunk)
        assert left == written
    finally:
        os.close(writer)
        os.close(reader)


def test_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"scalelab: {tmp_path}: is a folder, not a lesson file\n"


def test_no_more_than_the_limit_is_read_whatever_the_size_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc files claim a size of 0; the reading itself stops at the limit."""
    status = Path("/proc/self/status")
    if not status.exists() or status.stat().st_size != 0:
        pytest.skip("needs a Linux /proc")
    monkeypatch.setattr(file_input, "MAX_FILE_BYTES", 100)
    with pytest.raises(FormatError, match=r"file is too large \(0\.0 MB; at most 0 MB\)"):
        load(status)
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(FormatError):
        load(status)
    assert sum(reads) <= 101


def test_a_node_id_with_a_final_newline_never_reaches_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = json.loads(STARTER.read_text())
    data["nodes"][2]["id"] = "web1\n"
    for edge in data["edges"]:
        for end in ("source", "target"):
            if edge[end] == "web1":
                edge[end] = "web1\n"
    path = tmp_path / "newline.scalelab"
    path.write_text(json.dumps(data))
    out = tmp_path / "out.csv"
    assert cli.main(["simulate", str(path), "--duration", "2", "--csv", str(out)]) == 1
    assert capsys.readouterr().err == \
        "scalelab: node #3, id: must be 1–64 letters, digits, '_', '.' or '-', got \"web1\\n\"\n"
    assert not out.exists()


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["nodes"][0]["params"].update(pattern={"type": ["ramp"]}),
     'scalelab: node "users", pattern.type: must be one of "constant", "ramp", "spike", "diurnal", "steps", '
     'got a list'),
    (lambda d: d["nodes"][0].update(params="fast"), 'scalelab: node "users", params: must be an object, got a string'),
    (lambda d: d["nodes"][2]["params"].update(capacity_rps=1e308),
     'scalelab: node "web1", capacity_rps: must be ≤ 1000000, got 1e+308'),
])
def test_the_issue_examples_give_located_messages(mutate, expected: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    data = json.loads(STARTER.read_text())
    mutate(data)
    path = tmp_path / "x.scalelab"
    path.write_text(json.dumps(data))
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err == expected + "\n"


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_integers_give_located_messages(digits: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = STARTER.read_text().replace('"users": 2000', '"users": ' + "7" * digits)
    path = tmp_path / "x.scalelab"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err == \
        f'scalelab: node "users", users: must be a number of reasonable size, got a number with {digits:,} digits\n'


def test_too_many_users_names_the_clients(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nodes = [{"id": f"group{i}", "kind": "client", "params": {"users": 10_000_000}} for i in range(6)]
    nodes.append({"id": "s", "kind": "server"})
    data = {"format": "scalelab", "version": 1, "nodes": nodes,
            "edges": [{"source": f"group{i}", "target": "s"} for i in range(6)]}
    path = tmp_path / "crowd.scalelab"
    path.write_text(json.dumps(data))
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err == (
        'scalelab: users of client "group0" (10,000,000), client "group1" (10,000,000), client "group2" '
        '(10,000,000), client "group3" (10,000,000), ...: too many in all (60,000,000); at most 50,000,000\n')


# ----- fuzzing: the JSON structure ---------------------------------------------------------------
RAW_TOKENS = ["1" * 400, "-" + "9" * 5000, "1e400", "-1e400", "NaN", "Infinity", "-0", "1e-400", "1.5e308",
              "12345678901234567890123", "0.1"]

json_leaves = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.integers()
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
               | st.sampled_from(["client", "server", "database", "cache", "load_balancer", "constant", "ramp",
                                  "steps", "fail", "recover", "users", "web1", "db", "lb", "round_robin"]))
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=8)


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in ``value``, deepest first (so that shrinking heads for a small change)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, prefix + (i,))
    return out + [prefix]


def get(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


@st.composite
def mutated_lessons(draw: st.DrawFn) -> str:
    """A built-in lesson with one to three structural mutations, as text."""
    data = json.loads(draw(st.sampled_from(LESSONS)).read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    raw: dict[str, str] = {}
    for n in range(draw(st.integers(1, 3))):
        paths = paths_of(data)
        in_params = [p for p in paths if "params" in p[:-1]]  # where validation has most to say
        path = draw(st.sampled_from(in_params if in_params and draw(st.booleans()) else paths))
        op = draw(st.sampled_from(["replace", "raw", "delete", "duplicate", "rename", "wrap"]))
        parent = get(data, path[:-1]) if path else None
        key = path[-1] if path else None
        if op == "replace" or not path:
            value = draw(json_values)
            if path:
                parent[key] = value
            else:
                data = value
        elif op == "raw":
            marker = f"@@raw{n}@@"
            raw[json.dumps(marker)] = draw(st.sampled_from(RAW_TOKENS))
            parent[key] = marker
        elif op == "delete":
            del parent[key]
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"value": parent[key]}
        elif isinstance(parent, dict):
            marker = f"@@key{n}@@"
            new_key = key if op == "duplicate" else draw(st.text(max_size=10))
            raw[json.dumps(marker)] = json.dumps(new_key)
            parent[marker] = draw(json_values) if op == "rename" else copy.deepcopy(parent[key])
            if op == "rename":
                del parent[key]
        else:  # a list item: duplicate it
            parent.insert(key, copy.deepcopy(parent[key]))
        if not isinstance(data, (dict, list)):
            break
    text = json.dumps(data, ensure_ascii=False)
    for marker, token in raw.items():
        text = text.replace(marker, token)
    return text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(text=mutated_lessons())
def test_fuzzed_structure_gives_one_clean_line(text: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "fuzzed.scalelab"
    path.write_text(text, encoding="utf-8")
    assert_clean_outcome(*check_in_process(path, capsys))


# ----- fuzzing: the bytes ------------------------------------------------------------------------
@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(LESSONS)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b"[", b"{", b'"', b"\\", b"\xff", b"\xef\xbb\xbf", b"\x00", b"1" * 500, b"\n", b"\xe2\x80"]))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(LESSONS)).read_bytes()
            start = draw(st.integers(0, len(other) - 1))
            data[at:at] = other[start:start + draw(st.integers(1, 200))]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=mutated_bytes() | st.binary(max_size=200))
def test_fuzzed_bytes_give_one_clean_line(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "fuzzed.scalelab"
    path.write_bytes(data)
    assert_clean_outcome(*check_in_process(path, capsys))


@settings(max_examples=300, deadline=None)
@given(mutated_lessons())
def test_the_loader_raises_nothing_but_format_errors(text: str) -> None:
    """The designer's Open shows a FormatError's message in its dialog; anything else would be a
    "TypeError: ..." dialog."""
    try:
        loads(text)
    except FormatError as e:
        assert "\n" not in str(e) and not PYTHON_ERRORS.search(str(e)), str(e)


# ----- every place, every wrong type (systematic) --------------------------------------------------
WRONG_VALUES: list[Any] = [None, True, 0, -1, 2.5, 1e308, "x", "", [], [1], {}, {"type": "ramp"}, {"type": ["ramp"]}]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_every_place_with_every_wrong_type_gives_a_located_message(lesson: Path) -> None:
    """Each value of the lesson replaced in turn by each of WRONG_VALUES: the loader and the
    compiler answer with a FormatError or a SimulationError (a ValueError) whose one line
    carries no Python exception name — or accept the file."""
    from simulation.compiler import compile_document
    data = json.loads(lesson.read_text(encoding="utf-8"))
    tried = 0
    for path in paths_of(data)[:-1]:
        for wrong in WRONG_VALUES:
            changed = copy.deepcopy(data)
            get(changed, path[:-1])[path[-1]] = wrong
            try:
                compile_document(loads(json.dumps(changed)))
            except ValueError as e:  # FormatError and SimulationError
                assert "\n" not in str(e) and not PYTHON_ERRORS.search(str(e)), (path, wrong, str(e))
            tried += 1
    assert tried > 100
