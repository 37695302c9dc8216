"""Appending to the sealed audit log, and sealing its head with signed checkpoints.

The log never commits: :meth:`AuditLog.append` adds the event to the caller's transaction, so the
change and its event commit or roll back together (no change without its event, no event without
its change)::

    async with sessions() as session, session.begin():
        session.add(project)
        await audit_log.append(session, actor="alice", action="project.create", project_id=project.id,
                               governance=project.governance, details={"title": project.title})
        await audit_log.maybe_checkpoint(session)

How appends take turns: each locks the one-row ``audit_head`` table (``SELECT ... FOR UPDATE`` on
PostgreSQL, which waits for the lock holder to commit and then reads its new head; on SQLite the
write transaction's lock, taken at ``BEGIN IMMEDIATE``, already excludes every other writer). The
lock is held until the caller's commit, so append at the end of the transaction, after the change,
to hold it briefly; :meth:`AuditLog.append_many` adds many events under one lock and one head
update. Use a READ COMMITTED transaction on PostgreSQL (the default); under REPEATABLE READ or
SERIALIZABLE a concurrent append makes the later transaction fail instead of wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.audit.canonical import canonical_json, chain_hash, checkpoint_message, event_text, format_time
from infracalc.audit.errors import AuditError
from infracalc.audit.models import AuditCheckpoint, AuditEvent, AuditHead
from infracalc.audit.settings import AuditSettings
from infracalc.audit.signer import CheckpointSigner
from infracalc.db.base import utc_now
from infracalc.db.models import Governance

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]

_HEAD_ID = 1


class AuditEntry(NamedTuple):
    """One event to append with :meth:`AuditLog.append_many` (the arguments of :meth:`AuditLog.append`)."""

    actor: str
    action: str
    project_id: str | None = None
    governance: Governance | str | None = None
    details: Mapping[str, Any] | None = None


class _Head(NamedTuple):
    seq: int
    hash: str
    #: The last checkpoint's seq and time, read with the head (None: no checkpoint yet).
    sealed_seq: int | None = None
    sealed_at: datetime | None = None


class AuditLog:
    """Writes events and checkpoints into the caller's session; holds no state of its own between calls."""

    def __init__(
        self,
        signer: CheckpointSigner,
        *,
        clock: Clock = utc_now,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 300,
    ) -> None:
        """Create a log writer.

        Args:
            signer: signs checkpoints.
            clock: the time of events and checkpoints (timezone-aware).
            checkpoint_every: :meth:`maybe_checkpoint` seals the head once this many events are unsealed.
            checkpoint_seconds: ... or at the first event this many seconds after the last checkpoint.
        """
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise AuditError("checkpoint_every and checkpoint_seconds must be positive")
        self.signer = signer
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = timedelta(seconds=checkpoint_seconds)

    def __repr__(self) -> str:
        return (
            f"AuditLog(signer={self.signer!r}, checkpoint_every={self.checkpoint_every}, "
            f"checkpoint_seconds={self.checkpoint_interval.total_seconds():g})"
        )

    @classmethod
    def from_settings(cls, settings: AuditSettings, *, clock: Clock = utc_now) -> AuditLog:
        """A log writer whose key is loaded from (or, the first time, created at) ``settings.key_path``."""
        return cls(
            CheckpointSigner.load_or_create(settings.key_path),
            clock=clock,
            checkpoint_every=settings.checkpoint_every,
            checkpoint_seconds=settings.checkpoint_seconds,
        )

    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        project_id: str | None = None,
        governance: Governance | str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Add the next event to the caller's transaction, chained to the head; does not commit.

        Args:
            session: the caller's session, inside the transaction that makes the change.
            actor: who made the change (username, or ``system``).
            action: what happened, dotted (``project.create``, ``governance.switch``...).
            project_id: the project concerned, if any.
            governance: that project's governance owner at this moment.
            details: anything else worth keeping, as plain JSON (stored canonically).

        Returns:
            The event, already written in the transaction (its ``seq`` and ``hash`` are final once the caller commits).

        Raises:
            AuditError: ``details`` is not plain JSON, ``governance`` is unknown, or the log is not migrated.
        """
        entry = AuditEntry(actor, action, project_id, governance, details)
        (event,) = await self.append_many(session, [entry])
        return event

    async def append_many(self, session: AsyncSession, entries: Iterable[AuditEntry]) -> list[AuditEvent]:
        """Add several events, in order, to the caller's transaction; the head is locked and moved once.

        Each event is chained and hashed exactly as :meth:`append` would (the same encoding, one
        ``seq`` each); only the round trips are fewer. Nothing is added when one entry is invalid.

        Returns:
            The events, already written in the transaction, in the order of ``entries`` (none for no entry).

        Raises:
            AuditError: an entry's ``details`` is not plain JSON or its ``governance`` is unknown, or the
                log is not migrated.
        """
        events, _ = await self._append(session, entries)
        return events

    async def append_and_seal(self, session: AsyncSession, entries: Iterable[AuditEntry]) -> list[AuditEvent]:
        """:meth:`append_many`, then :meth:`maybe_checkpoint`, in the caller's transaction, reading the head once.

        What a change does: the head is locked, read with the last checkpoint, and moved in one
        statement each, where the two calls take two more.

        Raises:
            AuditError: as :meth:`append_many`.
        """
        events, head = await self._append(session, entries)
        await self._seal_if_due(session, head)
        return events

    async def _append(self, session: AsyncSession, entries: Iterable[AuditEntry]) -> tuple[list[AuditEvent], _Head]:
        """Append ``entries``; return their events and the new head (with the last checkpoint read on the way)."""
        prepared = [self._prepare(entry) for entry in entries]
        head = await _lock_head(session)
        if not prepared:
            return [], head
        seq, prev_hash = head.seq, head.hash
        rows: list[dict[str, Any]] = []
        for entry, at, at_text, owner, details_json in prepared:
            seq += 1
            owner_text = None if owner is None else owner.value
            text = event_text(seq, at_text, entry.actor, entry.action, entry.project_id, owner_text, details_json)
            digest = chain_hash(prev_hash, text)
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "project_id": entry.project_id,
                    "governance": owner,
                    # A private copy, decoded from the hashed text: what is stored is exactly what was hashed.
                    "details": json.loads(details_json),
                    "prev_hash": prev_hash,
                    "hash": digest,
                }
            )
            prev_hash = digest
        # Inserted as rows, not through the session's unit of work (which costs several times the insert):
        # the events are written in the caller's transaction, after the changes the session holds.
        await session.execute(insert(AuditEvent), rows)
        await session.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev_hash})
        return [AuditEvent(**row) for row in rows], head._replace(seq=seq, hash=prev_hash)

    def _prepare(self, entry: AuditEntry) -> tuple[AuditEntry, datetime, str, Governance | None, str]:
        """The entry checked and encoded, with its time: everything that needs no lock."""
        try:
            details_json = canonical_json({} if entry.details is None else entry.details)
            owner = None if entry.governance is None else Governance(entry.governance)
            at = self.clock()
            at_text = format_time(at)
        except ValueError as error:
            raise AuditError(str(error)) from None
        return entry, at, at_text, owner, details_json

    async def maybe_checkpoint(self, session: AsyncSession) -> AuditCheckpoint | None:
        """Seal the head when ``checkpoint_every`` events are unsealed or ``checkpoint_seconds`` have passed.

        Call it after :meth:`append`, in the same transaction. The time rule counts from the last
        checkpoint (from the first event when there is none), so the first event after a quiet spell
        is sealed at once.

        Returns:
            The new checkpoint, or None when none was due.
        """
        return await self._seal_if_due(session, await _lock_head(session))

    async def _seal_if_due(self, session: AsyncSession, head: _Head) -> AuditCheckpoint | None:
        """Seal ``head`` (locked by this transaction) when the count or time rule says so."""
        if head.seq == 0:
            return None
        sealed_seq = head.sealed_seq or 0
        if sealed_seq >= head.seq:
            return None
        since = head.sealed_at
        if since is None:
            since = await session.scalar(select(AuditEvent.at).where(AuditEvent.seq == 1))
            if since is None:
                raise AuditError("the audit log has a head but no event 1: run `infracalc audit verify`")
        if head.seq - sealed_seq >= self.checkpoint_every or self.clock() - since >= self.checkpoint_interval:
            return await self._seal(session, head)
        return None

    async def checkpoint_now(self, session: AsyncSession) -> AuditCheckpoint | None:
        """Seal the head now (at shutdown, or from a timer); returns None for an empty log.

        When the head is already sealed, returns its existing checkpoint.
        """
        head = await _lock_head(session)
        if head.seq == 0:
            return None
        existing = await session.get(AuditCheckpoint, head.seq)
        return existing if existing is not None else await self._seal(session, head)

    async def _seal(self, session: AsyncSession, head: _Head) -> AuditCheckpoint:
        stored = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == head.seq))
        if stored != head.hash:
            # Never sign a head the log does not back: that would seal a tampered state.
            raise AuditError(f"the audit head (seq {head.seq}) disagrees with the log: run `infracalc audit verify`")
        at = self.clock()
        message = checkpoint_message(head.seq, head.hash, format_time(at), self.signer.key_id)
        checkpoint = AuditCheckpoint(
            seq=head.seq,
            hash=head.hash,
            at=at,
            signature=self.signer.sign(message).hex(),
            key_id=self.signer.key_id,
        )
        session.add(checkpoint)
        await session.flush()
        return checkpoint


# The statements of every append, built once.
#: The last checkpoint's seq and time.
_LAST_CHECKPOINT = (
    select(AuditCheckpoint.seq, AuditCheckpoint.at).order_by(AuditCheckpoint.seq.desc()).limit(1).subquery()
)
_READ_LAST_CHECKPOINT = select(_LAST_CHECKPOINT)
_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID).with_for_update(of=AuditHead)
_LOCK_HEAD_WITH_CHECKPOINT = _LOCK_HEAD.add_columns(
    select(_LAST_CHECKPOINT.c.seq).scalar_subquery(), select(_LAST_CHECKPOINT.c.at).scalar_subquery()
)
_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == _HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
    .execution_options(synchronize_session=False)
)


async def _lock_head(session: AsyncSession) -> _Head:
    """Lock the head row until the transaction ends; read it, and the last checkpoint.

    On SQLite, in one statement: the transaction holds the database's write lock from its first
    statement, so nothing can commit a checkpoint meanwhile. On PostgreSQL, in two: a statement that
    waited for the row lock sees the row as it is now, but the rest of the statement (a subquery
    for the checkpoint) as it was when it started, before the transaction it waited for committed
    its checkpoint; a statement of its own, after the lock, sees that checkpoint.
    """
    if session.get_bind().dialect.name == "postgresql":
        row = (await session.execute(_LOCK_HEAD)).one_or_none()
        if row is None:
            raise AuditError("the audit log has no head row: run the database migrations first")
        last = (await session.execute(_READ_LAST_CHECKPOINT)).one_or_none()
        return _Head(row.seq, row.hash, *(last or (None, None)))
    found = (await session.execute(_LOCK_HEAD_WITH_CHECKPOINT)).one_or_none()
    if found is None:
        raise AuditError("the audit log has no head row: run the database migrations first")
    seq, hash_, sealed_seq, sealed_at = found
    return _Head(seq, hash_, sealed_seq, sealed_at)
