"""Policy decisions from OPA: the client, and the data the service keeps in OPA."""

from __future__ import annotations

from infracalc.policy.opa import (
    Decision,
    DocumentMissing,
    OpaSettings,
    PolicyClient,
    PolicyError,
    PolicyUnavailable,
    pointer,
)

__all__ = ["Decision", "DocumentMissing", "OpaSettings", "PolicyClient", "PolicyError", "PolicyUnavailable", "pointer"]
