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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infracalc.audit.canonical import GENESIS_HASH, canonical_json, chain_hash, event_text, format_time
    from infracalc.audit.errors import AuditError, AuditKeyError
    from infracalc.audit.log import AuditEntry, AuditLog, Clock
    from infracalc.audit.models import AuditCheckpoint, AuditEvent, AuditHead
    from infracalc.audit.settings import AuditSettings
    from infracalc.audit.signer import CheckpointSigner, key_id, load_public_key, public_key_pem
    from infracalc.audit.verification import VerificationReport, verify, verify_database

# Each name is imported from its module on first use, so that a module needing only the standard
# library (the verification worker, :mod:`infracalc.audit.segments`) starts without SQLAlchemy.
_HOMES = {
    "canonical": ("GENESIS_HASH", "canonical_json", "chain_hash", "event_text", "format_time"),
    "errors": ("AuditError", "AuditKeyError"),
    "log": ("AuditEntry", "AuditLog", "Clock"),
    "models": ("AuditCheckpoint", "AuditEvent", "AuditHead"),
    "settings": ("AuditSettings",),
    "signer": ("CheckpointSigner", "key_id", "load_public_key", "public_key_pem"),
    "verification": ("VerificationReport", "verify", "verify_database"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import ``name`` from the module that defines it (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
