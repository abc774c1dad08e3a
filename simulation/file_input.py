"""Reading a lesson file safely, before validation (``fileformat`` validates what this returns).

- Only a regular file is read, and at most :data:`MAX_FILE_BYTES` of it, whatever its size
  claims (``/dev/zero``, a FIFO or a folder is refused without reading).
- Nesting is bounded before the JSON parser runs (no RecursionError).
- Numbers too big to compute with (400 digits, ``1e400``) and keys given twice in one object
  are noted while parsing and then reported with their place, never as OverflowError.
- Places are written in a teacher's words: ``node "web1", capacity_rps``, ``edge #2, target``.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any

from .params import FormatError

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 32
ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # use fullmatch: "$" would accept a final newline


_NOT_A_FILE = ((stat.S_ISDIR, "is a folder, not a lesson file"),
               (stat.S_ISFIFO, "is a pipe (FIFO), not a lesson file"),
               (stat.S_ISCHR, "is a device, not a lesson file"),
               (stat.S_ISBLK, "is a disk device, not a lesson file"),
               (stat.S_ISSOCK, "is a socket, not a lesson file"))


def _too_large(name: str, size: int) -> FormatError:
    return FormatError(name, f"file is too large ({size / 1e6:.1f} MB; at most {MAX_FILE_BYTES // 2**20} MB)")


def read_limited(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file, reading at most :data:`MAX_FILE_BYTES` (+1 to notice more).

    A FIFO, a device or a folder is refused without reading (opening a FIFO does not wait for
    a writer); a file whose size is wrong (``/proc``) or that grows is still cut off at the limit.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise FormatError(name, "no such file") from None
    except OSError as e:
        raise FormatError(name, f"cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        for test, why in _NOT_A_FILE:
            if test(st.st_mode):
                raise FormatError(name, why)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(name, "is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise _too_large(name, st.st_size)
        chunks, total = [], 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise _too_large(name, total)
        return b"".join(chunks)
    except OSError as e:
        raise FormatError(name, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def lesson_text(path: str | os.PathLike) -> tuple[str, bool]:
    """The text of a lesson file, or of the lesson embedded in a PNG picture (see
    ``png_embed``), and whether it came from a picture."""
    from .png_embed import is_png, topology_text
    name = os.fspath(path)
    raw = read_limited(path)
    if is_png(raw):
        return topology_text(raw, name), True
    try:
        return raw.decode("utf-8-sig"), False
    except UnicodeDecodeError as e:
        raise FormatError(name, f"not UTF-8 text (bad byte at offset {e.start})") from None


class _Oversized:
    """A number too big to compute with (``1e400``, 400 digits), found while parsing; the
    validation walk reports it with its place instead of Python's OverflowError or int limit."""

    def __init__(self, text: str) -> None:
        digits = text.lstrip("-")
        if digits.isdigit():
            self.text = f"a number with {len(digits):,} digits"
        else:
            self.text = text if len(text) <= 24 else f"a number beyond {'-' if text[0] == '-' else ''}1e308"


class _Duplicates(dict):
    """A JSON object in which a key appears twice (``duplicate`` is the first such key)."""

    duplicate: str = ""


class JsonHooks:
    """json.loads hooks that note oversized numbers and duplicate keys instead of failing."""

    MAX_INT_DIGITS = 20  # the seed goes up to 2**63 - 1 (19 digits)

    def __init__(self) -> None:
        self.suspect = False

    def parse_int(self, text: str) -> Any:
        if len(text.lstrip("-")) > self.MAX_INT_DIGITS:
            self.suspect = True
            return _Oversized(text)
        return int(text)

    def parse_float(self, text: str) -> Any:
        value = float(text)
        if math.isinf(value):
            self.suspect = True
            return _Oversized(text)
        return value

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out and not isinstance(out, _Duplicates):
                self.suspect = True
                out = _Duplicates(out)
                out.duplicate = key
            out[key] = value
        return out


def refuse_oddities(data: Any) -> None:
    """Report the first duplicate key or oversized number, in file order, with its place."""
    if not isinstance(data, dict):
        return  # "the file must contain a JSON object" says more
    stack: list[tuple[Any, tuple]] = [(data, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, _Oversized):
            raise FormatError(place(data, parts), f"must be a number of reasonable size, got {value.text}")
        if isinstance(value, _Duplicates):
            raise FormatError(place(data, parts + (value.duplicate,)),
                              "is given twice in the same object; keep only one")
        if isinstance(value, dict):
            stack.extend((v, parts + (k,)) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((v, parts + (i,)) for i, v in reversed(list(enumerate(value))))


def field_name(key: str) -> str:
    """A field name as shown in a message: as is when plain, else quoted and cut short."""
    if re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", key):
        return key
    return quoted(key)


def quoted(text: str, limit: int = 40) -> str:
    """A string from the file, quoted, control characters escaped, cut to ``limit``."""
    short = text if len(text) <= limit else text[:limit - 3] + "..."
    return json.dumps(short, ensure_ascii=False)


def _json_path(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{field_name(p)}" if out else field_name(p))
    return out


def node_place(index: int, node: Any) -> str:
    """``node "web1"`` when the node has a valid id, else ``node #4`` (counting from 1)."""
    nid = node.get("id") if isinstance(node, dict) else None
    if isinstance(nid, str) and ID_RE.fullmatch(nid):
        return f'node "{nid}"'
    return f"node #{index + 1}"


def place(data: Any, parts: tuple) -> str:
    """A place in the file in a teacher's words: ``node "web1", capacity_rps``,
    ``node "users", pattern.type``, ``edge #2, target``, ``simulation.seed``."""
    if len(parts) >= 2 and parts[0] in ("nodes", "edges", "events") and isinstance(parts[1], int):
        section, index, rest = parts[0], parts[1], parts[2:]
        if section == "nodes":
            items = data.get("nodes") if isinstance(data, dict) else None
            node = items[index] if isinstance(items, list) and index < len(items) else None
            head = node_place(index, node)
            if rest[:1] == ("params",) and len(rest) > 1:
                rest = rest[1:]
        else:
            head = f"{section[:-1]} #{index + 1}"
        tail = _json_path(rest)
        return f"{head}, {tail}" if tail else head
    return _json_path(parts)


def max_depth(text: str) -> int:
    """Bracket depth outside strings, without recursion (guards json.loads)."""
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > MAX_DEPTH:
                    return best
        elif ch in "]}":
            depth -= 1
    return best


