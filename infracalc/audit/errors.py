"""The audit package's errors, all under :class:`AuditError`.

- :class:`AuditError`: the log cannot be written or read as asked (missing head row, bad details...).
- :class:`AuditKeyError`: the checkpoint key file is missing, unreadable, too widely readable, or not Ed25519.

A log that *was tampered with* is not an error: :func:`~infracalc.audit.verification.verify` reports it.
"""

from __future__ import annotations

from infracalc.errors import InfracalcError


class AuditError(InfracalcError):
    """Root of the audit package's errors."""


class AuditKeyError(AuditError):
    """The checkpoint signing key cannot be used."""
