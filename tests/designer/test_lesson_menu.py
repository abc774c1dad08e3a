"""The Examples menu: the lecture's lessons in the lecture's order, numbered, then the others,
then the graded challenges; and each shard of a sharded database as a utilization curve."""
from __future__ import annotations

import json

from designer import lessons
from designer.plots import node_labels
from simulation.fileformat import load


def _write(folder, stem: str, title: str) -> None:
    (folder / f"{stem}.scalelab").write_text(json.dumps({"meta": {"title": title}}), encoding="utf-8")


def test_lessons_follow_the_lecture_then_others_then_challenges(tmp_path, monkeypatch):
    for stem, title in (("challenge_a", "Challenge A"), ("zebra", "Zebra"), ("sharding", "Sharding"),
                        ("capacity", "Capacity"), ("starter", "Starter"), ("abc", ""), ("lb_demo", "Demo")):
        _write(tmp_path, stem, title)
    monkeypatch.setattr(lessons, "LESSONS_DIR", tmp_path)
    found = lessons.built_in_lessons()
    assert [l.name for l in found] == ["starter", "capacity", "lb_demo", "sharding", "abc", "zebra", "challenge_a"]
    titles = [l.title for l in found]
    assert titles[:4] == ["Starter", "1. Capacity", "4c. Demo", "12. Sharding"]
    assert titles[4:] == ["Abc", "Zebra", "Challenge A"]       # no number outside the lecture


def test_the_shipped_lessons_are_in_the_lecture_order():
    names = [l.name for l in lessons.built_in_lessons()]
    lecture = [n for n in lessons.ORDER if n in names]
    assert names[:len(lecture)] == lecture and names[0] == "starter"
    assert len(lecture) >= 16


def test_each_shard_gets_a_utilization_curve_of_its_own():
    doc = load(lessons.LESSONS_DIR / "sharding.scalelab")
    labels = node_labels(doc)
    shards = doc.params("db")["shards"]
    assert [k for k in labels if k.startswith("db#")] == [f"db#{s}" for s in range(shards)]
    assert labels["db#0"] == f"{doc.node('db').label} #0"
    assert list(labels)[0] == "app"                               # servers first


def test_the_examples_menu_sets_the_challenges_apart(window):
    acts = window.examples_menu.actions()
    sections = [i for i, a in enumerate(acts) if a.isSeparator()]
    assert len(sections) == 1 and acts[sections[0]].text() == "Challenges"
    after = [a.text() for a in acts[sections[0] + 1:]]
    assert len(after) >= 4 and all(t.startswith("Challenge") for t in after)
    assert not any(a.text().startswith("Challenge") for a in acts[:sections[0]])
