"""The text summary of ``scalelab simulate`` shows page views and cost, as the JSON has them."""
from __future__ import annotations

import json
import re
from pathlib import Path

from simulation import cli

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


def run(capsys, lesson: str, tmp_path) -> tuple[str, dict]:
    out = tmp_path / "t.json"
    assert cli.main(["simulate", str(LESSONS / lesson), "--duration", "20", "--json", str(out)]) == 0
    return capsys.readouterr().out, json.loads(out.read_text())


def test_the_summary_gives_dollars_and_server_hours(capsys, tmp_path):
    text, totals = run(capsys, "starter.scalelab", tmp_path)
    # The starter's three servers are custom machines at an m5.large's price, $0.096 an hour.
    assert abs(totals["server_hours"] - 3 * 20 / 3600) < 1e-9
    assert abs(totals["cost_usd"] - totals["server_hours"] * 0.096) < 1e-12
    assert re.search(r"cost\s+\$0\.0016, 0\.0167 server-hours", text)


def test_the_summary_gives_page_views_when_browsers_cache(capsys, tmp_path):
    text, t = run(capsys, "browser_caching.scalelab", tmp_path)
    assert t["page_views"] == t["arrived"] + t["browser_hits"]
    # Browser hits take no time: the page-view mean is the served mean spread over every view served.
    expected = t["mean_ms"] * t["served"] / (t["served"] + t["browser_hits"])
    assert abs(t["page_view_mean_ms"] - expected) < 0.01 * expected
    line = next(l for l in text.splitlines() if "page views" in l)
    assert f"{t['page_views']:,}" in line and f"{t['browser_hit_share'] * 100:.1f} %" in line
    assert f"mean {t['page_view_mean_ms']:.1f} ms" in line and f"{t['stale_page_views']:,} stale" in line


def test_no_page_view_line_without_browser_caching(capsys, tmp_path):
    text, t = run(capsys, "starter.scalelab", tmp_path)
    assert t["browser_hits"] == 0 and "page views" not in text


def test_a_saturated_sync_tier_still_writes_its_outputs_and_says_why_seconds_are_missing(capsys, tmp_path):
    """Requests queue for up to 30 s at one sync worker: the seconds they arrived in stay
    open (their outcome is not known yet), so a 5-s run closes none. simulate still writes
    the CSV (its header) and the JSON, exits 0, and says how many seconds were written."""
    from simulation.document import Document, NodeData
    from simulation.fileformat import dumps
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 300.0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 20.0, "workers": 1, "queue_limit": 1000,
                                                 "timeout_s": 30.0, "blocking_calls": True}))
    d.add_node(NodeData("db", "database"))
    d.add_edge("users", "web")
    d.add_edge("web", "db")
    path, csv_out, json_out = tmp_path / "busy.scalelab", tmp_path / "busy.csv", tmp_path / "busy.json"
    path.write_text(dumps(d), encoding="utf-8")
    assert cli.main(["simulate", str(path), "--duration", "5", "--csv", str(csv_out), "--json", str(json_out)]) == 0
    text = capsys.readouterr().out
    rows = csv_out.read_text().splitlines()
    summary = json.loads(json_out.read_text())
    assert rows[0].startswith("time_s,") and summary["seconds_written"] == len(rows) - 1 < 5
    assert f"{summary['seconds_written']} of 5 seconds written" in text and summary["in_flight"] > 1000
