"""The worker processes of this test process's pools, as /proc shows them.

multiprocessing's fork server starts every worker, so they are its children, not ours:
a test that looked only at its own children would never see one."""
from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> set[int]:
    """Live (not zombie) children of ``pid``."""
    out = set()
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in listed:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(int(child))
    return out


def _is_multiprocessing_helper(pid: int) -> bool:
    """The fork server or the resource tracker (both run ``-c 'from multiprocessing.… import main'``)."""
    try:
        return b"from multiprocessing." in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def pool_workers() -> set[int]:
    """Every live worker of this process: the fork server's children and any direct child
    that is not a multiprocessing helper (spawned workers)."""
    out = set()
    for child in children(os.getpid()):
        if _is_multiprocessing_helper(child):
            out |= children(child)
        else:
            out.add(child)
    return out
