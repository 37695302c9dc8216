"""File types from content: archive signatures, common formats, text to the last byte; one sniffer for all."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from infracalc.casd.filetypes import HEAD_BYTES, TextCheck, detect_type, sniff


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    return buffer.getvalue()


def _tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        content = b"hello"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (_zip(), "zip"),
        (gzip.compress(b"x" * 100), "gzip"),
        (_tar(), "tar"),
        (b"BZh91AY&SY" + b"\x00" * 20, "bzip2"),
        (b"\xfd7zXZ\x00" + b"\x00" * 20, "xz"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd"),
        (b"7z\xbc\xaf\x27\x1c" + b"\x00" * 20, "7z"),
        (b"Rar!\x1a\x07\x00", "rar"),
    ],
)
def test_archives_and_compressed_streams_are_recognised(content: bytes, name: str) -> None:
    found = sniff(content[:HEAD_BYTES], complete=len(content) <= HEAD_BYTES)
    assert (found.name, found.archive) == (name, True)


@pytest.mark.parametrize(
    ("content", "name", "media_type"),
    [
        (b"%PDF-1.7\n...", "pdf", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png", "image/png"),
        (b"PAR1\x00\x15", "parquet", "application/octet-stream"),
        (b"SQLite format 3\x00rest", "sqlite", "application/octet-stream"),
        (b"\x7fELF\x02\x01", "elf", "application/octet-stream"),
        (b"print('hello')\n", "text", "text/plain; charset=utf-8"),
        ("donnée;valeur\r\nété;1\n".encode(), "text", "text/plain; charset=utf-8"),
        (b"\xef\xbb\xbfwith a byte order mark", "text", "text/plain; charset=utf-8"),
        (b"binary\x00with a nul", "binary", "application/octet-stream"),
        (b"\xff\xfe\x00latin", "binary", "application/octet-stream"),
    ],
)
def test_other_types(content: bytes, name: str, media_type: str) -> None:
    found = sniff(content, complete=True)
    assert (found.name, found.archive, found.media_type) == (name, False, media_type)


def test_the_extension_does_not_matter_only_the_bytes() -> None:
    # sniff never sees a name: a zip called data.csv is a zip.
    assert sniff(_zip(), complete=True).archive


def test_a_utf8_sequence_cut_at_the_end_of_the_head_is_not_an_error_unless_the_file_ends_there() -> None:
    head = b"a" * (HEAD_BYTES - 1) + "é".encode()[:1]
    assert sniff(head, complete=False).name == "text"
    assert sniff(head, complete=True).name == "binary"


def test_text_check_follows_the_whole_stream_up_to_its_limit() -> None:
    check = TextCheck(limit=10)
    check.feed(b"hello ")
    check.feed(b"world")  # crosses the limit: only "hell" of it is looked at... then nothing
    check.feed(b"\x00\x00")
    check.finish()
    assert check.text
    assert not check.covered

    check = TextCheck(limit=100)
    check.feed(b"caf")
    check.feed("é".encode()[:1])
    check.feed("é".encode()[1:] + b"\n")
    check.finish()
    assert check.text
    assert check.covered

    check = TextCheck(limit=100)
    check.feed(b"ok\n")
    check.feed(b"\x00")
    assert not check.text


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.7\n...",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        gzip.compress(b"x" * 100),
        _tar(),
        b"MZ\x90\x00" + bytes(40),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100),
        b"PAR1\x00\x15",
        b"II*\x00" + bytes(20),
    ],
)
def test_imports_and_output_checks_name_a_binary_format_alike(content: bytes, tmp_path: Path) -> None:
    # One table of signatures: the import's sniff and the export's detection cannot drift apart.
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    assert detect_type(path, "file.bin").detected_type == sniff(content[:HEAD_BYTES], complete=True).name


def test_a_zip_is_opened_by_the_output_checks_only_to_name_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    path.write_bytes(_zip())
    assert (sniff(_zip(), complete=True).name, detect_type(path, "data.zip").detected_type) == ("zip", "zip")
