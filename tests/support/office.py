"""Office documents made for tests: real workbooks (openpyxl), minimal but valid OOXML and ODF packages, and bad ones.

The minimal packages hold what the formats require to be recognised (OOXML: ``[Content_Types].xml``
and ``_rels/.rels`` naming the main part; ODF: ``mimetype`` first and stored, and
``META-INF/manifest.xml``), so that a test can change one thing at a time.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping

import openpyxl

OOXML_MAIN = {
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    "docx": ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
    "xlsm": ("xl/workbook.xml", "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
}
ODF_TYPES = {
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
#: The start of an OLE2 compound file, as vbaProject.bin is.
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


def xlsx(rows: int = 3) -> bytes:
    """A real workbook written by openpyxl: one sheet of counts."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["region", "n"])
    for number in range(rows):
        sheet.append([f"region {number}", 100 + number])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def ooxml(
    kind: str,
    extra: Mapping[str, bytes] | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
    doctype: str = "",
) -> bytes:
    """A minimal OOXML package of ``kind`` (a key of :data:`OOXML_MAIN`), plus ``extra`` parts and content types.

    ``doctype`` goes before the content types' root element (packages never have one).
    """
    main, main_type = OOXML_MAIN[kind]
    types = {f"/{main}": main_type, **(overrides or {})}
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        + doctype
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{name}" ContentType="{value}"/>' for name, value in types.items())
        + "</Types>"
    )
    relationships = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        f'officeDocument" Target="{main}"/></Relationships>'
    )
    parts = {"[Content_Types].xml": content_types.encode(), "_rels/.rels": relationships.encode(), main: b"<doc/>"}
    return write_zip({**parts, **(extra or {})})


def odf(kind: str, extra: Mapping[str, bytes] | None = None, *, mimetype: str | None = None) -> bytes:
    """A minimal ODF package of ``kind`` (a key of :data:`ODF_TYPES`): ``mimetype`` first and stored."""
    media_type = mimetype or ODF_TYPES[kind]
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{media_type}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), media_type.encode(), compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", "<office:document-content/>")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_zip(parts: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive of ``parts``, in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def add_parts(package: bytes, parts: Mapping[str, bytes]) -> bytes:
    """``package`` with ``parts`` appended."""
    buffer = io.BytesIO(package)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def jar() -> bytes:
    """A Java archive: a ZIP with a manifest and a class."""
    manifest = b"Manifest-Version: 1.0\r\n"
    return write_zip({"META-INF/MANIFEST.MF": manifest, "Main.class": b"\xca\xfe\xba\xbe" + bytes(40)})


def lying_bomb(declared: int = 1000) -> bytes:
    """A valid workbook with one more part of 64 MiB of zeros whose sizes, local and central, say ``declared`` bytes.

    A reader trusting the headers sees a small document; inflating the part would give 64 MiB.
    """
    package = add_parts(xlsx(), {"xl/media/image1.png": bytes(64 * 1024 * 1024)})
    content = bytearray(package)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo("xl/media/image1.png")
    # The local header: uncompressed size at offset 22.
    struct.pack_into("<I", content, info.header_offset + 22, declared)
    # The central directory entry: find it by its name after the signature, uncompressed size at offset 24.
    name = info.filename.encode()
    at = content.rfind(b"PK\x01\x02", 0, content.rfind(name))
    struct.pack_into("<I", content, at + 24, declared)
    return bytes(content)


def declared_bomb(size: int = 200 * 1024 * 1024) -> bytes:
    """A valid workbook with one more part of ``size`` zeros: honest headers, a huge expansion."""
    buffer = io.BytesIO(xlsx())
    block = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w") as member,
    ):
        for _ in range(size // len(block)):
            member.write(block)
    return buffer.getvalue()
