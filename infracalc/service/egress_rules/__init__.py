"""The egress rules domain: allowlist requests by leads, decisions by CASD staff, revocation, and checks."""

from __future__ import annotations

from infracalc.service.egress_rules.controller import EgressRequestController, EgressRuleController

__all__ = ["EgressRequestController", "EgressRuleController"]
