"""Pictures that carry their topology (simulation/png_embed.py), without Qt: the lesson
round-trips through a PNG, the picture stays a valid PNG, the command line runs a picture
like the lesson, and every damaged picture gets one clear line."""
from __future__ import annotations

import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest

from simulation import cli, png_embed
from simulation.fileformat import dumps, load, loads
from simulation.params import FormatError

from tests.simulation.test_cli import one_error_line

LESSONS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A real greyscale PNG written by hand (one filter byte per row, then the pixels)."""
    rows = b"".join(b"\0" + bytes((17 * (x + y)) % 256 for x in range(width)) for y in range(height))
    return (png_embed.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"tEXt", b"Software\0test") + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def walk(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, checking each CRC: an independent reader."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append((kind, body))
        pos += 12 + length
    return out


def picture_of(lesson: str, tmp_path: Path) -> tuple[Path, str]:
    text = dumps(load(LESSONS / lesson))
    path = tmp_path / f"{Path(lesson).stem}.png"
    path.write_bytes(png_embed.embed(tiny_png(), text))
    return path, text


# ----- round trip ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lesson", ["lb_demo.scalelab", "challenge_single_failure.scalelab", "sharding.scalelab"])
def test_a_lesson_round_trips_through_a_picture(lesson, tmp_path):
    path, text = picture_of(lesson, tmp_path)
    doc = load(path)
    assert dumps(doc) == text                       # notes, events, goals, positions: everything
    original = load(LESSONS / lesson)
    assert doc.events == original.events and doc.goals == original.goals and doc.meta == original.meta


def test_non_ascii_text_round_trips_exactly():
    doc = load(LESSONS / "starter.scalelab")
    doc.meta["title"] = "Größe — 負荷分散 ✓"
    doc.meta["notes"] = "# Ünïcödé\n\nemoji 🚀, RTL עברית, and a NUL-free \\ backslash"
    text = dumps(doc)
    assert png_embed.topology_text(png_embed.embed(tiny_png(), text)) == text
    assert dumps(loads(png_embed.topology_text(png_embed.embed(tiny_png(), text)))) == text


def test_the_picture_stays_the_same_picture():
    png = tiny_png()
    out = png_embed.embed(png, '{"a": 1}')
    before, after = walk(png), walk(out)
    ours = [(k, b) for k, b in after if k == b"iTXt"]
    assert [c for c in after if c[0] != b"iTXt"] == before          # every other chunk, in order, unchanged
    assert len(ours) == 1 and after[-2][0] == b"iTXt" and after[-1][0] == b"IEND"
    body = ours[0][1]
    assert body.startswith(b"scalelab\0\x01\x00\0\0")                # keyword, compressed, deflate, no language
    assert zlib.decompress(body[len(b"scalelab\0\x01\x00\0\0"):]) == b'{"a": 1}'
    idat = [b for k, b in after if k == b"IDAT"][0]
    assert zlib.decompress(idat) == zlib.decompress([b for k, b in before if k == b"IDAT"][0])


def test_embedding_twice_keeps_one_topology_the_latest():
    out = png_embed.embed(png_embed.embed(tiny_png(), "first"), "second")
    assert [k for k, _ in walk(out)].count(b"iTXt") == 1
    assert png_embed.topology_text(out) == "second"


def test_a_topology_written_by_other_tools_as_text_or_ztxt_is_read():
    latin = '{"title": "café"}'
    for body in (b"scalelab\0" + latin.encode("latin-1"), b"scalelab\0\0" + zlib.compress(latin.encode("latin-1"))):
        kind = b"tEXt" if body[9:10] != b"\0" else b"zTXt"
        png = tiny_png()
        data = png[:-12] + chunk(kind, body) + png[-12:]
        assert png_embed.topology_text(data) == latin


# ----- the command line runs a picture like the lesson ----------------------------------------------
def test_simulate_a_picture_gives_the_same_totals_as_the_lesson(tmp_path):
    path, _ = picture_of("lb_demo.scalelab", tmp_path)
    out_png, out_lesson = tmp_path / "png.json", tmp_path / "lesson.json"
    assert cli.main(["simulate", str(path), "--duration", "40", "--json", str(out_png)]) == 0
    assert cli.main(["simulate", str(LESSONS / "lb_demo.scalelab"), "--duration", "40", "--json",
                     str(out_lesson)]) == 0
    a, b = json.loads(out_png.read_text()), json.loads(out_lesson.read_text())
    a.pop("file"), b.pop("file")
    assert a == b and a["arrived"] > 1000 and a["failed"] > 0      # lb_demo fails a server at 30 s


def test_check_grade_and_compare_read_pictures(tmp_path, capsys):
    path, _ = picture_of("challenge_single_failure.scalelab", tmp_path)
    assert cli.main(["check", str(path)]) == 0
    from_png = capsys.readouterr().out
    assert cli.main(["check", str(LESSONS / "challenge_single_failure.scalelab")]) == 0
    assert capsys.readouterr().out == from_png and from_png.startswith("OK: ")
    code_png = cli.main(["grade", str(path), "--json", str(tmp_path / "g1.json")])
    code_lesson = cli.main(["grade", str(LESSONS / "challenge_single_failure.scalelab"), "--json",
                            str(tmp_path / "g2.json")])
    assert code_png == code_lesson and code_png in (0, 1)
    g1, g2 = (json.loads((tmp_path / f"g{i}.json").read_text()) for i in (1, 2))
    assert g1.pop("file") == str(path) and g2.pop("file").endswith(".scalelab")
    assert g1 == g2 and g1["goals"]
    capsys.readouterr()
    assert cli.main(["compare", str(path), str(LESSONS / "challenge_single_failure.scalelab"),
                     "--duration", "10", "--json", str(tmp_path / "c.json")]) == 0
    diff = json.loads((tmp_path / "c.json").read_text())["difference"]
    assert all(v == 0 for v in diff.values() if isinstance(v, (int, float)))   # the same lesson twice


# ----- every damaged picture: one clear line --------------------------------------------------------
def error_of(capsys, path: Path) -> str:
    assert cli.main(["simulate", str(path), "--duration", "1"]) == 1
    return one_error_line(capsys.readouterr().err)


def test_a_picture_without_topology(tmp_path, capsys):
    path = tmp_path / "picture.png"
    path.write_bytes(tiny_png())
    assert error_of(capsys, path) == f"scalelab: {path}: this picture has no ScaleLab topology in it"


@pytest.mark.parametrize("cut, words", [(-6, "cut short"), (-12, "ends before its last chunk"),
                                        (-40, "cut short or damaged"), (9, "cut short")])
def test_a_truncated_picture(tmp_path, capsys, cut, words):
    path, _ = picture_of("starter.scalelab", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    message = error_of(capsys, path)
    assert message.startswith(f"scalelab: {path}: this picture") and words in message


def test_a_chunk_that_claims_more_than_the_file_limit(tmp_path, capsys):
    png = tiny_png()
    claim = struct.pack(">I", 30 * 2**20) + b"iTXt" + b"scalelab\0\0\0\0\0{}"
    path = tmp_path / "picture.png"
    path.write_bytes(png[:-12] + claim + png[-12:])
    assert "a chunk claims 31,457,280 bytes but only" in error_of(capsys, path)


def test_a_picture_over_the_file_limit(tmp_path, capsys):
    png = tiny_png()
    big = chunk(b"iTXt", b"scalelab\0\0\0\0\0" + b" " * (21 * 2**20))
    path = tmp_path / "picture.png"
    path.write_bytes(png[:-12] + big + png[-12:])
    assert error_of(capsys, path) == f"scalelab: {path}: file is too large (22.0 MB; at most 20 MB)"


def test_broken_json_in_the_chunk(tmp_path, capsys):
    path = tmp_path / "picture.png"
    path.write_bytes(png_embed.embed(tiny_png(), '{"format": "scalelab", "version": 1,'))
    message = error_of(capsys, path)
    assert message.startswith(f"scalelab: {path}: the ScaleLab topology in this picture is not valid: line 1")
    assert "not valid JSON" in message


def test_an_invalid_lesson_in_the_chunk_names_its_place(tmp_path, capsys):
    data = json.loads(dumps(load(LESSONS / "starter.scalelab")))
    server = next(n for n in data["nodes"] if n["kind"] == "server")
    server["params"]["capacity_rps"] = -5
    path = tmp_path / "picture.png"
    path.write_bytes(png_embed.embed(tiny_png(), json.dumps(data)))
    message = error_of(capsys, path)
    assert f'node "{server["id"]}", capacity_rps: must be > 0, got -5' in message


def test_a_damaged_chunk_fails_its_checksum(tmp_path, capsys):
    path, _ = picture_of("starter.scalelab", tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"iTXt") + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "this picture is damaged (its iTXt chunk fails its checksum)" in error_of(capsys, path)


def test_text_that_is_not_utf8(tmp_path, capsys):
    png = tiny_png()
    path = tmp_path / "picture.png"
    path.write_bytes(png[:-12] + chunk(b"iTXt", b"scalelab\0\0\0\0\0{\xff}") + png[-12:])
    assert "is not UTF-8 text (bad byte at offset 1)" in error_of(capsys, path)


def bomb(size: int) -> bytes:
    """``size`` spaces, deflated in 1 MB pieces (never the whole text in memory)."""
    packer = zlib.compressobj(9)
    piece = b" " * 2**20
    return b"".join(packer.compress(piece) for _ in range(size // 2**20)) + packer.flush()


def test_a_decompression_bomb_is_stopped_at_the_limit(tmp_path, capsys):
    size = 512 * 2**20                                   # 512 MB once unpacked, ~0.5 MB packed
    png = tiny_png()
    data = png[:-12] + chunk(b"iTXt", b"scalelab\0\x01\0\0\0" + bomb(size)) + png[-12:]
    assert len(data) < png_embed.MAX_TEXT_BYTES // 20
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as err:
            png_embed.topology_text(data, "bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value) == ("bomb.png: the ScaleLab topology in this picture is too large once decompressed "
                              "(more than 20 MB)")
    assert peak < 3 * png_embed.MAX_TEXT_BYTES < size / 8      # bounded by the limit, not by the bomb
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    assert error_of(capsys, path).endswith("too large once decompressed (more than 20 MB)")


def test_a_broken_compressed_stream(tmp_path, capsys):
    png = tiny_png()
    path = tmp_path / "picture.png"
    cut = zlib.compress(b'{"format": "scalelab"}' * 50)[:-10]
    path.write_bytes(png[:-12] + chunk(b"iTXt", b"scalelab\0\x01\0\0\0" + cut) + png[-12:])
    assert "the ScaleLab topology in this picture is cut short" in error_of(capsys, path)
    path.write_bytes(png[:-12] + chunk(b"iTXt", b"scalelab\0\x01\0\0\0not zlib") + png[-12:])
    assert "the ScaleLab topology in this picture is damaged (cannot decompress" in error_of(capsys, path)


def test_a_file_that_is_not_a_png_is_still_read_as_a_lesson(tmp_path, capsys):
    path = tmp_path / "fake.png"          # the signature decides, not the name
    path.write_text(dumps(load(LESSONS / "starter.scalelab")))
    assert dumps(load(path)) == path.read_text()


def test_embed_refuses_a_text_over_the_limit_and_a_broken_png():
    with pytest.raises(ValueError, match="too large to embed"):
        png_embed.embed(tiny_png(), " " * (png_embed.MAX_TEXT_BYTES + 1))
    with pytest.raises(FormatError, match="cut short"):
        png_embed.embed(tiny_png()[:-12], "{}")
