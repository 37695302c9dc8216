"""Fixtures of the audit integration tests (the database fixtures come from tests/fixtures/database.py)."""

from __future__ import annotations

import pytest

from infracalc.audit import AuditLog, CheckpointSigner
from tests.integration.audit.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test controls."""
    return FakeClock()


@pytest.fixture
def audit_log(checkpoint_signer: CheckpointSigner, clock: FakeClock) -> AuditLog:
    """A log writer sealing every 5 events or 60 seconds."""
    return AuditLog(checkpoint_signer, clock=clock, checkpoint_every=5, checkpoint_seconds=60)
