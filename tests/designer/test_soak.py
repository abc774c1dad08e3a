"""Soak: for a few minutes the designer opens every built-in lesson and a set of big
valid files, runs each, fails and recovers a node, saves and reopens it, while an
event-loop heartbeat watches that the window keeps answering and /proc watches that
memory stays bounded.

About a minute by default; ``SCALELAB_SOAK_S=600`` soaks for ten.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from simulation.fileformat import dumps, load
from tests.designer.main_window_support import LESSONS, Dialogs, open_main_window
from tests.designer.responsiveness import Heartbeat, lesson, open_from_loop, write_lesson

SOAK_S = float(os.environ.get("SCALELAB_SOAK_S", "40"))
MAX_GAP_S = 1.5            # generous for a loaded 2-core machine; an idle one answers within ~0.3 s
MAX_GROWTH_MB = 150.0      # resident memory may not keep growing round after round


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS in /proc/self/status")


def wide_lesson(servers: int) -> dict:
    """A client, a load balancer, ``servers`` servers and a database."""
    data = lesson()
    nodes = [n for n in data["nodes"] if n["kind"] in ("client", "load_balancer", "database")]
    data["edges"] = [{"source": "users", "target": "lb"}]
    for i in range(servers):
        nodes.append({"id": f"s{i}", "kind": "server", "label": f"S {i}", "x": 460 + 80 * (i % 20),
                      "y": 40 * (i // 20), "params": {"capacity_rps": 10}})
        data["edges"] += [{"source": "lb", "target": f"s{i}"}, {"source": f"s{i}", "target": "db"}]
    data["nodes"] = nodes
    return data


def big_files(folder: Path) -> list[Path]:
    return [
        write_lesson(folder / "events5k.scalelab", lesson(events=5000)),
        write_lesson(folder / "notes.scalelab", lesson(notes="A word or two, **bold**, and more.\n\n" * 6000)),
        write_lesson(folder / "heavy.scalelab", lesson(rate=100_000)),
        write_lesson(folder / "wide.scalelab", wide_lesson(300)),
    ]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc")
def test_soak_open_run_fail_recover_save_reopen(qtbot, tmp_path, monkeypatch):
    dialogs = Dialogs(monkeypatch)
    window = open_main_window(qtbot, tmp_path, monkeypatch)
    window.plots  # noqa: B018 - built before measuring
    files = sorted(LESSONS.glob("*.scalelab")) + big_files(tmp_path)
    beat = Heartbeat().start()
    start, rounds, warm_rss, worst = time.monotonic(), 0, None, (0.0, "")
    while rounds < 2 or time.monotonic() - start < SOAK_S:
        for path in files:
            beat.reset()
            assert open_from_loop(qtbot, window, path), path.name
            doc = window.controller.document
            server = next(i for i in doc.node_ids() if doc.kind(i) == "server")
            window.run.set_speed(None)
            window.run.run()
            qtbot.wait(700)
            window.run.fail(server)
            qtbot.wait(400)
            window.run.recover(server)
            qtbot.wait(400)
            window.run.pause()
            assert window.run.now > 0, path.name
            totals = window.run.sim.totals()
            assert totals["arrived"] == totals["served"] + totals["failed"] + totals["in_flight"]
            window.controller.set_meta(title=f"soaked {rounds}")
            saved = tmp_path / "saved" / path.name
            saved.parent.mkdir(exist_ok=True)
            dialogs.save_path = str(saved)
            window.files.path = None                  # Save asks where (answered by the recorder)
            assert window.file_save(), dialogs.shown[-1:]
            text = saved.read_text(encoding="utf-8")
            assert open_from_loop(qtbot, window, saved)
            assert dumps(window.controller.document) == text
            assert dumps(load(saved)) == text
            if beat.max_gap > worst[0]:
                worst = (beat.max_gap, path.name)
            assert beat.max_gap < MAX_GAP_S, f"{path.name}: the window did not answer for {beat.max_gap:.2f} s"
        rounds += 1
        if rounds == 1:
            warm_rss = rss_mb()
    growth = rss_mb() - warm_rss
    beat.stop()
    window.run.reset()
    window.files.remove_recovery()
    assert rounds >= 2
    assert growth < MAX_GROWTH_MB, f"resident memory grew {growth:.0f} MB over {rounds - 1} rounds"
    print(f"soak: {rounds} rounds in {time.monotonic() - start:.0f} s, worst gap {worst[0]:.3f} s "
          f"({worst[1]}), memory growth after the first round {growth:.1f} MB")
