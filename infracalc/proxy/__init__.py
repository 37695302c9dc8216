"""The egress proxy (``infracalc egress-proxy``): a bubble's only way out, decided by OPA per connection.

Modules, in the order a connection meets them: :mod:`.wire` (the request head, with limits),
:mod:`.credentials` (the bubble's ``Proxy-Authorization``), :mod:`.decisions` (OPA's
``infracalc.egress.connection``, cached at most one second), :mod:`.tunnels` (the per-bubble cap),
:mod:`.relay` (bytes both ways, with ``splice(2)`` on Linux), :mod:`.events` (every decision and
tunnel end, to the service), :mod:`.revisions` (re-deciding open connections when their project
changes or their rule expires), :mod:`.metrics` (Prometheus), :mod:`.server` (all of it together)
and :mod:`.run` (the command).
"""

from __future__ import annotations

from infracalc.proxy.server import EgressProxy
from infracalc.proxy.settings import ProxySettings

__all__ = ["EgressProxy", "ProxySettings"]
