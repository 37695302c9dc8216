"""What a file is, from its content rather than its name: magic bytes, and whether it is really text.

An extension is what the uploader says; the first bytes are what the file is. :func:`sniff` reads
the start of a file (:data:`HEAD_BYTES`) and names its type from a short table of signatures (the
archives and compressed streams INFRACALC refuses, the usual data and document formats,
executables), or ``text`` when the start is UTF-8 without control characters, or ``binary``.

:class:`TextCheck` follows a whole stream, chunk by chunk, to say whether *all* of it is such text
(a code file released at once must be text to its last byte, not only at its start); it stops
looking after a given number of bytes, since only small files need the answer.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

#: How many bytes of a file's start :func:`sniff` needs (a tar header's magic sits at 257-262).
HEAD_BYTES = 8192


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
    (b"PK\x03\x04", FileType("zip", "ZIP archive (or a format built on ZIP: xlsx, docx, odt, jar)", archive=True)),
    (b"PK\x05\x06", FileType("zip", "ZIP archive (empty)", archive=True)),
    (b"PK\x07\x08", FileType("zip", "ZIP archive (spanned)", archive=True)),
    (b"\x1f\x8b", FileType("gzip", "gzip-compressed data", archive=True)),
    (b"\x1f\x9d", FileType("compress", "compress (.Z) data", archive=True)),
    (b"\xfd7zXZ\x00", FileType("xz", "xz-compressed data", archive=True)),
    (b"\x28\xb5\x2f\xfd", FileType("zstd", "Zstandard-compressed data", archive=True)),
    (b"7z\xbc\xaf\x27\x1c", FileType("7z", "7-Zip archive", archive=True)),
    (b"Rar!\x1a\x07", FileType("rar", "RAR archive", archive=True)),
    (b"LZIP", FileType("lzip", "lzip-compressed data", archive=True)),
    (b"\x04\x22\x4d\x18", FileType("lz4", "LZ4-compressed data", archive=True)),
    (b"MSCF\x00\x00\x00\x00", FileType("cab", "Microsoft cabinet archive", archive=True)),
    (b"%PDF-", FileType("pdf", "PDF document", media_type="application/pdf")),
    (b"\x89PNG\r\n\x1a\n", FileType("png", "PNG image", media_type="image/png")),
    (b"\xff\xd8\xff", FileType("jpeg", "JPEG image", media_type="image/jpeg")),
    (b"GIF87a", FileType("gif", "GIF image", media_type="image/gif")),
    (b"GIF89a", FileType("gif", "GIF image", media_type="image/gif")),
    (b"PAR1", FileType("parquet", "Apache Parquet data")),
    (b"SQLite format 3\x00", FileType("sqlite", "SQLite database")),
    (b"\x89HDF\r\n\x1a\n", FileType("hdf5", "HDF5 data")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", FileType("ole2", "Microsoft compound document (xls, doc, msi)")),
    (b"<stata_dta>", FileType("stata", "Stata data (dta)")),
    (
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc2\xea\x81\x60\xb3\x14\x11\xcf\xbd\x92\x08\x00\x09\xc7\x31\x8c\x18\x1f\x10\x11",
        FileType("sas7bdat", "SAS data set (sas7bdat)"),
    ),
    (b"\x7fELF", FileType("elf", "ELF executable or library")),
    (b"MZ", FileType("pe", "Windows executable (PE/MZ)")),
)

_BZIP2 = re.compile(rb"BZh[1-9]")
_TAR_MAGIC_OFFSET = 257
TEXT = FileType("text", "UTF-8 text", media_type="text/plain; charset=utf-8")
BINARY = FileType("binary", "binary data of no known type")

#: Bytes that do not occur in text files: C0 controls other than tab, line feed, form feed and
#: carriage return, and DEL.
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff(head: bytes, *, complete: bool = False) -> FileType:
    """The type of a file starting with ``head`` (at least :data:`HEAD_BYTES` of it, or all of it).

    Args:
        head: the file's first bytes.
        complete: ``head`` is the whole file (so a UTF-8 sequence cut at its end is an error, not a cut).
    """
    for signature, file_type in _SIGNATURES:
        if head.startswith(signature):
            return file_type
    if _BZIP2.match(head):
        return FileType("bzip2", "bzip2-compressed data", archive=True)
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return FileType("tar", "tar archive", archive=True)
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


__all__ = ["BINARY", "HEAD_BYTES", "TEXT", "FileType", "TextCheck", "sniff"]
