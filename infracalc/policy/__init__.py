"""Policy decisions from OPA: the client, and the data the service keeps in OPA."""

from __future__ import annotations

from infracalc.policy.opa import Decision, OpaSettings, PolicyClient, PolicyError, PolicyUnavailable

__all__ = ["Decision", "OpaSettings", "PolicyClient", "PolicyError", "PolicyUnavailable"]
