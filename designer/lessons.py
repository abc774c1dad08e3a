"""The built-in lessons shipped in ``resources/lessons`` (the Examples menu)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

def _resources() -> Path:
    """Next to the packages (a checkout, an editable install), else where a wheel puts them."""
    here = Path(__file__).resolve().parent.parent / "resources"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "scalelab" / "resources"
    return installed if installed.is_dir() else here


RESOURCES = _resources()
LESSONS_DIR = RESOURCES / "lessons"
ICONS_DIR = RESOURCES / "icons"

# Shown first, in this order; any other lesson file follows alphabetically.
ORDER = ("starter", "lb_demo", "sticky_sessions", "scaling_out")


@dataclass(frozen=True)
class Lesson:
    name: str      # file stem, e.g. "lb_demo"
    title: str     # meta.title, for the menu
    path: Path


def starter_path() -> Path:
    return LESSONS_DIR / "starter.scalelab"


def built_in_lessons() -> list[Lesson]:
    """Every ``*.scalelab`` in the lessons folder, starter first."""
    found = []
    for path in LESSONS_DIR.glob("*.scalelab"):
        try:
            title = json.loads(path.read_text(encoding="utf-8")).get("meta", {}).get("title", "")
        except (OSError, ValueError, AttributeError):
            title = ""
        found.append(Lesson(path.stem, title or path.stem.replace("_", " ").capitalize(), path))
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda l: (rank.get(l.name, len(rank)), l.name))


def is_built_in(path: str | Path | None) -> bool:
    """Whether ``path`` is one of the shipped lessons (opened read-only: Save asks where)."""
    if not path:
        return False
    try:
        return Path(path).resolve().parent == LESSONS_DIR.resolve()
    except OSError:
        return False


def icon_path(name: str) -> Path:
    return ICONS_DIR / f"{name}.svg"
