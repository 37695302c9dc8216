"""The sealed audit log: hash-chained events written with each change, signed checkpoints, verification.

Framework-free: everything takes its collaborators (an ``AsyncSession``, a clock, a
:class:`CheckpointSigner`) as arguments. Writing, in the transaction that makes the change::

    audit_log = AuditLog.from_settings(AuditSettings.from_env())
    async with sessions() as session, session.begin():
        ...  # the change
        await audit_log.append(session, actor=user, action="governance.switch", project_id=pid,
                               governance="INFRACALC", details={"from": "CASD", "reason": reason})
        await audit_log.maybe_checkpoint(session)

Checking::

    report = await verify(session, load_public_key(settings.key_path))

Errors: :class:`AuditError` (and :class:`AuditKeyError`) when the log cannot be used; a tampered
log is not an error but a :class:`VerificationReport` with ``ok=False``.
"""

from __future__ import annotations

from infracalc.audit.canonical import GENESIS_HASH, canonical_json, chain_hash, event_text, format_time
from infracalc.audit.errors import AuditError, AuditKeyError
from infracalc.audit.log import AuditEntry, AuditLog, Clock
from infracalc.audit.models import AuditCheckpoint, AuditEvent, AuditHead
from infracalc.audit.settings import AuditSettings
from infracalc.audit.signer import CheckpointSigner, key_id, load_public_key, public_key_pem
from infracalc.audit.verify import VerificationReport, verify, verify_database

__all__ = [
    "GENESIS_HASH",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditError",
    "AuditEvent",
    "AuditHead",
    "AuditKeyError",
    "AuditLog",
    "AuditSettings",
    "CheckpointSigner",
    "Clock",
    "VerificationReport",
    "canonical_json",
    "chain_hash",
    "event_text",
    "format_time",
    "key_id",
    "load_public_key",
    "public_key_pem",
    "verify",
    "verify_database",
]
