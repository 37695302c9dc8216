"""What a file is, from its content rather than its name: the one sniffer of imports and output checks.

An extension is what the uploader says; the first bytes are what the file is. One table of
signatures (:func:`magic_type`) names the binary formats: the archives and compressed streams
INFRACALC refuses, the usual data, document and image formats, executables. Two readings build on
it, so that imports and exports can never disagree on what a file is:

- :func:`sniff`, for imports: the type from a file's start (:data:`HEAD_BYTES`), or ``text`` when the
  start is UTF-8 without control characters, or ``binary``. :class:`TextCheck` follows a whole
  stream, chunk by chunk, to say whether *all* of it is such text (a code file released at once
  must be text to its last byte, not only at its start);
- :func:`detect_type`, for the output checks: the type of a whole file with its name as a hint.
  ZIP files are opened (:mod:`infracalc.casd.office`) to tell an office document from a plain
  archive. Text is read from its first 64 KiB: SVG, HTML and JSON by their opening, then CSV/TSV
  when most lines split into the same number (2 or more) of fields on a tab, a comma or a
  semicolon, and markdown tables (``|`` separated, with a ``|---|`` rule line) wherever they are in
  the text. Plain-text names (``.csv``, ``.tsv``, ``.txt``, ``.md``) agree with any plain text: the
  content decides only whether the file is also read as a table, so a table saved as ``.txt`` is
  still checked cell by cell.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath

#: How many bytes of a file's start :func:`sniff` needs (a tar header's magic sits at 257-262).
HEAD_BYTES = 8192
#: How much of the file :func:`detect_type` reads.
SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileType:
    """A file's type as its content shows it."""

    #: Short name: ``text``, ``pdf``, ``zip``, ``binary``...
    name: str
    #: For people: ``ZIP archive``, ``UTF-8 text``...
    description: str
    #: An archive or a compressed stream (INFRACALC refuses them: they hide what they hold).
    archive: bool = False
    #: The media type a download of it is served with.
    media_type: str = "application/octet-stream"


#: Signatures at offset 0, most specific first.
_SIGNATURES: tuple[tuple[bytes, FileType], ...] = (
    (b"PK\x03\x04", FileType("zip", "a ZIP archive", archive=True)),
    (b"PK\x05\x06", FileType("zip", "a ZIP archive (empty)", archive=True)),
    (b"PK\x07\x08", FileType("zip", "a ZIP archive (spanned)", archive=True)),
    (b"\x1f\x8b\x08", FileType("gzip", "gzip-compressed data", archive=True)),
    (b"\x1f\x9d", FileType("compress", "compress (.Z) data", archive=True)),
    (b"\xfd7zXZ\x00", FileType("xz", "xz-compressed data", archive=True)),
    (b"\x28\xb5\x2f\xfd", FileType("zstd", "Zstandard-compressed data", archive=True)),
    (b"7z\xbc\xaf\x27\x1c", FileType("7z", "a 7-Zip archive", archive=True)),
    (b"Rar!\x1a\x07", FileType("rar", "a RAR archive", archive=True)),
    (b"LZIP", FileType("lzip", "lzip-compressed data", archive=True)),
    (b"\x04\x22\x4d\x18", FileType("lz4", "LZ4-compressed data", archive=True)),
    (b"MSCF\x00\x00\x00\x00", FileType("cab", "a Microsoft cabinet archive", archive=True)),
    (b"%PDF-", FileType("pdf", "a PDF document", media_type="application/pdf")),
    (b"\x89PNG\r\n\x1a\n", FileType("png", "a PNG image", media_type="image/png")),
    (b"\xff\xd8\xff", FileType("jpeg", "a JPEG image", media_type="image/jpeg")),
    (b"GIF87a", FileType("gif", "a GIF image", media_type="image/gif")),
    (b"GIF89a", FileType("gif", "a GIF image", media_type="image/gif")),
    (b"II*\x00", FileType("tiff", "a TIFF image", media_type="image/tiff")),
    (b"MM\x00*", FileType("tiff", "a TIFF image", media_type="image/tiff")),
    (b"PAR1", FileType("parquet", "Apache Parquet data")),
    (b"SQLite format 3\x00", FileType("sqlite", "a SQLite database")),
    (b"\x89HDF\r\n\x1a\n", FileType("hdf5", "HDF5 data")),
    (b"\x93NUMPY", FileType("npy", "a NumPy array (npy)")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", FileType("ole2", "a Microsoft compound document (xls, doc, msi)")),
    (b"<stata_dta>", FileType("stata", "Stata data (dta)")),
    (
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc2\xea\x81\x60\xb3\x14\x11\xcf\xbd\x92\x08\x00\x09\xc7\x31\x8c\x18\x1f\x10\x11",
        FileType("sas7bdat", "a SAS data set (sas7bdat)"),
    ),
    (b"\x7fELF", FileType("elf", "an ELF executable or library")),
    (b"MZ", FileType("exe", "a Windows executable (PE/MZ)")),
)

_BZIP2 = re.compile(rb"BZh[1-9]")
_TAR_MAGIC_OFFSET = 257
BZIP2 = FileType("bzip2", "bzip2-compressed data", archive=True)
TAR = FileType("tar", "a tar archive", archive=True)
TEXT = FileType("text", "UTF-8 text", media_type="text/plain; charset=utf-8")
BINARY = FileType("binary", "binary data of no known type")

#: Bytes that do not occur in text files: C0 controls other than tab, line feed, form feed and
#: carriage return, and DEL.
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def magic_type(head: bytes) -> FileType | None:
    """The binary format whose signature ``head`` (a file's first bytes) starts with, if any."""
    for signature, file_type in _SIGNATURES:
        if head.startswith(signature):
            return file_type
    if _BZIP2.match(head):
        return BZIP2
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return TAR
    return None


def sniff(head: bytes, *, complete: bool = False) -> FileType:
    """The type of a file starting with ``head`` (at least :data:`HEAD_BYTES` of it, or all of it).

    Args:
        head: the file's first bytes.
        complete: ``head`` is the whole file (so a UTF-8 sequence cut at its end is an error, not a cut).
    """
    found = magic_type(head)
    if found is not None:
        return found
    check = TextCheck(limit=len(head))
    check.feed(head)
    if complete:
        check.finish()
    return TEXT if check.text else BINARY


class TextCheck:
    """Follows a stream and says whether its first ``limit`` bytes are UTF-8 text without control characters.

    A UTF-8 byte order mark is accepted. Once ``limit`` bytes have been seen, later chunks are not
    looked at (``text`` then speaks of the first ``limit`` bytes, and ``covered`` is false).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self.text = True
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")

    @property
    def covered(self) -> bool:
        """Whether every byte fed so far was looked at."""
        return self.seen <= self.limit

    def feed(self, chunk: bytes) -> None:
        """Look at the next chunk of the stream."""
        if not self.text or self.seen >= self.limit:
            self.seen += len(chunk)
            return
        part = chunk[: self.limit - self.seen]
        self.seen += len(chunk)
        if _NOT_TEXT.search(part):
            self.text = False
            return
        try:
            self._decoder.decode(part, final=False)
        except UnicodeDecodeError:
            self.text = False

    def finish(self) -> None:
        """The stream ended: a UTF-8 sequence left unfinished makes it not text."""
        if self.text and self.covered:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.text = False


# The output checks' reading of a whole file.

#: The types an export may have, in the order the refusal message lists them.
ALLOWED_TYPES = ("csv", "tsv", "txt", "md", "json", "png", "jpeg", "svg", "html", "pdf", "xlsx")
#: Plain-text types: their names agree with any plain text.
PLAIN_TEXT_TYPES = frozenset({"csv", "tsv", "txt", "md"})

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
    found = magic_type(head)
    if found is None:
        return _detect_text(head, complete, hint)
    if found.name == "zip":
        return _detect_zip(path, hint)
    return Detection(found.name, hint)


def _detect_zip(path: Path, hint: str | None) -> Detection:
    # office.py reads the signatures of this module: imported here, not at the top, to keep it acyclic.
    from infracalc.casd.office import PackageRefused, identify_package  # noqa: PLC0415

    try:
        package = identify_package(path)
    except PackageRefused as error:
        return Detection("unknown", hint, problem=str(error))
    return Detection(package.kind, hint)


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


__all__ = [
    "ALLOWED_TYPES",
    "BINARY",
    "HEAD_BYTES",
    "PLAIN_TEXT_TYPES",
    "SNIFF_BYTES",
    "TEXT",
    "Detection",
    "FileType",
    "TextCheck",
    "detect_type",
    "magic_type",
    "sniff",
    "type_from_name",
]
