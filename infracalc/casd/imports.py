"""Imports: files brought into a project, checked, held in quarantine, then released or rejected.

A file arrives as a stream of bytes with a name. :func:`receive` checks the name
(:mod:`infracalc.casd.filenames`), streams the bytes into the object store under
``projects/<project>/imports/<id>/<name>`` (multipart, per-part and whole-file SHA-256, a size
cap, the ``governance`` tag), and looks at the content on the way (:mod:`infracalc.casd.filetypes`):
archives and compressed streams are refused as soon as their first bytes arrive, since they hide
what they hold (a zip bomb among them).

Office documents (xlsx, docx, pptx, ods, odt, odp) are ZIP archives too. A file named so whose
content starts like a ZIP is also spooled, as it streams to the object store, to an anonymous
temporary file of at most ``office_max_bytes``; once its last byte has arrived, and before the
upload is completed, :func:`infracalc.casd.office.check_office_document` checks it: a real package of
the type its extension says, without macros, within the limits on entries and expanded size, no
archive inside. Macro-enabled extensions (``.xlsm``...) are refused by name, before a byte is read.

Anything wrong, at any point (name, size, empty file, archive, office document, a client that goes
away, an S3 failure), raises :class:`ImportRefused` after the upload was aborted: no object is left.

:func:`route` then says where a stored file goes, by its project's governance:

- under INFRACALC, a small code file (an extension of :data:`CODE_EXTENSIONS`, at most
  :data:`CODE_MAX_BYTES`, and text to its last byte) is released at once, as ``standard`` data;
- everything else, and everything under CASD, waits for CASD staff: :func:`approve` (with a
  sensitivity, ``standard`` or ``sensitive``) releases it, :func:`reject` deletes its object.

The database functions (:func:`record`, :func:`approve`, :func:`reject`, :func:`announce_release`,
:func:`record_read`, :func:`set_governance`, :func:`holds_sensitive_data`) work in the caller's
transaction and never commit, like :mod:`infracalc.casd.sessions`; :func:`receive` touches no
database at all, so that no transaction stays open while a large file streams in.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import BinaryIO

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd.filenames import InvalidFileName, check_file_name
from infracalc.casd.filetypes import HEAD_BYTES, FileType, TextCheck, sniff
from infracalc.casd.objects import EmptyObject, ObjectStore, ObjectStoreError, ObjectTooLarge, StoredObject
from infracalc.casd.office import (
    DEFAULT_MAX_EXPANDED_BYTES,
    MACRO_EXTENSIONS,
    OFFICE_EXTENSIONS,
    PackageRefused,
    check_office_document,
    office_format_for_name,
)
from infracalc.casd.sessions import NewEvent, append_events
from infracalc.db import Governance, Import, ImportState, Sensitivity, SessionRecord, utc_now
from infracalc.errors import InfracalcError

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]

#: Extensions of the code files released at once under INFRACALC governance (compared in lower case).
CODE_EXTENSIONS = frozenset({".py", ".r", ".sas", ".do", ".sql", ".ipynb", ".md", ".txt"})
#: The largest code file released at once.
CODE_MAX_BYTES = 256 * 1024
#: The default cap on an imported file (``INFRACALC_IMPORT_MAX_BYTES``): 5 GiB.
DEFAULT_MAX_BYTES = 5 * 1024**3
#: What the refusal of an archive says.
ARCHIVE_REFUSAL = "archives are not accepted: upload the files themselves"
#: What the refusal of a ZIP archive adds.
OFFICE_HINT = "office documents are accepted under their own extension: " + ", ".join(sorted(OFFICE_EXTENSIONS))
#: The import refusal of each :class:`~infracalc.casd.office.PackageRefused` reason.
_PACKAGE_REFUSALS = {
    "archive": "archive",
    "macros": "macros",
    "mismatch": "type_mismatch",
    "unreadable": "office_document",
    "too_large": "office_document",
    "nested": "office_document",
}
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
#: The source of the session events this module writes.
SOURCE = "service"


class ImportFailure(InfracalcError):
    """Root of the import module's errors."""


class ImportRefused(ImportFailure):
    """The file was not imported, and nothing of it was kept; ``reason`` names the check that failed.

    Reasons: ``file_name``, ``too_large``, ``empty``, ``archive``, ``macros`` (a macro-enabled office
    document), ``type_mismatch`` (an office document's extension says another type than its content),
    ``office_document`` (a broken or unsafe office document: a zip bomb, an archive inside...),
    ``interrupted`` (the bytes stopped coming: a client that went away), ``storage`` (the object
    store failed, or the office document could not be spooled).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownImport(ImportFailure):
    """No import has this id."""


class ImportNotInReview(ImportFailure):
    """The import was decided already: only an import in review can be approved or rejected."""


@dataclass(frozen=True, slots=True)
class Received:
    """A file stored in quarantine by :func:`receive`."""

    #: The import's id, a key segment of its object.
    import_id: str
    #: The name, checked and NFC-normalised.
    name: str
    stored: StoredObject
    #: What its first bytes show.
    file_type: FileType
    #: Whether all of it is UTF-8 text (looked at up to :data:`CODE_MAX_BYTES` only: larger files are never code).
    text: bool
    governance: Governance


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a received file goes: released at once, or held for review, and why."""

    state: ImportState
    #: ``standard`` when released at once; None while in review.
    sensitivity: Sensitivity | None
    reason: str


def new_import_id() -> str:
    """A fresh import id: 16 random hex digits."""
    return secrets.token_hex(8)


def object_key(project_id: str, import_id: str, name: str) -> str:
    """Where an import's object lives."""
    return f"{import_prefix(project_id, import_id)}{name}"


def import_prefix(project_id: str, import_id: str) -> str:
    """The prefix under which an import's object (and, while it streams in, its multipart upload) lives."""
    return f"projects/{project_id}/imports/{import_id}/"


async def receive(
    objects: ObjectStore,
    chunks: AsyncIterable[bytes],
    *,
    project_id: str,
    name: str,
    governance: Governance | str,
    max_bytes: int,
    import_id: str | None = None,
    office_max_bytes: int = DEFAULT_MAX_EXPANDED_BYTES,
) -> Received:
    """Check ``name``, then stream ``chunks`` into quarantine, looking at the content on the way.

    ``office_max_bytes`` bounds an office document: its file, and what its entries expand to.

    Raises:
        ImportRefused: the name, size, type or transfer failed a check, or the store failed; the
            multipart upload was aborted, so nothing was kept.
    """
    try:
        normal = check_file_name(name)
    except InvalidFileName as error:
        raise ImportRefused("file_name", str(error)) from None
    extension = PurePosixPath(normal).suffix.lower()
    if extension in MACRO_EXTENSIONS:
        raise ImportRefused(
            "macros",
            f"documents with macros ({extension}) are not accepted: save it without macros (.xlsx, .docx, .pptx)",
        )
    owner = Governance(governance)
    import_id = import_id or new_import_id()
    looker = _Looker(chunks, name=normal, office_max_bytes=office_max_bytes)
    try:
        stored = await objects.put_stream(
            object_key(project_id, import_id, normal), looker.chunks(), governance=owner, max_bytes=max_bytes
        )
    except ObjectTooLarge:
        raise ImportRefused("too_large", f"the file is larger than the limit of {max_bytes} bytes") from None
    except EmptyObject:
        raise ImportRefused("empty", "the file is empty") from None
    except ObjectStoreError as error:
        raise ImportRefused("storage", f"the file could not be stored: {error}") from error
    finally:
        looker.close()
    if looker.file_type is None:  # pragma: no cover - set before the first byte is passed on
        raise ImportRefused("storage", "the file's type was not determined")
    return Received(
        import_id=import_id,
        name=normal,
        stored=stored,
        file_type=looker.file_type,
        text=looker.text.text and looker.text.covered,
        governance=owner,
    )


class _Looker:
    """Passes a stream on, naming its type from its first bytes and following whether it stays text.

    A file named as an office document whose content starts like a ZIP is also spooled, then
    checked as a whole once its last byte has arrived, before the stream ends (so a refusal aborts
    the upload before it is completed).
    """

    def __init__(self, source: AsyncIterable[bytes], *, name: str, office_max_bytes: int) -> None:
        self.source = source
        self.name = name
        self.office = office_format_for_name(name)
        self.office_max_bytes = office_max_bytes
        self.file_type: FileType | None = None
        self.text = TextCheck(limit=CODE_MAX_BYTES)
        self.spool: BinaryIO | None = None
        self.spooled = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        head = bytearray()
        try:
            async for chunk in self.source:
                if not chunk:
                    continue
                self.text.feed(chunk)
                if self.file_type is not None:
                    if self.spool is not None:
                        await self._spool(self.spool, chunk)
                    yield chunk
                    continue
                head += chunk
                if len(head) >= HEAD_BYTES:
                    self._decide(bytes(head), complete=False)
                    if self.spool is not None:
                        await self._spool(self.spool, bytes(head))
                    yield bytes(head)
        except ImportRefused:
            raise
        except Exception as error:
            raise ImportRefused(
                "interrupted", "the upload was interrupted before the end of the file; nothing was kept"
            ) from error
        self.text.finish()
        if self.file_type is None:
            self._decide(bytes(head), complete=True)
            if head:
                if self.spool is not None:
                    await self._spool(self.spool, bytes(head))
                yield bytes(head)
        if self.spool is not None:
            await self._check_office_document(self.spool)

    def close(self) -> None:
        """Delete the spooled copy, if any."""
        if self.spool is not None:
            self.spool.close()

    def _decide(self, head: bytes, *, complete: bool) -> None:
        found = sniff(head, complete=complete)
        if self.office is not None and head:
            if head.startswith(_ZIP_LOCAL_HEADER):
                self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(), whatever happens
                self.file_type = found
                return
            extension = PurePosixPath(self.name).suffix.lower()
            # A password-protected Office file is a compound document (the package is encrypted inside).
            hint = " (a password-protected or legacy Office file: remove the password)" if found.name == "ole2" else ""
            raise ImportRefused(
                "type_mismatch",
                f"the name says {extension} ({self.office.description}) but the content is {found.description}"
                f"{hint}: the extension must agree with the content",
            )
        if found.archive:
            hint = f"; {OFFICE_HINT}" if found.name == "zip" else ""
            raise ImportRefused("archive", f"{ARCHIVE_REFUSAL} (the content is {found.description}{hint})")
        self.file_type = found

    async def _spool(self, spool: BinaryIO, data: bytes) -> None:
        self.spooled += len(data)
        if self.spooled > self.office_max_bytes:
            raise ImportRefused(
                "too_large",
                f"an office document may be at most {self.office_max_bytes} bytes "
                "(INFRACALC_OFFICE_MAX_EXPANDED_BYTES, also what its parts may expand to)",
            )
        try:
            await asyncio.to_thread(spool.write, data)
        except OSError as error:
            raise ImportRefused(
                "storage", f"the office document could not be spooled for its checks: {error}"
            ) from None

    async def _check_office_document(self, spool: BinaryIO) -> None:
        try:
            found = await asyncio.to_thread(
                check_office_document, spool, name=self.name, max_expanded_bytes=self.office_max_bytes
            )
        except PackageRefused as refusal:
            reason = _PACKAGE_REFUSALS[refusal.reason]
            message = f"{ARCHIVE_REFUSAL} ({refusal}; {OFFICE_HINT})" if reason == "archive" else str(refusal)
            raise ImportRefused(reason, message) from None
        except OSError as error:
            raise ImportRefused("storage", f"the office document could not be checked: {error}") from None
        self.file_type = FileType(found.name, found.description, media_type=found.media_type)


def route(received: Received) -> Routing:
    """Where ``received`` goes under its governance: released at once, or to CASD staff's review."""
    if received.governance == Governance.CASD:
        return Routing(ImportState.IN_REVIEW, None, "under CASD governance every import is reviewed by CASD staff")
    extension = PurePosixPath(received.name).suffix.lower()
    if extension not in CODE_EXTENSIONS:
        return Routing(
            ImportState.IN_REVIEW, None, f"not a code file ({extension or 'no extension'}): reviewed by CASD staff"
        )
    if received.stored.size > CODE_MAX_BYTES:
        return Routing(
            ImportState.IN_REVIEW,
            None,
            f"a code file larger than {CODE_MAX_BYTES // 1024} KiB ({received.stored.size} bytes): "
            "reviewed by CASD staff",
        )
    if not received.text:
        return Routing(
            ImportState.IN_REVIEW,
            None,
            f"named as code ({extension}) but its content is {received.file_type.description}, not text: "
            "reviewed by CASD staff",
        )
    return Routing(
        ImportState.RELEASED,
        Sensitivity.STANDARD,
        f"a small code file ({extension}, text) under INFRACALC governance: released at once",
    )


async def record(
    db_session: AsyncSession, received: Received, *, project_id: str, uploaded_by: str, clock: Clock = utc_now
) -> Import:
    """Add the import's row, routed by :func:`route`; does not commit."""
    routing = route(received)
    now = clock()
    row = Import(
        id=received.import_id,
        project_id=project_id,
        name=received.name,
        size=received.stored.size,
        sha256=received.stored.sha256,
        part_sha256=list(received.stored.part_sha256),
        detected_type=received.file_type.name,
        content_type=received.file_type.media_type,
        governance=received.governance,
        state=routing.state,
        sensitivity=routing.sensitivity,
        routing=routing.reason,
        uploaded_by=uploaded_by,
        uploaded_at=now,
        object_key=received.stored.key,
    )
    db_session.add(row)
    await db_session.flush()
    return row


async def _decide(
    db_session: AsyncSession,
    import_id: str,
    *,
    state: ImportState,
    sensitivity: Sensitivity | None,
    reviewer: str,
    comment: str,
    clock: Clock,
) -> Import:
    row = await db_session.get(Import, import_id)
    if row is None:
        raise UnknownImport(f"no import {import_id!r}")
    changed = await db_session.execute(
        update(Import)
        .where(Import.id == import_id, Import.state == ImportState.IN_REVIEW)
        .values(state=state, sensitivity=sensitivity, reviewed_by=reviewer, reviewed_at=clock(), review_comment=comment)
        .returning(Import.id)
        .execution_options(synchronize_session=False)
    )
    await db_session.refresh(row)
    if changed.scalar_one_or_none() is None:
        by = f" by {row.reviewed_by}" if row.reviewed_by else ""
        raise ImportNotInReview(f"import {import_id} is already {row.state.value}{by}")
    return row


async def approve(
    db_session: AsyncSession,
    import_id: str,
    *,
    reviewer: str,
    sensitivity: Sensitivity | str,
    comment: str,
    clock: Clock = utc_now,
) -> Import:
    """Release an import in review, classed ``sensitivity``; does not commit.

    Raises:
        UnknownImport: no import has this id.
        ImportNotInReview: it was released or rejected already.
    """
    return await _decide(
        db_session,
        import_id,
        state=ImportState.RELEASED,
        sensitivity=Sensitivity(sensitivity),
        reviewer=reviewer,
        comment=comment,
        clock=clock,
    )


async def reject(
    db_session: AsyncSession,
    objects: ObjectStore,
    import_id: str,
    *,
    reviewer: str,
    comment: str,
    clock: Clock = utc_now,
) -> Import:
    """Reject an import in review and delete its object; does not commit.

    The row changes first (so that two reviewers cannot both decide), then the object is deleted;
    if the deletion fails the caller's transaction rolls back and the import stays in review.

    Raises:
        UnknownImport: no import has this id.
        ImportNotInReview: it was released or rejected already.
        ObjectStoreError: the object could not be deleted.
    """
    row = await _decide(
        db_session,
        import_id,
        state=ImportState.REJECTED,
        sensitivity=None,
        reviewer=reviewer,
        comment=comment,
        clock=clock,
    )
    await objects.delete(row.object_key)
    return row


async def announce_release(db_session: AsyncSession, row: Import, *, clock: Clock = utc_now) -> int:
    """Add an ``import.release`` event to every open session of the import's project; does not commit.

    Returns:
        How many sessions were told.
    """
    query = select(SessionRecord.id).where(
        SessionRecord.project_id == row.project_id, SessionRecord.closed_at.is_(None)
    )
    open_sessions = (await db_session.scalars(query)).all()
    event = NewEvent(
        at=clock(),
        source=SOURCE,
        kind="import.release",
        summary=f"import {row.id} ({row.name}, {row.size} bytes) released to the project",
        details={"import": row.id, "name": row.name, "size": row.size, "sha256": row.sha256},
    )
    for session_id in open_sessions:
        await append_events(db_session, session_id, [event])
    return len(open_sessions)


async def record_read(db_session: AsyncSession, row: Import, *, session_id: str, clock: Clock = utc_now) -> bool:
    """Add an ``import.read`` event to the reading bubble's session (its id is the bubble's); does not commit.

    Returns:
        False when there is no such session (a bubble registered before sessions were recorded).
    """
    if await db_session.get(SessionRecord, session_id) is None:
        return False
    event = NewEvent(
        at=clock(),
        source=SOURCE,
        kind="import.read",
        summary=f"read import {row.id} ({row.name}, {row.size} bytes)",
        details={"import": row.id, "name": row.name, "size": row.size, "sha256": row.sha256},
    )
    await append_events(db_session, session_id, [event])
    return True


async def set_governance(db_session: AsyncSession, project_id: str, governance: Governance | str) -> int:
    """Set the ``governance`` column of every import of the project (a switch); does not commit.

    Returns:
        How many rows changed.
    """
    owner = Governance(governance)
    result = await db_session.execute(
        update(Import)
        .where(Import.project_id == project_id, Import.governance != owner)
        .values(governance=owner)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def holds_sensitive_data(db_session: AsyncSession, project_id: str) -> bool:
    """Whether the project has a released import classed ``sensitive``."""
    found = await db_session.scalar(
        select(
            exists().where(
                Import.project_id == project_id,
                Import.state == ImportState.RELEASED,
                Import.sensitivity == Sensitivity.SENSITIVE,
            )
        )
    )
    return bool(found)


def project_prefix(project_id: str) -> str:
    """The prefix of every object of the project (imports and exports): what a governance switch re-tags."""
    return f"projects/{project_id}/"


__all__ = [
    "ARCHIVE_REFUSAL",
    "CODE_EXTENSIONS",
    "CODE_MAX_BYTES",
    "DEFAULT_MAX_BYTES",
    "OFFICE_HINT",
    "ImportFailure",
    "ImportNotInReview",
    "ImportRefused",
    "Received",
    "Routing",
    "UnknownImport",
    "announce_release",
    "approve",
    "holds_sensitive_data",
    "import_prefix",
    "new_import_id",
    "object_key",
    "project_prefix",
    "receive",
    "record",
    "record_read",
    "reject",
    "route",
    "set_governance",
]
