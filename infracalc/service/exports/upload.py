"""An export's upload: a ``multipart/form-data`` body parsed as it streams in, its file spooled to disk.

The body is read chunk by chunk (Litestar's ``request.stream()``) and fed to the push parser of
the ``multipart`` package (the one Litestar itself depends on), which keeps no more than a header
line and a boundary's worth of bytes: memory stays constant whatever the file's size. The file part
is written to a temporary file as it arrives, and the upload is refused (413) as soon as it passes
the cap, without reading the rest. Fields:

- ``file`` (required, once): the file, its ``filename`` the export's name;
- ``justification`` (required, once): why the file may leave, 20 characters or more (UTF-8);
- ``contributors`` (optional, once): JSON ``{"<row label>|<column name>": [values...]}``, the
  contributors' values of each cell for the dominance and p-ratio checks.

Multipart rather than a raw body with headers: a justification is free text in any language and
contributors may be large, which headers carry badly; every HTTP client can send a form.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from multipart import MultipartSegment, ParserError, PushMultipartParser

from infracalc.service.errors import InvalidInput, ServiceError
from infracalc.service.json_input import JsonRefused, check_json

#: The form's fields.
FILE, JUSTIFICATION, CONTRIBUTORS = "file", "justification", "contributors"
#: Largest justification field, in bytes (4,000 characters of up to 4 bytes each).
MAX_JUSTIFICATION_BYTES = 16 * 1024
#: Largest contributors field, in bytes of JSON.
MAX_CONTRIBUTORS_BYTES = 4 * 1024 * 1024
#: Room for the form's framing (boundaries, part headers) on top of the file and the fields.
_FRAMING = 64 * 1024


class TooLarge(ServiceError):
    """The upload passed its cap."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    """The body is not ``multipart/form-data``."""

    status = 415
    code = "unsupported_media_type"


class BadUpload(ServiceError):
    """The body is not a well-formed form (truncated, malformed)."""

    status = 400
    code = "bad_request"


@dataclass(frozen=True, slots=True)
class Upload:
    """A parsed upload: the spooled file and the form's fields."""

    path: Path
    name: str
    size: int
    justification: str
    contributors: dict[str, Any] | None


def boundary_of(content_type: str | None) -> str:
    """The multipart boundary of a ``Content-Type`` header.

    Raises:
        UnsupportedMediaType: not ``multipart/form-data``, or no boundary.
    """
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            f"send the export as multipart/form-data (fields file, justification, contributors), not "
            f"{media_type.strip() or 'no type'}"
        )
    for parameter in parameters.split(";"):
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"')
    raise UnsupportedMediaType("the multipart/form-data Content-Type names no boundary")


def body_cap(max_file_bytes: int) -> int:
    """The largest body accepted around a file of at most ``max_file_bytes``."""
    return max_file_bytes + MAX_JUSTIFICATION_BYTES + MAX_CONTRIBUTORS_BYTES + _FRAMING


@contextlib.asynccontextmanager
async def spooled(
    chunks: AsyncIterable[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    max_file_bytes: int,
    directory: Path | None = None,
) -> AsyncIterator[Upload]:
    """Parse the form streaming in ``chunks``; the spooled file is deleted when the context exits.

    Raises:
        UnsupportedMediaType: not a form.
        TooLarge: the declared length, the file or a field passes its cap (checked as bytes arrive).
        BadUpload: a malformed or truncated form.
        InvalidInput: a field is missing, repeated, unknown or not valid (``field`` names it).
    """
    boundary = boundary_of(content_type)
    cap = body_cap(max_file_bytes)
    declared = _declared_length(content_length)
    if declared is not None and declared > cap:
        raise TooLarge(f"the upload declares {declared} bytes; exports are limited to {max_file_bytes} bytes")
    with tempfile.TemporaryDirectory(prefix="infracalc-export-", dir=directory) as spool:
        yield await _parse(chunks, boundary, Path(spool), max_file_bytes, cap)


def _declared_length(content_length: str | None) -> int | None:
    if content_length is None:
        return None
    try:
        return int(content_length)
    except ValueError:
        raise BadUpload(f"Content-Length is not a number: {content_length!r}") from None


class _Form:
    """The state of one form being parsed: the field being read, the spooled file, the small fields."""

    def __init__(self, spool: Path, max_file_bytes: int) -> None:
        self.path = spool / "file"
        self.max_file_bytes = max_file_bytes
        self.fields: dict[str, bytearray] = {}
        self.name: str | None = None
        self.size = 0
        self.current: str | None = None
        self.output: IO[bytes] | None = None

    def start(self, segment: MultipartSegment) -> None:
        self.current = _start(segment, self.fields, self.name)
        if self.current == FILE:
            self.name = segment.filename or ""
            self.output = self.path.open("wb")
        else:
            self.fields[self.current] = bytearray()

    async def add(self, data: bytes) -> None:
        if self.current == FILE and self.output is not None:
            self.size += len(data)
            if self.size > self.max_file_bytes:
                raise TooLarge(f"the file is larger than {self.max_file_bytes} bytes, the exports' cap")
            await asyncio.to_thread(self.output.write, data)
        elif self.current is not None:
            held = self.fields[self.current]
            held += data
            if len(held) > _FIELD_LIMITS[self.current]:
                raise TooLarge(
                    f"the {self.current} field is larger than {_FIELD_LIMITS[self.current]} bytes", field=self.current
                )

    def close(self) -> None:
        if self.output is not None:
            self.output.close()

    def upload(self) -> Upload:
        if self.name is None:
            raise InvalidInput("the form has no file field", field=FILE)
        if JUSTIFICATION not in self.fields:
            raise InvalidInput("the form has no justification field", field=JUSTIFICATION)
        return Upload(
            path=self.path,
            name=self.name,
            size=self.size,
            justification=_text(self.fields[JUSTIFICATION], JUSTIFICATION),
            contributors=_contributors(self.fields.get(CONTRIBUTORS)),
        )


#: The largest value of each small field.
_FIELD_LIMITS = {JUSTIFICATION: MAX_JUSTIFICATION_BYTES, CONTRIBUTORS: MAX_CONTRIBUTORS_BYTES}


async def _parse(chunks: AsyncIterable[bytes], boundary: str, spool: Path, max_file_bytes: int, cap: int) -> Upload:
    form = _Form(spool, max_file_bytes)
    received = 0
    try:
        parser = PushMultipartParser(boundary, max_segment_count=8)
        async for chunk in chunks:
            received += len(chunk)
            if received > cap:
                raise TooLarge(f"the upload is larger than allowed; exports are limited to {max_file_bytes} bytes")
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    form.start(event)
                elif event is None:
                    form.current = None
                else:
                    await form.add(event)
        parser.close()
    except ParserError as error:
        raise BadUpload(f"the form is malformed or incomplete: {error}") from None
    finally:
        form.close()
    return form.upload()


def _start(segment: MultipartSegment, fields: dict[str, bytearray], file_name: str | None) -> str:
    """The field a new part holds, checked: a known name, seen once."""
    field = segment.name or ""
    if field not in {FILE, JUSTIFICATION, CONTRIBUTORS}:
        raise InvalidInput(
            f"unknown form field {field!r}: send file, justification and optionally contributors", field=field
        )
    if field in fields or (field == FILE and file_name is not None):
        raise InvalidInput(f"the form field {field!r} is repeated: one export is one file", field=field)
    if field == FILE and segment.filename is None:
        raise InvalidInput("the file field must be a file (with a filename)", field=FILE)
    return field


def _text(value: bytearray, field: str) -> str:
    try:
        return bytes(value).decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"the {field} field is not UTF-8 text", field=field) from None


def _contributors(value: bytearray | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = check_json(_text(value, CONTRIBUTORS))
    except JsonRefused as refusal:
        raise InvalidInput(f"contributors: {refusal}", field=CONTRIBUTORS) from None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            'contributors must be a JSON object {"<row label>|<column name>": [values...]}', field=CONTRIBUTORS
        )
    return parsed
