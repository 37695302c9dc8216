"""Audit settings from the environment: the checkpoint key and how often checkpoints seal the log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infracalc.audit.errors import AuditError
from infracalc.config import home_dir


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AuditError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise AuditError(f"{name}={value} must be at least 1")
    return value


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Where the checkpoint key is, and the checkpoint cadence."""

    #: ``INFRACALC_AUDIT_KEY``: PEM file of the Ed25519 private key (default ``<INFRACALC_HOME>/audit-ed25519.pem``).
    key_path: Path
    #: ``INFRACALC_AUDIT_CHECKPOINT_EVERY``: seal the head once this many events are unsealed.
    checkpoint_every: int = 100
    #: ``INFRACALC_AUDIT_CHECKPOINT_SECONDS``: seal the head at the first event this long after the last checkpoint.
    checkpoint_seconds: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuditSettings:
        """Read the audit settings from ``env`` (default: the process environment).

        Raises:
            AuditError: a cadence variable is not a positive whole number.
        """
        env = os.environ if env is None else env
        key = env.get("INFRACALC_AUDIT_KEY")
        return cls(
            key_path=Path(key).expanduser().resolve() if key else home_dir(env) / "audit-ed25519.pem",
            checkpoint_every=_positive(env, "INFRACALC_AUDIT_CHECKPOINT_EVERY", 100),
            checkpoint_seconds=_positive(env, "INFRACALC_AUDIT_CHECKPOINT_SECONDS", 300),
        )
