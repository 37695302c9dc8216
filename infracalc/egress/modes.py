"""An egress rule's two modes, and the platform setting that may forbid opaque tunnels.

``inspect`` (the default for new rules): the proxy answers the CONNECT itself, terminates the TLS
with a certificate minted for the host by the platform's egress CA, and decides every request by
method, path and size. ``tunnel``: today's CONNECT, host and port only, for clients that pin
certificates; "opaque" wherever rules are listed. Both the service (which refuses to record or
approve a tunnel rule) and the egress proxy (which refuses to open one) read
:data:`TUNNEL_RULES_VARIABLE`.
"""

from __future__ import annotations

from collections.abc import Mapping

from infracalc.config import SettingError

#: Modes as stored and as the policy reads them.
INSPECT, TUNNEL = "inspect", "tunnel"
#: What an inspect rule allows when its request names no method: consultation only.
READ_ONLY_METHODS = ("GET", "HEAD")
#: ``allow`` (the default) or ``forbid``: whether tunnel rules may be asked for, approved and used.
TUNNEL_RULES_VARIABLE = "INFRACALC_EGRESS_TUNNEL_RULES"


def tunnels_allowed(env: Mapping[str, str]) -> bool:
    """Whether ``env`` allows tunnel rules (``INFRACALC_EGRESS_TUNNEL_RULES``: ``allow`` or ``forbid``).

    Raises:
        SettingError: another value.
    """
    value = env.get(TUNNEL_RULES_VARIABLE, "").strip().lower() or "allow"
    if value not in {"allow", "forbid"}:
        raise SettingError(f"{TUNNEL_RULES_VARIABLE} must be allow or forbid, got {value!r}")
    return value == "allow"
