"""``scalelab compare`` and ``scalelab sweep``: checked against separate ``simulate`` runs
and against queueing theory (M/M/1 and M/M/1/K closed forms)."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from simulation import cli
from simulation import sweep as sw
from simulation.fileformat import load, save
from simulation.state import FAILURE_CAUSES
from simulation.variant_run import Cancelled, run_variant
from tests.simulation.topologies import single_queue

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "resources" / "lessons"
STARTER = LESSONS / "starter.scalelab"
SCALING = LESSONS / "scaling_out.scalelab"
MU = 100.0


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and lines[0].startswith("scalelab: ")
    return lines[0]


def simulate_json(path: Path, seed: int, duration: float, tmp_path: Path, capsys) -> dict:
    out = tmp_path / f"{path.stem}-{seed}.json"
    assert cli.main(["simulate", str(path), "--seed", str(seed), "--duration", str(duration),
                     "--json", str(out), "--csv", str(out.with_suffix(".csv"))]) == 0
    capsys.readouterr()
    totals = json.loads(out.read_text())
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    totals["cost_server_s"] = sum(float(r["cost_server_s"]) * float(r["span_s"]) for r in rows)
    return totals


# ----- compare -----------------------------------------------------------------------------------
def test_compare_totals_are_two_separate_simulate_runs(tmp_path: Path, capsys) -> None:
    """Same seed and duration: A's and B's totals are exactly what `simulate` gives for each file."""
    out = tmp_path / "both.json"
    assert cli.main(["compare", str(STARTER), str(SCALING), "--seed", "3", "--duration", "20",
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    got = json.loads(out.read_text())
    a = simulate_json(STARTER, 3, 20, tmp_path, capsys)
    b = simulate_json(SCALING, 3, 20, tmp_path, capsys)
    assert got["seed"] == 3 and got["duration_s"] == 20
    for side, expected in (("A", a), ("B", b)):
        for key in ("arrived", "served", "failed", "failed_by_cause", "in_flight", "mean_ms", "p50_ms", "p95_ms",
                    "p99_ms", "sessions_lost", "stale_reads", "forged_accepted", "write_conflicts"):
            assert got[side][key] == expected[key], (side, key)
        assert got[side]["cost_server_s"] == pytest.approx(expected["cost_server_s"])
        done = expected["served"] + expected["failed"]
        assert got[side]["served_share"] == pytest.approx(expected["served"] / done)
    assert got["A"]["cost_server_s"] == pytest.approx(3 * 20)     # three web servers for 20 s
    diff = got["difference"]
    assert diff["arrived"] == b["arrived"] - a["arrived"]
    assert diff["p95_ms"] == pytest.approx(b["p95_ms"] - a["p95_ms"])
    assert diff["cost_server_s"] == pytest.approx(b["cost_server_s"] - a["cost_server_s"])
    # the printed table: A, B, B − A and the relative difference
    line = next(x for x in printed.splitlines() if x.startswith("arrived"))
    rel = (b["arrived"] - a["arrived"]) / a["arrived"] * 100
    assert line.split() == ["arrived", f"{a['arrived']:,}", f"{b['arrived']:,}",
                            f"{b['arrived'] - a['arrived']:+,}", f"{rel:+.1f}", "%"]
    assert "served share" in printed and "p99 latency" in printed and "cost (server-s)" in printed


def test_compare_runs_both_for_the_longer_duration_on_a_seed(tmp_path: Path, capsys) -> None:
    short, long_ = tmp_path / "short.scalelab", tmp_path / "long.scalelab"
    for path, duration, seed in ((short, 6, 11), (long_, 9, 5)):
        doc = load(STARTER)
        doc.set_settings(duration_s=duration, seed=seed)
        save(doc, path)
    out = tmp_path / "rows.csv"
    assert cli.main(["compare", str(short), str(long_), "--csv", str(out), "--json", str(tmp_path / "t.json")]) == 0
    got = json.loads((tmp_path / "t.json").read_text())
    assert got["duration_s"] == 9 and got["seed"] == 11          # the longer duration, A's seed
    rows = list(csv.DictReader(out.open()))
    head = out.read_text().splitlines()[0].split(",")
    assert head[:3] == ["variant", "time_s", "offered_rps"]
    assert {f"failed:{c}" for c in FAILURE_CAUSES} <= set(head) and "util:web1" in head
    assert [r["variant"] for r in rows] == ["A"] * 9 + ["B"] * 9
    assert [float(r["time_s"]) for r in rows[:9]] == list(range(1, 10))
    a = run_variant(load(short), 11, 9.0)
    assert [float(r["served_rps"]) for r in rows[:9]] == list(a.columns["served_rps"])
    assert sum(float(r["offered_rps"]) for r in rows[:9]) <= a.totals["arrived"]


def test_compare_errors_name_the_file_and_exit_codes(tmp_path: Path, capsys) -> None:
    data = json.loads(STARTER.read_text())
    data["nodes"][3]["params"]["capacity_rps"] = -5
    bad = tmp_path / "bad.scalelab"
    bad.write_text(json.dumps(data))
    assert cli.main(["compare", str(STARTER), str(bad)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f'scalelab: B ({bad}): node "{data["nodes"][3]["id"]}", capacity_rps: must be > 0, got -5'
    missing = tmp_path / "nope.scalelab"
    assert cli.main(["compare", str(missing), str(STARTER)]) == 1
    assert one_error_line(capsys.readouterr().err) == f"scalelab: A ({missing}): no such file"
    assert cli.main(["compare", str(STARTER)]) == 2                             # B is missing
    assert "required" in one_error_line(capsys.readouterr().err)
    assert cli.main(["compare", str(STARTER), str(SCALING), "--seed", "x"]) == 2
    one_error_line(capsys.readouterr().err)
    assert cli.main(["compare", str(STARTER), str(SCALING), "--duration", "-1"]) == 1
    assert "--duration" in one_error_line(capsys.readouterr().err)
    assert cli.main(["compare", str(STARTER), str(SCALING), "--csv", str(STARTER)]) == 1   # never over a lesson
    assert "lesson being read" in one_error_line(capsys.readouterr().err)


# ----- sweep against theory --------------------------------------------------------------------
def test_sweep_of_mm1_matches_theory_and_finds_the_knee() -> None:
    """One client → one exponential server (μ = 100/s, unbounded queue), λ = 5..85/s.

    Mean latency 1/(μ−λ) and p95 ln(20)/(μ−λ) (M/M/1 sojourn time is exponential). The
    knee rule (p95 above 3× its value at λ = 5, 31.5 ms) fires where ln20/(μ−λ) > 94.6 ms,
    i.e. λ > 68.3: at 75 (theory 120 ms), not at 65 (theory 86 ms)."""
    doc = single_queue(5, MU)
    vary = sw.resolve(doc, sw.parse_range("users.rate_rps=5:85:10"))
    assert vary.values == (5, 15, 25, 35, 45, 55, 65, 75, 85)
    points = sw.sweep(doc, vary, 1, 300.0)
    for p in points:
        lam = p.value
        assert p.throughput_rps == pytest.approx(lam, rel=4 / math.sqrt(lam * 300))   # 4 σ of a Poisson count
        assert p.failed_share == 0
        if 15 <= lam <= 65:
            assert p.latency("mean") == pytest.approx(1000 / (MU - lam), rel=0.04), lam
            assert p.latency("p95") == pytest.approx(1000 * math.log(20) / (MU - lam), rel=0.06), lam
    knee = sw.find_knee(points)
    assert knee is not None and knee.value == 75 and knee.reason == "p95"
    assert sw.knee_text(knee, vary, points) == (f"knee at rate_rps = 75: p95 jumps from {points[0].latency('p95'):,.0f} "
                                                f"ms to {points[7].latency('p95'):,.0f} ms")


def test_sweep_throughput_is_the_offered_load_then_the_capacity() -> None:
    """M/M/1/K (waiting room 50, K = 51): throughput λ(1 − P_K), P_K = (1−ρ)ρ^K / (1−ρ^{K+1});
    below capacity ≈ λ, above it ≈ μ, and the rejected share is P_K."""
    doc = single_queue(5, MU, queue_limit=50)
    vary = sw.resolve(doc, sw.parse_range("users.rate_rps=40:160:40"))
    points = sw.sweep(doc, vary, 2, 200.0)
    for p in points:
        rho, k = p.value / MU, 51
        p_k = (1 - rho) * rho ** k / (1 - rho ** (k + 1))
        assert p.offered_rps == pytest.approx(p.value, rel=0.03)
        assert p.throughput_rps == pytest.approx(p.value * (1 - p_k), rel=0.03)
        assert p.failed_share == pytest.approx(p_k, abs=0.015)
    assert points[-1].throughput_rps == pytest.approx(MU, rel=0.02)
    knee = sw.find_knee(points)
    assert knee is not None and knee.value == 120 and knee.reason == "both"     # 16.7 % rejected, p95 ~ 0.5 s


def test_each_point_is_the_file_run_on_its_own(tmp_path: Path, capsys) -> None:
    """A sweep point is a pure function of (document, seed, duration): the same totals as
    `simulate` of the file with that value written in."""
    doc = single_queue(30, MU)
    vary = sw.resolve(doc, sw.parse_range("web.capacity_rps=50:150:100"))
    points = sw.sweep(doc, vary, 4, 15.0)
    edited = single_queue(30, 150.0)
    path = tmp_path / "edited.scalelab"
    save(edited, path)
    expected = simulate_json(path, 4, 15, tmp_path, capsys)
    for key in ("arrived", "served", "failed", "p95_ms", "mean_ms"):
        assert points[1].totals[key] == expected[key]


def test_sweep_progress_and_cancel() -> None:
    doc = single_queue(50, MU)
    vary = sw.resolve(doc, sw.parse_range("users.rate_rps=10:50:10"))
    seen: list[tuple[float, float]] = []
    finished = []
    with pytest.raises(Cancelled):
        sw.sweep(doc, vary, 1, 5.0, progress=lambda d, t: seen.append((d, t)),
                 cancel=lambda: len(finished) >= 2, on_point=finished.append)
    assert [p.value for p in finished] == [10, 20]
    assert all(t == 25.0 for _, t in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == pytest.approx(10.0)


# ----- sweep on the command line ---------------------------------------------------------------
def test_sweep_cli_prints_a_line_per_value_the_knee_and_writes_the_csv(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "mm1.scalelab"
    save(single_queue(10, MU), path)
    out = tmp_path / "sweep.csv"
    monkeypatch.setenv("SCALELAB_PROGRESS_DELAY", "0")
    assert cli.main(["sweep", str(path), "--vary", "users.rate_rps=20:100:40", "--duration", "60", "--seed", "2",
                     "--csv", str(out), "--progress"]) == 0
    captured = capsys.readouterr()
    assert "sweeping [" in captured.err and "100.0%" in captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{path}: rate_rps of users at 3 values, 60 s each (seed 2)")
    table = [x.split() for x in lines[2:6]]
    assert table[0][:4] == ["rate_rps", "offered/s", "served/s", "p50"]
    assert [row[0] for row in table[1:]] == ["20", "60", "100"]
    assert lines[-3].startswith("knee at rate_rps = 100: ")          # ρ = 1: p95 explodes
    assert lines[-2].startswith("(knee: the first value where p95 exceeds 3×")
    assert lines[-1] == f"wrote {out}"
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == sw.CSV_COLUMNS
    assert [r["value"] for r in rows] == ["20", "60", "100"]
    assert [r["knee"] for r in rows] == ["0", "0", "1"]
    for r in rows:
        assert float(r["throughput_rps"]) == pytest.approx(int(r["served"]) / 60, rel=1e-5)
        assert float(r["offered_rps"]) == pytest.approx(int(r["arrived"]) / 60, rel=1e-5)


def test_sweep_by_label_and_integer_parameters(tmp_path: Path, capsys) -> None:
    doc = load(STARTER)
    users = next(n for n in doc.node_ids() if doc.kind(n) == "client")
    label = doc.node(users).label
    rng = sw.parse_range(f"{label}.rate_rps=50:100:50")
    assert sw.resolve(doc, rng).node_id == users
    web = next(n for n in doc.node_ids() if doc.kind(n) == "server")
    vary = sw.resolve(doc, sw.parse_range(f"{web}.replicas=3:1:-1"))
    assert vary.values == (3, 2, 1) and all(isinstance(v, int) for v in vary.values)
    assert sw.variant(doc, vary, 2).param(web, "replicas") == 2


@pytest.mark.parametrize("vary, code, message", [
    ("nobody.rate_rps=1:2:1", 1, "--vary nobody.rate_rps=1:2:1: there is no node 'nobody' (by id or label; ids: users, web)"),
    ("users.speed=1:2:1", 1, "--vary users.speed=1:2:1: a client has no parameter 'speed' (numeric ones: rate_rps, "),
    ("web.service=1:2:1", 1, "--vary web.service=1:2:1: service is not a numeric parameter (numeric ones of a server: "),
    ("users.rate_rps=a:10:1", 2, "--vary users.rate_rps=a:10:1: START 'a' is not a number"),
    ("users.rate_rps=1:10:x", 2, "--vary users.rate_rps=1:10:x: STEP 'x' is not a number"),
    ("users.rate_rps=-100:100:100", 1,
     '--vary users.rate_rps=-100:100:100: at rate_rps = -100: node "users", rate_rps: must be ≥ 0, got -100'),
    ("web.workers=1:2:0.5", 1, '--vary web.workers=1:2:0.5: at workers = 1.5: node "web", workers: must be an '
                               'integer, got 1.5'),
    ("users.rate_rps=1:1000:1", 2, "--vary users.rate_rps=1:1000:1 gives 1,000 values; at most 200 (use a larger STEP)"),
    ("users.rate_rps=10:1:1", 2, "--vary users.rate_rps=10:1:1: STEP 1 goes away from STOP (use -1)"),
    ("users.rate_rps=1:10:0", 2, "--vary users.rate_rps=1:10:0: STEP must not be 0"),
    ("rate_rps=1:10:1", 2, "--vary must look like NODE.PARAM=START:STOP:STEP"),
    ("users.rate_rps=1:10", 2, "--vary must look like NODE.PARAM=START:STOP:STEP"),
])
def test_invalid_vary_is_one_clear_line(tmp_path: Path, capsys, vary: str, code: int, message: str) -> None:
    path = tmp_path / "mm1.scalelab"
    doc = single_queue(10, MU)
    save(doc, path)
    assert cli.main(["sweep", str(path), "--vary", vary, "--duration", "5"]) == code
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"scalelab: {message}"), line
    assert capsys.readouterr().out == ""


def test_sweep_bad_file_and_missing_vary(tmp_path: Path, capsys) -> None:
    assert cli.main(["sweep", str(tmp_path / "none.scalelab"), "--vary", "users.rate_rps=1:2:1"]) == 1
    assert "no such file" in one_error_line(capsys.readouterr().err)
    assert cli.main(["sweep", str(STARTER)]) == 2
    assert "--vary" in one_error_line(capsys.readouterr().err)
