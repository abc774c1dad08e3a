"""No file of the project keeps the markers of an unresolved merge."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[1]
TEXT = {".py", ".md", ".json", ".scalelab", ".toml", ".desktop", ".xml", ".svg"}


def test_no_unresolved_merge_markers():
    found = []
    for path in ROOT.rglob("*"):
        if path.suffix not in TEXT or any(part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
                found.append(f"{path.relative_to(ROOT)}:{n}")
    assert not found, f"unresolved merge markers: {found[:5]}"
