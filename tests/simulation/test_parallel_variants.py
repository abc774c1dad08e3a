"""``--jobs``: compare, sweep, check --empirical and grade run their independent runs in worker
processes (simulation/parallel.py) and give exactly the numbers of a serial run; Ctrl-C and
SIGTERM stop the workers with the usual exit codes; a refused variant is one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulation import cli
from simulation.fileformat import save
from simulation.parallel import cpu_count, run_tasks
from simulation.spof_measure import measure
from simulation.variant_run import Cancelled, run_variants
from tests.pool_workers import pool_workers
from tests.simulation.topologies import balanced, single_queue

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "resources" / "lessons"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def without_wall(text: str) -> str:
    """The printed report without the 'in 1.2 s' wall time and the 'wrote PATH' lines."""
    return "\n".join(line.split(" in ")[0] if i == 0 or "simulated each" in line else line
                     for i, line in enumerate(text.splitlines()) if not line.startswith("wrote "))


def test_default_jobs_is_every_core() -> None:
    args = cli.build_parser().parse_args(["sweep", "x.scalelab", "--vary", "a.b=1:2:1"])
    assert args.jobs == cpu_count() >= 1
    assert cpu_count() <= (os.cpu_count() or 1)


def test_compare_json_and_csv_identical_for_jobs_1_and_2(tmp_path: Path, capsys) -> None:
    a, b = LESSONS / "lb_demo.scalelab", LESSONS / "starter.scalelab"
    outs = {}
    for jobs in (1, 2):
        j, c = tmp_path / f"c{jobs}.json", tmp_path / f"c{jobs}.csv"
        code, out, _ = run_cli(["compare", str(a), str(b), "--duration", "15", "--jobs", str(jobs),
                                "--json", str(j), "--csv", str(c)], capsys)
        assert code == 0
        outs[jobs] = (j.read_bytes(), c.read_bytes(), without_wall(out))
    assert outs[1] == outs[2]
    data = json.loads(outs[2][0])
    assert data["A"]["arrived"] > 0 and data["B"]["arrived"] > 0 and data["A"] != data["B"]


def test_sweep_identical_for_jobs_1_and_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mm1.scalelab"
    save(single_queue(10, 100), path)
    got = {}
    for jobs in (1, 2):
        out_csv = tmp_path / f"s{jobs}.csv"
        code, out, _ = run_cli(["sweep", str(path), "--vary", "users.rate_rps=30:90:20", "--duration", "40",
                                "--jobs", str(jobs), "--csv", str(out_csv)], capsys)
        assert code == 0
        got[jobs] = (out_csv.read_text(), without_wall(out))
    assert got[1] == got[2]
    rows = got[2][0].splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["30", "50", "70", "90"]
    # the offered rate of each row is its own value (Poisson: within 5 σ over 40 s)
    for r in rows:
        value, offered = float(r.split(",")[0]), float(r.split(",")[1])
        assert abs(offered - value) < 5 * (value / 40) ** 0.5


def test_empirical_check_identical_for_jobs_1_and_2(capsys) -> None:
    lesson = str(LESSONS / "redundancy.scalelab")
    outs = [run_cli(["check", "--empirical", "8", lesson, "--jobs", str(j)], capsys) for j in (1, 3)]
    assert outs[0] == outs[1] and outs[0][0] == 0
    assert "full SPOF" in outs[0][1]


def test_measure_same_losses_in_processes() -> None:
    doc = balanced(300, 3, 200, "round_robin", database=True)
    seen: list[tuple[int, int]] = []
    serial = measure(doc, seconds=6, progress=lambda d, t: seen.append((d, t)))
    parallel = measure(doc, seconds=6, processes=2)
    assert serial == parallel
    runs = 2 * (len([n for n in doc.node_ids() if doc.kind(n) != "client"]) + 1)
    assert seen == [(i, runs) for i in range(1, runs + 1)]


def test_grade_identical_for_jobs_1_and_2(tmp_path: Path, capsys) -> None:
    lesson = LESSONS / "challenge_single_failure.scalelab"
    got = []
    for jobs in (1, 2):
        out = tmp_path / f"g{jobs}.json"
        code, _, _ = run_cli(["grade", str(lesson), "--duration", "20", "--jobs", str(jobs),
                              "--json", str(out)], capsys)
        assert code in (0, 1)
        got.append((code, out.read_text()))
    assert got[0] == got[1]
    goals = json.loads(got[0][1])["goals"]
    assert any(g["metric"] == "survives_any_single_failure" and g["measured"] is not None for g in goals)


def test_run_variants_progress_in_processes_adds_up() -> None:
    docs = [(f"v{i}", single_queue(20 + 10 * i, 100)) for i in range(3)]
    seen: list[tuple[float, float]] = []
    order: list[int] = []
    results = run_variants(docs, 5, 6.0, progress=lambda d, t: seen.append((d, t)),
                           done=lambda i, r: order.append(i), processes=2)
    serial = run_variants(docs, 5, 6.0)
    assert [r.totals for r in results] == [r.totals for r in serial]
    assert order == [0, 1, 2]
    done = [d for d, _ in seen]
    assert all(t == 18.0 for _, t in seen) and done == sorted(done) and done[-1] == 18.0


def test_a_refused_variant_is_one_line_in_both_modes(tmp_path: Path, capsys) -> None:
    doc = single_queue(50, 100)
    doc.set_params("web", {"replicas": 10_000, "queue_limit": 100})   # 10⁶ waiting places: allowed
    path = tmp_path / "wide.scalelab"
    save(doc, path)
    lines = []
    for jobs in (1, 2):   # queue_limit 4,000 × 10,000 replicas = 4·10⁷ waiting places: the engine refuses
        code, out, err = run_cli(["sweep", str(path), "--vary", "web.queue_limit=100:4000:3900", "--duration", "2",
                                  "--jobs", str(jobs)], capsys)
        assert code == 1 and out == ""
        errs = [line for line in err.splitlines() if line.strip()]
        assert len(errs) == 1 and "Traceback" not in err
        lines.append(errs[0])
    assert lines[0] == lines[1]
    assert lines[0].startswith("scalelab: queue_limit = 4000: ") and "at most 25,000,000" in lines[0]


def _boom(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad value {x}")
    return x * x


def test_run_tasks_order_and_first_error() -> None:
    assert run_tasks([(_boom, (i,)) for i in (1, 3, 4)], 2) == [1, 9, 16]
    with pytest.raises(ValueError, match="^bad value 2$"):
        run_tasks([(_boom, (i,)) for i in (1, 2, 3)], 2)


# ----- stopping ----------------------------------------------------------------------------------
def test_cancel_stops_the_worker_processes_and_keeps_the_points_already_given() -> None:
    """The designer's Load test cancels a sweep in processes: it stops within a poll of the
    cancel, not after the runs, and the points already handed out stay. Six runs of ~4 s each
    here (one hour simulated) on two workers; the cancel comes with the first point, when about
    four runs are still to do (two rounds), whatever the machine's speed."""
    docs = [(f"v{i}", single_queue(20 + 10 * i, 100)) for i in range(6)]
    before = pool_workers()
    given: list[int] = []
    asked: list[float] = []
    running: set[int] = set()

    def cancel() -> bool:
        running.update(pool_workers() - before)
        if given and not asked:
            asked.append(time.perf_counter())
        return bool(given)

    with pytest.raises(Cancelled):
        run_variants(docs, 5, 3600.0, done=lambda i, r: given.append(i), cancel=cancel, processes=2)
    stopped = time.perf_counter() - asked[0]
    assert stopped < 2.0, f"the workers took {stopped:.1f} s to stop after the cancel"
    assert given == list(range(len(given))) and 1 <= len(given) <= 3   # in order; half the runs not done
    assert len(running) == 2                      # the two workers were seen at work …
    assert not (pool_workers() & running)         # … and are gone (terminated and joined)


def _session(sid: int) -> list[int]:
    """Processes of the session ``sid`` (the CLI, the fork server, the workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _wait_for_workers(proc: subprocess.Popen) -> None:
    """Until ``proc``'s session holds it, the fork server and two workers (at most 60 s)."""
    deadline = time.monotonic() + 60
    while len(_session(proc.pid)) < 4 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    assert len(_session(proc.pid)) >= 4


def _assert_session_ends(proc: subprocess.Popen) -> None:
    """Every process of ``proc``'s session is gone within 10 s."""
    deadline = time.monotonic() + 10
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_signal_stops_workers_no_orphans(tmp_path: Path, sig: int, code: int, word: str) -> None:
    path = tmp_path / "mm1.scalelab"
    save(single_queue(500, 1000), path)
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "sweep", str(path), "--vary",
                             "users.rate_rps=100:800:100", "--duration", "100000", "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=ROOT)
    try:
        _wait_for_workers(proc)
        time.sleep(0.5)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code
    assert err.strip().splitlines()[-1] == f"scalelab: {word}" and "Traceback" not in err
    _assert_session_ends(proc)


# ----- the fork server loads the kernels once -----------------------------------------------------
def _kernels_loaded() -> tuple[int, int]:
    """In a worker, before it runs anything: how many kernels are loaded, of how many."""
    from simulation import compiled
    sampled = [k for k in compiled._REGISTRY if k.sample is not None]
    return sum(k.compiled for k in sampled), len(sampled)


def test_prepare_starts_the_server_early_and_its_workers_start_with_the_kernels_loaded(monkeypatch) -> None:
    """The designer calls prepare() when the Load test opens: the fork server starts at once and
    loads the compiled kernels, so each worker of every later pool forks with them loaded instead
    of paying 0.3–0.4 s to load them (conftest warms the cache before the session)."""
    from multiprocessing import forkserver

    from simulation import compiled, parallel
    if not compiled.cache_is_warm():
        pytest.skip("numba is not installed (or the cache could not be written)")
    forkserver._forkserver._stop()      # a server started earlier by other tests, without the kernels
    monkeypatch.setattr(parallel, "_kernels_in_server", False)
    parallel.prepare(kernels=True)
    assert forkserver._forkserver._forkserver_pid is not None           # started, before any pool
    for loaded, total in run_tasks([(_kernels_loaded, ()), (_kernels_loaded, ())], 2):
        assert total >= 10 and loaded == total
    forkserver._forkserver._stop()      # the next tests' pools start a server of their own


def test_a_kernel_that_fails_to_load_does_not_stop_the_fork_server(monkeypatch) -> None:
    import importlib

    from simulation import compiled, kernel_preload

    def broken() -> None:
        raise RuntimeError("a corrupt cache")
    monkeypatch.setattr(compiled, "cache_is_warm", lambda: True)
    monkeypatch.setattr(compiled, "load_all", broken)
    importlib.reload(kernel_preload)             # what the fork server does at its start: no exception
    calls = []
    monkeypatch.setattr(compiled, "cache_is_warm", lambda: False)
    monkeypatch.setattr(compiled, "load_all", lambda: calls.append(1))
    importlib.reload(kernel_preload)             # a cold cache: the workers compile what they use
    assert calls == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_of_a_killed_process_exit_by_themselves() -> None:
    """SIGKILL (or a crash) of the app during a Load test leaves nobody to stop its workers,
    whose parent is the fork server: each notices within a second and exits, and the fork
    server with them; nothing stays behind holding memory."""
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from simulation.variant_run import run_variants\n"
              "from tests.simulation.topologies import single_queue\n"
              "if __name__ == '__main__':\n"
              "    run_variants([(f'v{i}', single_queue(50, 100)) for i in range(4)], 1, 10**6, processes=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT)], start_new_session=True, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_workers(proc)
        proc.kill()
        proc.wait(timeout=10)
        _assert_session_ends(proc)
    finally:
        if _session(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
