"""What a file is, from its content: magic bytes for binary formats, sniffing for text.

The name's extension is only a hint. Binary formats are known by their first bytes (PNG, JPEG,
PDF, and ZIP archives, opened to tell an XLSX workbook, ``[Content_Types].xml`` plus ``xl/``,
from other Office files and plain archives). Text is read from its first 64 KiB: SVG, HTML and
JSON by their opening, then CSV/TSV when most lines split into the same number (2 or more) of
fields on a tab, a comma or a semicolon, and markdown tables (``|`` separated, with a ``|---|``
rule line) wherever they are in the text. Plain-text names (``.csv``, ``.tsv``, ``.txt``, ``.md``)
agree with any plain text: the content decides only whether the file is also read as a table,
so a table saved as ``.txt`` is still checked cell by cell.
"""

from __future__ import annotations

import csv
import json
import re
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath

#: The types an export may have, in the order the refusal message lists them.
ALLOWED_TYPES = ("csv", "tsv", "txt", "md", "json", "png", "jpeg", "svg", "html", "pdf", "xlsx")
#: Plain-text types: their names agree with any plain text.
PLAIN_TEXT_TYPES = frozenset({"csv", "tsv", "txt", "md"})
#: How much of the file the sniffing reads.
SNIFF_BYTES = 64 * 1024
#: The most parts a ZIP archive (XLSX) may declare; read from its end record before opening it.
MAX_ZIP_ENTRIES = 10_000

_EXTENSIONS = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "txt": "txt",
    "text": "txt",
    "md": "md",
    "markdown": "md",
    "json": "json",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "svg": "svg",
    "html": "html",
    "htm": "html",
    "pdf": "pdf",
    "xlsx": "xlsx",
}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"%PDF-", "pdf"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!", "rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2 (xls/doc)"),
    (b"MZ", "exe"),
    (b"\x7fELF", "elf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"PAR1", "parquet"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\x93NUMPY", "npy"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_EOCD = b"PK\x05\x06"
_EOCD_MIN = 22

_HTML_OPENINGS = ("<!doctype html", "<html", "<head", "<body", "<table", "<div", "<meta", "<title", "<p>", "<h1")
_CONTROL_OK = frozenset("\t\n\r\f")
_MAX_CONTROL_SHARE = 0.01
_SNIFF_LINES = 50
_SNIFF_MIN_LINES = 2
_SNIFF_AGREEMENT = 0.6
_SNIFF_DELIMITERS = ("\t", ",", ";")
#: A markdown table's separator line: | --- | :---: |
_PIPE_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
_MARKDOWN_STARTS = ("#", "```", "- ", "* ", "|", "> ")


@dataclass(frozen=True, slots=True)
class Detection:
    """What the content is, what the name says, and how to read the file as a table."""

    #: The content's type: one of :data:`ALLOWED_TYPES`, a refused type's name, or ``unknown``.
    detected_type: str
    #: The type the name's extension says (``None`` without an extension).
    hinted_type: str | None
    #: The column separator when the content reads as a table (CSV/TSV, or text that looks like one).
    delimiter: str | None = None
    #: The text encoding (``utf-8``, ``utf-8-sig`` or ``cp1252``) for text types.
    encoding: str | None = None
    #: Why the type could not be told, when the content is broken rather than foreign.
    problem: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the detected type may be exported."""
        return self.detected_type in ALLOWED_TYPES

    @property
    def agrees_with_name(self) -> bool:
        """Whether the name's extension agrees with the content (true without an extension)."""
        if self.hinted_type is None or self.hinted_type == self.detected_type:
            return True
        return self.hinted_type in PLAIN_TEXT_TYPES and self.detected_type in PLAIN_TEXT_TYPES


def type_from_name(name: str) -> str | None:
    """The type a file name's extension suggests: a known type, the raw extension, or ``None``."""
    suffix = PurePath(name).suffix.lower().lstrip(".")
    if not suffix:
        return None
    return _EXTENSIONS.get(suffix, suffix)


def detect_type(path: Path, name: str) -> Detection:
    """Detect the type of the file at ``path`` (submitted as ``name``) from its content."""
    hint = type_from_name(name)
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        complete = handle.read(1) == b""
    if head.startswith(_ZIP_MAGIC):
        return _detect_zip(path, hint)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return Detection(kind, hint)
    return _detect_text(head, complete, hint)


def zip_entry_count(path: Path) -> int:
    """The number of entries a ZIP archive declares in its end record (read before opening it).

    Raises:
        zipfile.BadZipFile: when there is no end record, or the archive is ZIP64 (more than 65,535 entries).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        start = max(0, size - (_EOCD_MIN + 0xFFFF))
        handle.seek(start)
        tail = handle.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_MIN:
        raise zipfile.BadZipFile("no end-of-archive record")
    (entries,) = struct.unpack("<H", tail[at + 10 : at + 12])
    if entries == 0xFFFF:  # noqa: PLR2004 - the ZIP64 marker
        raise zipfile.BadZipFile("ZIP64 archives (65,535 entries or more) are not accepted")
    return int(entries)


def _detect_zip(path: Path, hint: str | None) -> Detection:
    try:
        entries = zip_entry_count(path)
        if entries > MAX_ZIP_ENTRIES:
            return Detection(
                "unknown", hint, problem=f"the ZIP archive declares {entries:,} parts (at most {MAX_ZIP_ENTRIES:,})"
            )
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        return Detection(
            "unknown",
            hint,
            problem=f"the file starts like a ZIP archive (as XLSX files do) but the archive cannot be read: {error}",
        )
    if "[Content_Types].xml" in names:
        if any(name.startswith("xl/") for name in names):
            return Detection("xlsm" if "xl/vbaProject.bin" in names else "xlsx", hint)
        if any(name.startswith("word/") for name in names):
            return Detection("docx", hint)
        if any(name.startswith("ppt/") for name in names):
            return Detection("pptx", hint)
    return Detection("zip", hint)


def _decode(head: bytes, complete: bool) -> tuple[str, str] | None:
    """The sniffed text and its encoding, or ``None`` for binary content."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return None
    encoding = "utf-8"
    if head.startswith(b"\xef\xbb\xbf"):
        head, encoding = head[3:], "utf-8-sig"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if not complete and error.start >= len(head) - 3 and error.reason == "unexpected end of data":
            text = head[: error.start].decode("utf-8")
        else:
            text, encoding = head.decode("cp1252", errors="replace"), "cp1252"
    controls = sum(1 for char in text if char < " " and char not in _CONTROL_OK)
    if controls > _MAX_CONTROL_SHARE * max(1, len(text)):
        return None
    return text, encoding


def _detect_text(head: bytes, complete: bool, hint: str | None) -> Detection:  # noqa: PLR0911 - one return per type
    decoded = _decode(head, complete)
    if decoded is None:
        problem = None
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            problem = "the file is UTF-16 text, which is not accepted: save it as UTF-8"
        return Detection("unknown", hint, problem=problem)
    text, encoding = decoded
    opening = text.lstrip()[:4096].lower()
    if opening.startswith("<"):
        if "<svg" in opening and (opening.startswith(("<svg", "<?xml", "<!--", "<!doctype svg"))):
            return Detection("svg", hint, encoding=encoding)
        if opening.startswith(_HTML_OPENINGS) or any(tag in opening for tag in ("<html", "<body", "<!doctype html")):
            return Detection("html", hint, encoding=encoding)
        if opening.startswith("<?xml"):
            return Detection("xml", hint, encoding=encoding)
    delimiter = _sniff_delimiter(text, complete)
    # A long file cannot be parsed here: its opening decides, unless a table's name agrees with
    # its lines (a CSV whose first label is "[0-5)"). Either way no table goes unchecked.
    table_named = hint in PLAIN_TEXT_TYPES and delimiter is not None and not complete
    if opening.startswith(("{", "[")) and _looks_like_json(text, complete) and not table_named:
        return Detection("json", hint, encoding=encoding)
    if hint in PLAIN_TEXT_TYPES:
        if delimiter is None and hint in {"csv", "tsv"}:
            delimiter = "\t" if hint == "tsv" else ","
        return Detection(hint, hint, delimiter=delimiter, encoding=encoding)
    if delimiter is not None:
        return Detection("tsv" if delimiter == "\t" else "csv", hint, delimiter=delimiter, encoding=encoding)
    lines = text.splitlines()[:_SNIFF_LINES]
    markdown = any(line.startswith(_MARKDOWN_STARTS) for line in lines)
    return Detection("md" if markdown else "txt", hint, encoding=encoding)


def _looks_like_json(text: str, complete: bool) -> bool:
    if not complete:
        return True  # too long to parse here; its opening says JSON
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _sniff_delimiter(text: str, complete: bool) -> str | None:
    """The separator most lines split on into the same number (2+) of fields, if any."""
    lines = text.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [line for line in lines[:_SNIFF_LINES] if line.strip()]
    if len(lines) < _SNIFF_MIN_LINES:
        return None
    for delimiter in _SNIFF_DELIMITERS:
        try:
            widths = Counter(len(row) for row in csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        width, rows = widths.most_common(1)[0]
        if width >= 2 and rows >= _SNIFF_AGREEMENT * len(lines):  # noqa: PLR2004 - a table has 2+ columns
            return delimiter
    if any(_PIPE_TABLE_RULE.match(line) for line in lines):
        return "|"  # a markdown table, even among prose: prose lines read as rows without data
    return None
