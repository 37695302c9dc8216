"""The export upload parser: a form streamed in small chunks, spooled to disk, refused early when wrong."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infracalc.service.errors import InvalidInput
from infracalc.service.exports.upload import BadUpload, TooLarge, UnsupportedMediaType, boundary_of, spooled

BOUNDARY = "form-boundary-1234"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
JUSTIFICATION = "Aggregated counts for table 2 of the paper."


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def chunks(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_form_streamed_in_tiny_chunks_is_spooled_with_its_fields(tmp_path: Path) -> None:
    content = b"region,count\n" + b"north,120\n" * 1000
    contributors = {"north|count": [60.0, 60.0]}
    body = form(
        part("justification", JUSTIFICATION.encode()),
        part("file", content, filename="table.csv"),
        part("contributors", json.dumps(contributors).encode()),
    )
    async with spooled(
        chunks(body), content_type=CONTENT_TYPE, content_length=None, max_file_bytes=len(content), directory=tmp_path
    ) as upload:
        assert upload.path.read_bytes() == content
        assert (upload.name, upload.size, upload.justification) == ("table.csv", len(content), JUSTIFICATION)
        assert upload.contributors == contributors
        spool = upload.path.parent
    assert not spool.exists(), "the spooled file is deleted afterwards"


async def test_a_file_one_byte_over_the_cap_is_refused_as_it_arrives(tmp_path: Path) -> None:
    body = form(part("justification", JUSTIFICATION.encode()), part("file", b"x" * 101, filename="t.csv"))
    with pytest.raises(TooLarge, match="larger than 100 bytes"):
        async with spooled(
            chunks(body), content_type=CONTENT_TYPE, content_length=None, max_file_bytes=100, directory=tmp_path
        ):
            pass
    assert list(tmp_path.iterdir()) == []


async def test_a_declared_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(TooLarge, match="declares"):
        async with spooled(
            never(), content_type=CONTENT_TYPE, content_length=str(10**12), max_file_bytes=100, directory=tmp_path
        ):
            pass


async def test_a_truncated_form_is_a_bad_upload_and_leaves_no_file(tmp_path: Path) -> None:
    body = form(part("justification", JUSTIFICATION.encode()), part("file", b"a,b\n1,2\n", filename="t.csv"))
    with pytest.raises(BadUpload, match="incomplete"):
        async with spooled(
            chunks(body[:-30]), content_type=CONTENT_TYPE, content_length=None, max_file_bytes=100, directory=tmp_path
        ):
            pass
    assert list(tmp_path.iterdir()) == []


async def test_a_client_that_goes_away_leaves_no_file(tmp_path: Path) -> None:
    class Gone(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield form(part("file", b"a,b\n", filename="t.csv"))[:60]
        raise Gone

    with pytest.raises(Gone):
        async with spooled(
            broken(), content_type=CONTENT_TYPE, content_length=None, max_file_bytes=100, directory=tmp_path
        ):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("parts", "field", "message"),
    [
        ((part("justification", JUSTIFICATION.encode()),), "file", "no file field"),
        ((part("file", b"1", filename="t.csv"),), "justification", "no justification field"),
        (
            (part("file", b"1", filename="a.csv"), part("file", b"2", filename="b.csv")),
            "file",
            "repeated",
        ),
        ((part("file", b"1"),), "file", "must be a file"),
        ((part("other", b"1"),), "other", "unknown form field"),
        (
            (
                part("file", b"1", filename="t.csv"),
                part("justification", JUSTIFICATION.encode()),
                part("contributors", b"[1]"),
            ),
            "contributors",
            "must be a JSON object",
        ),
        (
            (part("file", b"1", filename="t.csv"), part("justification", b"\xff\xfe not utf-8 at all, twenty+")),
            "justification",
            "not UTF-8",
        ),
    ],
)
async def test_wrong_fields_are_named(tmp_path: Path, parts: tuple[bytes, ...], field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        async with spooled(
            chunks(form(*parts)), content_type=CONTENT_TYPE, content_length=None, max_file_bytes=100, directory=tmp_path
        ):
            pass
    assert refused.value.field == field


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", "multipart/mixed; boundary=x", "text/csv"]
)
def test_only_a_form_with_a_boundary_is_accepted(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        boundary_of(content_type)


def test_the_boundary_may_be_quoted() -> None:
    assert boundary_of('multipart/form-data; charset=utf-8; boundary="abc def"') == "abc def"
