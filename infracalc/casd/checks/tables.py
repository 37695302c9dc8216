"""Reading tables for the checks, row by row, in bounded memory and time.

CSV and TSV are read with the :mod:`csv` module from lines fetched with a length cap, so that a
record longer than ``max_row_bytes`` (a row with millions of columns, a huge quoted field) is
refused before it is held in memory. Then each row is refused when it has more than
``max_columns`` columns or a cell longer than ``max_cell_bytes``, and the table when it has more
than ``max_rows`` rows. The csv module's own field limit is process-wide: it is raised to
``max_cell_bytes`` when that is larger (never lowered), and the cell limit is applied here.

XLSX workbooks are checked as office packages first, with the imports' defence
(:func:`infracalc.casd.office.check_package`): a sound archive whose parts' declared sizes add up
to at most ``max_uncompressed_bytes`` (zip bombs), every part read once within that limit, none an
archive itself. Then each worksheet's XML is scanned, streaming, for its rows and the cells in each
row, because openpyxl builds a whole row in memory. Only then is the workbook opened with openpyxl
in read-only mode, every sheet in turn.
"""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from infracalc.casd.checks.errors import ParseRefused
from infracalc.casd.checks.settings import CheckSettings
from infracalc.casd.office import PackageRefused, check_package

_SCAN_CHUNK = 1024 * 1024
_TAG_PREFIX = 64  # enough of a tag to recognise it
_SHEET_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)[\s>/]")
_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
#: Parts of a workbook that no rule can read: pictures, charts, embedded files, links to other files.
_EMBEDDED_PREFIXES = ("xl/media/", "xl/charts/", "xl/embeddings/", "xl/externalLinks/", "xl/activeX/")


class _RecordSize:
    """The characters read for the record the csv reader is building."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        self.chars = 0


def _capped_lines(handle: IO[str], limit: int, record: _RecordSize) -> Iterator[str]:
    """The lines of ``handle``, each fetched with a length cap, refusing a record longer than ``limit``."""
    readline = handle.readline
    while line := readline(limit + 1):
        record.chars += len(line)
        if record.chars > limit:
            raise ParseRefused(
                f"a record is longer than {limit:,} characters (INFRACALC_EXPORT_MAX_ROW_BYTES): "
                "the table has too many columns or a huge cell"
            )
        yield line


def _allow_fields_up_to(size: int) -> None:
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)


def csv_rows(path: Path, *, delimiter: str, encoding: str, settings: CheckSettings) -> Iterator[list[str]]:
    """The rows of a CSV/TSV file, every one within the limits.

    Raises:
        ParseRefused: on the first row or cell beyond a limit, or a line the csv module cannot read.
    """
    _allow_fields_up_to(settings.max_cell_bytes + 1)
    max_columns, max_rows, max_cell = settings.max_columns, settings.max_rows, settings.max_cell_bytes
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        record = _RecordSize()
        lines = _capped_lines(handle, settings.max_row_bytes, record)
        if delimiter == "|":  # markdown: no quoting, and the outer pipes open and close the row
            reader = csv.reader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(lines, delimiter=delimiter)
        number = 0
        try:
            for row in reader:
                number += 1
                if number > max_rows:
                    raise ParseRefused(f"the table has more than {max_rows:,} rows (INFRACALC_EXPORT_MAX_ROWS)")
                if len(row) > max_columns:
                    raise ParseRefused(
                        f"row {number:,} has {len(row):,} columns, more than {max_columns:,} "
                        "(INFRACALC_EXPORT_MAX_COLUMNS)"
                    )
                if record.chars > max_cell and max(map(len, row)) > max_cell:
                    raise ParseRefused(
                        f"row {number:,} has a cell longer than {max_cell:,} characters "
                        "(INFRACALC_EXPORT_MAX_CELL_BYTES)"
                    )
                record.chars = 0
                if delimiter == "|" and row and row[0] == "":
                    yield row[1:-1] if row[-1].strip() == "" else row[1:]
                else:
                    yield row
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise ParseRefused(
                    f"row {number + 1:,} has a cell longer than {max_cell:,} characters "
                    "(INFRACALC_EXPORT_MAX_CELL_BYTES)"
                ) from None
            raise ParseRefused(
                f"line {reader.line_num:,} cannot be read as {'TSV' if delimiter == chr(9) else 'CSV'}: {error}"
            ) from None


@dataclass(frozen=True, slots=True)
class WorkbookParts:
    """What a workbook holds besides its cells."""

    #: Parts no rule can read (pictures, charts, embedded files, external links), at most 50 names.
    embedded: tuple[str, ...]


def _scan_worksheet(archive: zipfile.ZipFile, name: str, settings: CheckSettings) -> None:
    """Refuse a worksheet with too many rows, or a row with too many cells, reading its XML as a stream."""
    rows = cells = 0
    carry = b""
    with archive.open(name) as member:
        while chunk := member.read(_SCAN_CHUNK):
            data = carry + chunk
            cut = data.rfind(b"<")
            if cut < 0:
                cut = len(data)
            for match in _SHEET_TAG.finditer(data, 0, cut):
                if match.group(1) == b"row":
                    rows += 1
                    cells = 0
                    if rows > settings.max_rows:
                        raise ParseRefused(
                            f"worksheet {name} has more than {settings.max_rows:,} rows (INFRACALC_EXPORT_MAX_ROWS)"
                        )
                else:
                    cells += 1
                    if cells > settings.max_columns:
                        raise ParseRefused(
                            f"worksheet {name}: row {rows:,} has more than {settings.max_columns:,} cells "
                            "(INFRACALC_EXPORT_MAX_COLUMNS)"
                        )
            carry = data[cut : cut + _TAG_PREFIX]  # past its opening, the rest of a tag is not needed


def check_workbook_archive(path: Path, settings: CheckSettings) -> WorkbookParts:
    """Check an XLSX file as an archive before openpyxl reads it.

    Raises:
        ParseRefused: a broken archive, too many parts, an expanded size over the limit, or a
            worksheet over the row or column limits.
    """
    try:
        check_package(path, max_expanded_bytes=settings.max_uncompressed_bytes)
    except PackageRefused as error:
        if error.reason == "unreadable":
            raise ParseRefused(f"the workbook is not a readable XLSX (ZIP) archive: {error}") from None
        raise ParseRefused(str(error)) from None
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                if _WORKSHEET.fullmatch(info.filename):
                    _scan_worksheet(archive, info.filename, settings)
            embedded = tuple(info.filename for info in infos if info.filename.startswith(_EMBEDDED_PREFIXES))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise ParseRefused(f"the workbook is not a readable XLSX (ZIP) archive: {error}") from None
    except (NotImplementedError, RuntimeError) as error:  # an unsupported compression method, an encrypted part
        raise ParseRefused(f"the workbook cannot be read: {error}") from None
    return WorkbookParts(embedded=embedded[:50])


def workbook_sheets(path: Path, settings: CheckSettings) -> Iterator[tuple[str, Iterator[Sequence[object]]]]:
    """Each sheet of an XLSX workbook (already checked as an archive) with its rows of cell values.

    Values are the ones last computed (``data_only``): a formula's cached result, as a reader sees it.

    Raises:
        ParseRefused: a sheet whose declared size is over the limits.
    """
    import openpyxl  # noqa: PLC0415 - imported on the first workbook, not by every user of the package

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        for sheet in workbook.worksheets:
            max_row, max_column = sheet.max_row or 0, sheet.max_column or 0
            if max_row > settings.max_rows or max_column > settings.max_columns:
                raise ParseRefused(
                    f"sheet {sheet.title!r} declares {max_row:,} rows and {max_column:,} columns, more than the limits "
                    f"({settings.max_rows:,} rows, {settings.max_columns:,} columns)"
                )
            yield sheet.title, sheet.iter_rows(values_only=True)
    finally:
        workbook.close()
