"""The egress events domain: the egress proxy reports every decision and tunnel; the service records them."""

from __future__ import annotations

from infracalc.service.egress_events.controller import EgressEventController

__all__ = ["EgressEventController"]
