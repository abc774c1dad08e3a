"""Pictures that carry their topology: the ``.scalelab`` text inside a PNG (Qt-free).

An exported PNG gets one ``iTXt`` chunk with the keyword :data:`KEYWORD` whose text is
the lesson file, UTF-8 and zlib-compressed (PNG 1.2, section 11.3.4.5), just before
``IEND``. Image viewers ignore it; ScaleLab reads it back, so ``scalelab simulate
picture.png`` and File → Open run the very topology the picture shows.

Reading is bounded: the chunks are walked over the bytes already read (at most the
20 MB file limit), every length is checked against what is left, the chunk's CRC is
checked, and the text is decompressed at most :data:`MAX_TEXT_BYTES` (+1 to notice
more), so a decompression bomb costs 20 MB, never gigabytes. Every problem is a
:class:`FormatError` naming the file, in one line.
"""
from __future__ import annotations

import struct
import zlib

from .file_input import MAX_FILE_BYTES
from .params import FormatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEYWORD = "scalelab"
MAX_TEXT_BYTES = MAX_FILE_BYTES      # the embedded lesson obeys the lesson file's limit
MAX_CHUNKS = 1_000_000               # a bound by construction (a 20 MB file holds at most 1.7 M chunks)
TEXT_CHUNKS = (b"iTXt", b"zTXt", b"tEXt")
NO_TOPOLOGY = "this picture has no ScaleLab topology in it"


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def chunks(data: bytes, name: str = "") -> list[tuple[bytes, int, int]]:
    """The chunks of a PNG as ``(type, start of data, end of data)``, up to and with ``IEND``.

    Raises :class:`FormatError` for a file that is not a PNG, is cut short or has a
    damaged chunk (length beyond the end, bad CRC)."""
    if not is_png(data):
        raise FormatError(name, "not a PNG picture")
    out: list[tuple[bytes, int, int]] = []
    pos = len(PNG_SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if pos == len(data):
            raise FormatError(name, "this picture is cut short (it ends before its last chunk, IEND)")
        if pos + 12 > len(data):
            raise FormatError(name, "this picture is cut short (truncated in the middle of a chunk)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        start, end = pos + 8, pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise FormatError(name, f"this picture is cut short or damaged: a chunk claims {length:,} bytes "
                                    f"but only {max(len(data) - start - 4, 0):,} are left")
        if kind in TEXT_CHUNKS or kind == b"IEND":  # only the chunks read here are checked
            crc = struct.unpack(">I", data[end:end + 4])[0]
            if crc != zlib.crc32(data[pos + 4:end]) & 0xFFFFFFFF:
                raise FormatError(name, f"this picture is damaged (its {kind.decode('latin-1')} chunk "
                                        "fails its checksum)")
        out.append((kind, start, end))
        pos = end + 4
        if kind == b"IEND":
            return out
    raise FormatError(name, "this picture has too many chunks")


def _inflate(body: bytes, name: str) -> bytes:
    """Decompress at most MAX_TEXT_BYTES (a bomb stops there)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_TEXT_BYTES + 1)
    except zlib.error as e:
        raise FormatError(name, f"the ScaleLab topology in this picture is damaged (cannot decompress: {e})") from None
    if len(out) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise FormatError(name, f"the ScaleLab topology in this picture is too large once decompressed "
                                f"(more than {MAX_TEXT_BYTES // 2**20} MB)")
    if not inflater.eof:
        raise FormatError(name, "the ScaleLab topology in this picture is cut short (incomplete compressed text)")
    return out


def _text_of(kind: bytes, body: bytes, name: str) -> str | None:
    """The text of a text chunk whose keyword is ours, else None."""
    keyword, sep, rest = body.partition(b"\0")
    if not sep or keyword.decode("latin-1") != KEYWORD:
        return None
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":
        return _inflate(rest[1:], name).decode("latin-1")
    if len(rest) < 2:
        raise FormatError(name, "the ScaleLab topology chunk in this picture is damaged (its header is cut short)")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    raw = _inflate(text, name) if compressed else text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(name, f"the ScaleLab topology in this picture is not UTF-8 text "
                                f"(bad byte at offset {e.start})") from None


def topology_text(data: bytes, name: str = "") -> str:
    """The lesson text embedded in a PNG. :class:`FormatError` (one line, naming ``name``)
    if there is none or it cannot be read."""
    for kind, start, end in chunks(data, name):
        if kind in TEXT_CHUNKS:
            text = _text_of(kind, data[start:end], name)
            if text is not None:
                return text
    raise FormatError(name, NO_TOPOLOGY)


def embed(png: bytes, text: str) -> bytes:
    """``png`` with ``text`` in a compressed iTXt chunk (any earlier one of ours removed).

    Raises ValueError if ``png`` is not a whole PNG or the text is over the file limit."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_TEXT_BYTES:
        raise ValueError(f"the topology is too large to embed ({len(raw) / 1e6:.1f} MB; at most "
                         f"{MAX_TEXT_BYTES // 2**20} MB)")
    parts = [PNG_SIGNATURE]
    for kind, start, end in chunks(png, "the picture"):
        if kind in TEXT_CHUNKS and _keyword(png[start:end]) == KEYWORD:
            continue
        if kind == b"IEND":
            body = KEYWORD.encode("latin-1") + b"\0\x01\0" + b"\0" + b"\0" + zlib.compress(raw, 9)
            parts.append(_chunk(b"iTXt", body))
        parts.append(png[start - 8:end + 4])
    return b"".join(parts)


def _keyword(body: bytes) -> str:
    return body.partition(b"\0")[0].decode("latin-1")
