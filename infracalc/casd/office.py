"""Office documents: ZIP packages told apart from plain archives, and checked within limits.

An XLSX, DOCX or PPTX file (Office Open XML) and an ODS, ODT or ODP file (OpenDocument) are ZIP
archives with a known layout. This module decides whether a ZIP file really is one of them, and
whether it is safe to keep, without trusting what the archive says about itself:

- the container first, from the raw bytes: one end record at the very end of the file, no ZIP64
  (Office files never need it), at most :data:`MAX_ENTRIES` entries and a central directory of
  at most :data:`MAX_DIRECTORY_BYTES`, no bytes before the first entry or between the entries that
  the directory does not account for; entries with plain relative names, no duplicates, no
  encryption, compressed with *stored* or *deflate* only;
- the format (:func:`identify_package`): OOXML is a package whose ``_rels/.rels`` names the main
  part and whose ``[Content_Types].xml`` gives that part a known main content type; ODF is a
  package whose first entry is ``mimetype`` holding a known media type, with a
  ``META-INF/manifest.xml``. Anything else (a plain ZIP, a jar, an EPUB...) is a plain archive.
  Macros are named: a macro-enabled main type, ``vbaProject.bin``, Excel 4 macro sheets, ODF
  ``Basic/`` and ``Scripts/``;
- the contents (:func:`check_package`): the sizes the directory declares must add up to at most a
  limit before a byte is inflated (zip bombs), every local header must agree with the directory
  (two readers must see the same file), then every entry is read once, in bounded memory, its
  CRC checked and its bytes counted against what was declared, and none may itself be an archive.

:func:`check_office_document` is the imports' rule on top: the content must be one of the accepted
formats, without macros, of the type its name's extension says. The output checks use
:func:`identify_package` and :func:`check_package` for XLSX exports, so both directions share one
defence. Every refusal is a :class:`PackageRefused` whose ``reason`` says which kind it is.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from xml.etree import ElementTree

from infracalc.casd.filetypes import HEAD_BYTES, magic_type
from infracalc.errors import InfracalcError

#: The most entries a package may have (read from its end record before the archive is opened).
MAX_ENTRIES = 10_000
#: The largest central directory accepted (10,000 entries with names of a few hundred bytes).
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
#: The default limit on what a package's entries may expand to: the output checks' default, 128 MiB.
DEFAULT_MAX_EXPANDED_BYTES = 128 * 1024 * 1024
#: The most bytes read of the small parts that identify a package (content types, relationships, mimetype).
MAX_DESCRIPTOR_BYTES = 1024 * 1024

_READ_CHUNK = 1024 * 1024
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30
_DATA_DESCRIPTOR_FLAG = 0x08
_ENCRYPTED_FLAG = 0x01
_COMPRESSIONS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_ZIP64_MARK_16 = 0xFFFF
_ZIP64_MARK_32 = 0xFFFFFFFF

_CONTENT_TYPES = "[Content_Types].xml"
_ROOT_RELATIONSHIPS = "_rels/.rels"
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_DOCUMENT_RELATIONSHIPS = frozenset(
    {
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
        "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",  # ISO 29500 strict
    }
)
#: Content types of parts that are or carry macros (compared in lower case, as substrings).
_MACRO_CONTENT_TYPES = ("vbaproject", "vbadata", "macrosheet", "macroenabled")
#: Part names of macros (lower case): VBA projects, and Excel 4 macro sheets.
_MACRO_PART = re.compile(r"(?:^|/)vbaproject\.bin$|^xl/macrosheets/")
#: ODF macro libraries: StarBasic, and scripts in other languages, in the document or an embedded object.
_ODF_SCRIPTS = re.compile(r"(?:^|/)(?:Basic|Scripts)/")
_ODF_MIMETYPE = "mimetype"
_ODF_MANIFEST = "META-INF/manifest.xml"
_XML_DECLARATIONS = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class PackageRefused(InfracalcError):
    """A ZIP file is not an acceptable office document; ``reason`` says which kind of refusal.

    Reasons: ``unreadable`` (a broken or ambiguous archive), ``too_large`` (too many entries, or more
    expanded bytes than the limit: a zip bomb), ``nested`` (an entry is itself an archive), and the
    imports' rules of :func:`check_office_document`: ``archive`` (a plain ZIP, not an office
    document), ``macros``, ``mismatch`` (the extension says another type).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OfficeFormat:
    """An office document format."""

    #: Short name, its usual extension: ``xlsx``, ``odt``...
    name: str
    #: For people: ``an Excel workbook (xlsx)``.
    description: str
    #: The media type a download of it is served with.
    media_type: str
    #: ``ooxml`` or ``odf``.
    family: str
    #: The name of the same format holding macros (``xlsm`` for ``xlsx``; ODF keeps its name).
    with_macros: str
    #: A format whose main part is declared macro-enabled (xlsm, docm, pptm).
    macro_enabled: bool = False


def _ooxml(name: str, description: str, media_type: str, with_macros: str, *, macros: bool = False) -> OfficeFormat:
    return OfficeFormat(name, description, media_type, "ooxml", with_macros, macros)


#: OOXML formats by the content type of their main part.
OOXML_MAIN_TYPES: dict[str, OfficeFormat] = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": _ooxml(
        "xlsx", "an Excel workbook (xlsx)", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsm"
    ),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": _ooxml(
        "docx",
        "a Word document (docx)",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docm",
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": _ooxml(
        "pptx",
        "a PowerPoint presentation (pptx)",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptm",
    ),
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": _ooxml(
        "xlsm",
        "a macro-enabled Excel workbook (xlsm)",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        "xlsm",
        macros=True,
    ),
    "application/vnd.ms-word.document.macroenabled.main+xml": _ooxml(
        "docm",
        "a macro-enabled Word document (docm)",
        "application/vnd.ms-word.document.macroEnabled.12",
        "docm",
        macros=True,
    ),
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": _ooxml(
        "pptm",
        "a macro-enabled PowerPoint presentation (pptm)",
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
        "pptm",
        macros=True,
    ),
}
#: ODF formats by the content of their ``mimetype`` entry.
ODF_MEDIA_TYPES: dict[str, OfficeFormat] = {
    media_type: OfficeFormat(name, description, media_type, "odf", name)
    for media_type, name, description in (
        ("application/vnd.oasis.opendocument.spreadsheet", "ods", "an OpenDocument spreadsheet (ods)"),
        ("application/vnd.oasis.opendocument.text", "odt", "an OpenDocument text (odt)"),
        ("application/vnd.oasis.opendocument.presentation", "odp", "an OpenDocument presentation (odp)"),
    )
}
_BY_NAME = {fmt.name: fmt for fmt in (*OOXML_MAIN_TYPES.values(), *ODF_MEDIA_TYPES.values())}
#: The office documents imports accept, by extension (lower case, with the dot).
OFFICE_EXTENSIONS: dict[str, OfficeFormat] = {
    f".{name}": _BY_NAME[name] for name in ("docx", "odp", "ods", "odt", "pptx", "xlsx")
}
_WITHOUT_MACROS = {"xlsm": "xlsx", "docm": "docx", "pptm": "pptx"}
#: Extensions of macro-enabled Office files (documents, templates, add-ins, shows), refused by name.
MACRO_EXTENSIONS = frozenset({".docm", ".dotm", ".potm", ".ppam", ".ppsm", ".pptm", ".xlam", ".xlsm", ".xltm"})


@dataclass(frozen=True, slots=True)
class Package:
    """What a ZIP file is, as :func:`identify_package` found it."""

    #: The office format; ``None`` for a plain archive.
    format: OfficeFormat | None
    #: For people: the format's description, or what kind of archive it is and why it is no office document.
    description: str
    #: Entries that are or hold macros (empty without macros).
    macros: tuple[str, ...]
    #: How many entries the archive has.
    entries: int

    @property
    def kind(self) -> str:
        """A short name: the format's (``xlsm`` for an xlsx holding macros), or ``zip`` for a plain archive."""
        if self.format is None:
            return "zip"
        return self.format.with_macros if self.macros else self.format.name


def office_format_for_name(name: str) -> OfficeFormat | None:
    """The accepted office format a file name's extension says, if any."""
    return OFFICE_EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def identify_package(source: Path | BinaryIO) -> Package:
    """What the ZIP file ``source`` is: an office document (and whether it holds macros) or a plain archive.

    Only the container's structure and the small parts that identify a format are read.

    Raises:
        PackageRefused: ``unreadable`` or ``too_large`` (too many entries): not a sound archive.
    """
    with _open(source) as archive:
        return _identify(archive)


def check_package(source: Path | BinaryIO, *, max_expanded_bytes: int) -> Package:
    """Identify the ZIP file ``source``, then check all of its contents within ``max_expanded_bytes``.

    Raises:
        PackageRefused: ``unreadable``, ``too_large`` or ``nested``.
    """
    with _open(source) as archive:
        package = _identify(archive)
        _check_contents(archive, max_expanded_bytes)
        return package


def check_office_document(source: Path | BinaryIO, *, name: str, max_expanded_bytes: int) -> OfficeFormat:
    """The imports' rule: ``source``, named ``name``, is an office document of the type its extension says.

    Cheap refusals first (a plain archive, macros, another type), then the contents are checked.

    Raises:
        PackageRefused: with any reason of the class.
    """
    extension = PurePosixPath(name).suffix.lower()
    expected = OFFICE_EXTENSIONS.get(extension)
    if expected is None:
        raise PackageRefused("archive", f"{extension or 'no extension'} is not an office document's extension")
    with _open(source) as archive:
        package = _identify(archive)
        if package.format is None:
            raise PackageRefused(
                "archive", f"named {extension}, but the content is {package.description}, not {expected.description}"
            )
        if package.macros:
            listed = ", ".join(package.macros[:5])
            plain = _WITHOUT_MACROS.get(package.format.name, package.format.name)
            raise PackageRefused(
                "macros",
                f"documents with macros are not accepted: the content is {package.description} holding macros "
                f"({listed}); save it without macros, as .{plain}",
            )
        if package.format != expected:
            raise PackageRefused(
                "mismatch",
                f"the name says {extension} ({expected.description}) but the content is {package.description}: "
                "the extension must agree with the content",
            )
        _check_contents(archive, max_expanded_bytes)
    return expected


# The container.


@dataclass(frozen=True, slots=True)
class _EndRecord:
    entries: int
    directory_size: int
    directory_offset: int
    position: int


@contextmanager
def _open(source: Path | BinaryIO) -> Iterator[zipfile.ZipFile]:
    if isinstance(source, Path):
        with source.open("rb") as file, _open(file) as archive:
            yield archive
        return
    end = _end_record(source)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise _unreadable(str(error)) from None
    with archive:
        _check_entries(source, archive, end)
        yield archive


def _unreadable(detail: str) -> PackageRefused:
    return PackageRefused("unreadable", f"the file starts like a ZIP archive but it cannot be read: {detail}")


def _end_record(file: BinaryIO) -> _EndRecord:
    """The end-of-central-directory record, checked before :mod:`zipfile` reads the directory."""
    size = file.seek(0, io.SEEK_END)
    start = max(0, size - (_EOCD_SIZE + 0xFFFF))
    file.seek(start)
    tail = file.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise _unreadable("no end-of-archive record")
    disk, directory_disk, on_disk, entries, directory_size, directory_offset, comment = struct.unpack(
        "<HHHHIIH", tail[at + 4 : at + _EOCD_SIZE]
    )
    position = start + at
    if (
        _ZIP64_MARK_16 in (on_disk, entries)
        or _ZIP64_MARK_32 in (directory_size, directory_offset)
        or tail[max(0, at - _ZIP64_LOCATOR_SIZE) : at].startswith(_ZIP64_LOCATOR)
    ):
        raise PackageRefused("unreadable", "ZIP64 archives are not accepted (no office document needs one)")
    if disk != 0 or directory_disk != 0 or on_disk != entries:
        raise _unreadable("archives spanning several disks are not accepted")
    if position + _EOCD_SIZE + comment != size:
        raise _unreadable("bytes follow the end of the archive")
    if directory_offset + directory_size != position:
        raise _unreadable("the central directory is not where the end record says (bytes before or inside the archive)")
    if entries > MAX_ENTRIES:
        raise PackageRefused("too_large", f"the archive has {entries:,} entries, more than {MAX_ENTRIES:,}")
    if directory_size > MAX_DIRECTORY_BYTES:
        raise PackageRefused(
            "too_large", f"the archive's directory is {directory_size:,} bytes, more than {MAX_DIRECTORY_BYTES:,}"
        )
    return _EndRecord(entries, directory_size, directory_offset, position)


def _check_entries(file: BinaryIO, archive: zipfile.ZipFile, end: _EndRecord) -> None:
    """Names, flags and methods; each local header agrees with the directory; entries neither overlap nor leave gaps."""
    infos = archive.infolist()
    if len(infos) != end.entries:
        raise _unreadable(f"the end record says {end.entries} entries, the directory holds {len(infos)}")
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        folded = name.casefold()
        if not name or name.startswith("/") or "\\" in name or "\x00" in name or ".." in PurePosixPath(name).parts:
            raise _unreadable(f"entry {name!r} is not a plain relative name")
        if folded in seen:
            raise _unreadable(f"entry {name!r} appears twice")
        seen.add(folded)
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise _unreadable(f"entry {name!r} is encrypted (remove the document's password)")
        if info.compress_type not in _COMPRESSIONS:
            raise _unreadable(f"entry {name!r} uses compression method {info.compress_type} (stored or deflate only)")
    expected_offset = 0
    for info in sorted(infos, key=lambda item: item.header_offset):
        if info.header_offset != expected_offset:
            raise _unreadable(f"entry {info.filename!r} is not where the previous entry ends (overlap or hidden bytes)")
        expected_offset = _local_entry_end(file, info)
    if expected_offset != end.directory_offset:
        raise _unreadable("bytes lie between the last entry and the central directory")


def _local_entry_end(file: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Check the entry's local header against the directory; return where its data (and descriptor) end."""
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER_SIZE)
    if len(header) < _LOCAL_HEADER_SIZE or not header.startswith(_LOCAL_HEADER):
        raise _unreadable(f"entry {info.filename!r} has no local header where the directory says")
    _, _, flags, method, _, _, crc, compressed, size, name_length, extra_length = struct.unpack("<4sHHHHHIIIHH", header)
    raw_name = file.read(name_length)
    encoding = "utf-8" if flags & 0x800 else "cp437"
    if raw_name.decode(encoding, errors="replace") != info.orig_filename or method != info.compress_type:
        raise _unreadable(f"entry {info.filename!r}: its local header names another entry or method")
    data_end = info.header_offset + _LOCAL_HEADER_SIZE + name_length + extra_length + info.compress_size
    if flags & _DATA_DESCRIPTOR_FLAG:
        # The sizes follow the data, in a descriptor (with or without its optional signature).
        file.seek(data_end)
        descriptor = file.read(16)
        fields = descriptor[4:16] if descriptor.startswith(b"PK\x07\x08") else descriptor[:12]
        if len(fields) < 12:  # noqa: PLR2004 - CRC, compressed and uncompressed sizes
            raise _unreadable(f"entry {info.filename!r}: its data descriptor is cut short")
        crc, compressed, size = struct.unpack("<III", fields)
        data_end += 16 if descriptor.startswith(b"PK\x07\x08") else 12
    if (crc, compressed, size) != (info.CRC, info.compress_size, info.file_size):
        raise _unreadable(f"entry {info.filename!r}: its local header and the directory disagree on its size or CRC")
    return int(data_end)


# The format.


def _identify(archive: zipfile.ZipFile) -> Package:
    infos = archive.infolist()
    names = {info.filename for info in infos}
    if infos and infos[0].filename == _ODF_MIMETYPE:
        return _identify_odf(archive, names, len(infos))
    if _CONTENT_TYPES in names:
        return _identify_ooxml(archive, names, len(infos))
    return Package(None, "a ZIP archive", (), len(infos))


def _small_part(archive: zipfile.ZipFile, name: str) -> bytes:
    """A descriptor part's bytes, at most :data:`MAX_DESCRIPTOR_BYTES` inflated (whatever its header declares)."""
    try:
        with archive.open(name) as member:
            data = member.read(MAX_DESCRIPTOR_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error) as error:
        raise _unreadable(f"{name} cannot be read: {error}") from None
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise PackageRefused("too_large", f"{name} is larger than {MAX_DESCRIPTOR_BYTES:,} bytes")
    return data


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    data = _small_part(archive, name)
    if _XML_DECLARATIONS.search(data):
        raise _unreadable(f"{name} declares a document type or entities, which packages never do")
    try:
        return ElementTree.fromstring(data)  # noqa: S314 - bounded, and without DTD or entities (refused above)
    except ElementTree.ParseError as error:
        raise _unreadable(f"{name} is not well-formed XML: {error}") from None


def _identify_odf(archive: zipfile.ZipFile, names: set[str], entries: int) -> Package:
    media_type = _small_part(archive, _ODF_MIMETYPE).decode("ascii", errors="replace")
    found = ODF_MEDIA_TYPES.get(media_type)
    if found is None:
        return Package(None, f"a ZIP package of type {media_type[:100]!r}, not an OpenDocument file", (), entries)
    if _ODF_MANIFEST not in names:
        return Package(None, f"a ZIP archive without {_ODF_MANIFEST}, not {found.description}", (), entries)
    macros = tuple(sorted(name for name in names if _ODF_SCRIPTS.search(name)))
    return Package(found, found.description, macros, entries)


def _identify_ooxml(archive: zipfile.ZipFile, names: set[str], entries: int) -> Package:
    by_folded = {name.casefold(): name for name in names}  # OPC part names are case-insensitive
    if _ROOT_RELATIONSHIPS.casefold() not in by_folded:
        return Package(None, f"a ZIP archive with {_CONTENT_TYPES} but no {_ROOT_RELATIONSHIPS}", (), entries)
    types = _xml(archive, _CONTENT_TYPES)
    overrides: dict[str, str] = {}
    defaults: dict[str, str] = {}
    for element in types:
        content_type = element.get("ContentType", "").strip().lower()
        if element.tag == f"{_CT}Override":
            overrides[element.get("PartName", "").lstrip("/").casefold()] = content_type
        elif element.tag == f"{_CT}Default":
            defaults[element.get("Extension", "").casefold()] = content_type
    main: str | None = None
    for relationship in _xml(archive, by_folded[_ROOT_RELATIONSHIPS.casefold()]):
        if relationship.tag == f"{_REL}Relationship" and relationship.get("Type") in _OFFICE_DOCUMENT_RELATIONSHIPS:
            main = posixpath.normpath(relationship.get("Target", "").lstrip("/")).casefold()
            break
    if main is None or main not in by_folded:
        return Package(None, "a ZIP archive with content types but no main document part", (), entries)

    def content_type_of(folded: str) -> str:
        return overrides.get(folded) or defaults.get(PurePosixPath(folded).suffix.lstrip("."), "")

    main_type = content_type_of(main)
    found = OOXML_MAIN_TYPES.get(main_type)
    if found is None:
        return Package(
            None, f"an Office Open XML package of another kind (main part {main_type or 'untyped'})", (), entries
        )
    macros = sorted(
        {
            by_folded[folded]
            for folded in by_folded
            if _MACRO_PART.search(folded) or any(word in content_type_of(folded) for word in _MACRO_CONTENT_TYPES)
        }
    )
    return Package(found, found.description, tuple(macros), entries)


# The contents.


def _check_contents(archive: zipfile.ZipFile, max_expanded_bytes: int) -> None:
    infos = archive.infolist()
    declared = sum(info.file_size for info in infos)
    if declared > max_expanded_bytes:
        raise PackageRefused(
            "too_large",
            f"the document expands to {declared:,} bytes, more than {max_expanded_bytes:,} "
            "(INFRACALC_OFFICE_MAX_EXPANDED_BYTES): too large to check, or a zip bomb",
        )
    budget = max_expanded_bytes
    for info in infos:
        if info.is_dir():
            continue
        try:
            read = _read_entry(archive, info, budget)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
            RuntimeError,
            zlib.error,
        ) as error:
            raise _unreadable(f"entry {info.filename} cannot be read: {error}") from None
        if read != info.file_size:
            raise _unreadable(f"entry {info.filename} holds {read:,} bytes, not the {info.file_size:,} declared")
        budget -= read


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> int:
    """Read one entry to its end (zipfile checks its CRC there); return how many bytes it expanded to.

    Raises:
        PackageRefused: the entry is itself an archive, or expands beyond what it declared or ``budget``.
    """
    read = 0
    with archive.open(info) as member:
        while chunk := member.read(_READ_CHUNK):
            if read == 0:
                inner = magic_type(chunk[:HEAD_BYTES])
                if inner is not None and inner.archive:
                    raise PackageRefused(
                        "nested",
                        f"entry {info.filename} is itself an archive ({inner.description}): documents holding "
                        "archives or embedded documents are not accepted",
                    )
            read += len(chunk)
            # zipfile stops at the declared size; counting enforces it here too, whatever zipfile does.
            if read > min(info.file_size, budget):
                raise PackageRefused("too_large", f"entry {info.filename} expands beyond its declared size")
    return read


__all__ = [
    "DEFAULT_MAX_EXPANDED_BYTES",
    "MACRO_EXTENSIONS",
    "MAX_DESCRIPTOR_BYTES",
    "MAX_DIRECTORY_BYTES",
    "MAX_ENTRIES",
    "ODF_MEDIA_TYPES",
    "OFFICE_EXTENSIONS",
    "OOXML_MAIN_TYPES",
    "OfficeFormat",
    "Package",
    "PackageRefused",
    "check_office_document",
    "check_package",
    "identify_package",
    "office_format_for_name",
]
