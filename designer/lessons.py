"""The built-in lessons shipped in ``resources/lessons`` (the Examples menu)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

def _resources() -> Path:
    """In a PyInstaller bundle, its data folder; next to the packages (a checkout, an editable
    install); else where a wheel puts them."""
    bundle = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    if bundle and (Path(bundle) / "resources").is_dir():
        return Path(bundle) / "resources"
    here = Path(__file__).resolve().parent.parent / "resources"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "scalelab" / "resources"
    return installed if installed.is_dir() else here


RESOURCES = _resources()
LESSONS_DIR = RESOURCES / "lessons"
ICONS_DIR = RESOURCES / "icons"

# The lecture's order, each with the number the Examples menu puts before its title
# (a file that is not there is skipped). Any other lesson follows alphabetically, and the
# graded challenges (challenge_*) come last.
LECTURE = (
    ("starter", ""), ("capacity", "1"), ("vertical_scaling", "2"), ("scaling_out", "3"),
    ("lb_algorithms", "4"), ("lb_unequal", "4b"), ("lb_demo", "4c"), ("sticky_sessions", "5"),
    ("sessions_database", "6"), ("cookie_sessions", "7"), ("autoscaling", "8"), ("heartbeats", "9"),
    ("redundancy", "10"), ("partitioning", "11"), ("sharding", "12"), ("database_scaling", "13"),
    ("multi_primary", "14"), ("browser_caching", "15"), ("server_cache", "16"),
)
ORDER = tuple(name for name, _ in LECTURE)
NUMBERS = {name: number for name, number in LECTURE if number}


@dataclass(frozen=True)
class Lesson:
    name: str      # file stem, e.g. "lb_demo"
    title: str     # meta.title, with its lecture number, for the menu
    path: Path


def starter_path() -> Path:
    return LESSONS_DIR / "starter.scalelab"


def built_in_lessons() -> list[Lesson]:
    """Every ``*.scalelab`` in the lessons folder, starter first, then the lecture's order."""
    found = []
    for path in LESSONS_DIR.glob("*.scalelab"):
        try:
            title = json.loads(path.read_text(encoding="utf-8")).get("meta", {}).get("title", "")
        except (OSError, ValueError, AttributeError):
            title = ""
        title = title or path.stem.replace("_", " ").capitalize()
        if path.stem in NUMBERS:
            title = f"{NUMBERS[path.stem]}. {title}"
        found.append(Lesson(path.stem, title, path))
    return sorted(found, key=lambda l: _rank(l.name))


def _rank(name: str) -> tuple[int, int, str]:
    """The lecture's lessons in its order, then other lessons, then the challenges."""
    if name in ORDER:
        return (0, ORDER.index(name), name)
    return (2 if name.startswith("challenge_") else 1, 0, name)


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
