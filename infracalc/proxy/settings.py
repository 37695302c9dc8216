"""The egress proxy's settings, read once from the environment.

Every limit has a default that suits a research bubble (a handful of API clients), and every
value is checked at start: a proxy that cannot be configured safely refuses to start rather than
running open.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from infracalc.config import SettingError
from infracalc.egress import AddressPolicy
from infracalc.egress.modes import tunnels_allowed
from infracalc.identity import proxy_secret
from infracalc.policy import OpaSettings

#: The longest a decision may be reused (the issue allows a cache of at most one second).
MAX_DECISION_CACHE_SECONDS = 1.0


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = env.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SettingError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingError(f"{name} must be between {minimum:g} and {maximum:g}, got {value:g}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SettingError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _resolver(text: str) -> tuple[str, int] | None:
    """``address`` or ``address:port`` (``[v6]:port``) of a DNS server, port 53 by default; None when empty."""
    if not text:
        return None
    host, port_text = text, ""
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port_text = after.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = str(ip_address(host))
        port = int(port_text) if port_text else 53
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:  # noqa: PLR2004
        raise SettingError(
            f"INFRACALC_EGRESS_RESOLVER must be a DNS server's IP address, with an optional port "
            f"(192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53), got {text!r}"
        )
    return address, port


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything ``infracalc egress-proxy`` needs."""

    #: ``INFRACALC_EGRESS_PROXY_HOST``: the address bubbles connect to (default 127.0.0.1).
    host: str = "127.0.0.1"
    #: ``INFRACALC_EGRESS_PROXY_PORT``: its port (default 3128, the usual proxy port).
    port: int = 3128
    #: ``INFRACALC_EGRESS_METRICS_HOST``: where Prometheus metrics are served (default 127.0.0.1).
    metrics_host: str = "127.0.0.1"
    #: ``INFRACALC_EGRESS_METRICS_PORT``: their port, separate from the proxy's (default 9128).
    metrics_port: int = 9128
    #: ``INFRACALC_SERVICE_URL``: the INFRACALC service, which records every decision.
    service_url: str = "http://127.0.0.1:8001"
    #: ``INFRACALC_EGRESS_PROXY_SECRET`` (required): the proxy's credential with the service, which
    #: keeps only its SHA-256.
    service_secret: str = field(default="", repr=False)
    #: ``INFRACALC_EGRESS_CONNECT_TIMEOUT``: seconds to reach an upstream (default 10, like Smokescreen).
    connect_timeout: float = 10.0
    #: ``INFRACALC_EGRESS_DNS_TIMEOUT``: seconds to resolve a name (default 5).
    dns_timeout: float = 5.0
    #: ``INFRACALC_EGRESS_IDLE_TIMEOUT``: seconds a tunnel may carry nothing before it is closed (default 300).
    idle_timeout: float = 300.0
    #: ``INFRACALC_EGRESS_HEADER_TIMEOUT``: seconds a client has to send its request head (default 10).
    header_timeout: float = 10.0
    #: ``INFRACALC_EGRESS_MAX_HEADER_BYTES``: the largest request head accepted (default 16 KiB).
    max_header_bytes: int = 16 * 1024
    #: ``INFRACALC_EGRESS_MAX_TUNNELS_PER_BUBBLE``: open connections one bubble may hold (default 64).
    max_tunnels_per_bubble: int = 64
    #: ``INFRACALC_EGRESS_MAX_CONNECTIONS``: connections open at once, authenticated or not (default 4096).
    max_connections: int = 4096
    #: ``INFRACALC_EGRESS_CONNECTION_RATE``: new connections a second overall (default 2000).
    connection_rate: float = 2000.0
    #: ``INFRACALC_EGRESS_CONNECTION_BURST``: the burst allowed above that rate (default 4000).
    connection_burst: int = 4000
    #: ``INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE``: new connections a second of each bubble, once authenticated
    #: (default 100).
    bubble_connection_rate: float = 100.0
    #: ``INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST``: the burst allowed above it (default 200).
    bubble_connection_burst: int = 200
    #: ``INFRACALC_EGRESS_MAX_UNAUTHENTICATED_PER_SOURCE``: connections of one source address that
    #: have not authenticated yet (default 64).
    max_unauthenticated_per_source: int = 64
    #: ``INFRACALC_EGRESS_DECISION_CACHE_SECONDS``: how long a decision may be reused, at most 1 (default 1; 0: never).
    decision_cache_seconds: float = MAX_DECISION_CACHE_SECONDS
    #: ``INFRACALC_EGRESS_REVISION_POLL_SECONDS``: how often OPA's revisions are read to find
    #: changed projects whose open tunnels must be re-decided (default 0.2).
    revision_poll_seconds: float = 0.2
    #: ``INFRACALC_EGRESS_AUDIT_GRACE_SECONDS``: how long decisions may wait undelivered to the
    #: service before new connections are refused (default 10): nothing goes unrecorded.
    audit_grace_seconds: float = 10.0
    #: ``INFRACALC_EGRESS_AUDIT_QUEUE``: decisions kept while the service is slow (default 10,000);
    #: when full, new connections are refused.
    audit_queue_size: int = 10_000
    #: ``INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS``: refusals of clients without valid credentials
    #: (and of bubbles over a limit) are counted by source (or bubble), label and interval, one
    #: audit event per count; this is the interval (default 10).
    refusal_audit_seconds: float = 10.0
    opa: OpaSettings = field(default_factory=OpaSettings)
    #: Which resolved addresses may be dialled (global unicast, plus test-only ranges).
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    #: ``INFRACALC_EGRESS_TEST_HOSTS``: a hosts file read instead of DNS, for tests only (it needs
    #: the same consent as the test allow ranges).
    test_hosts: Path | None = None
    #: ``INFRACALC_EGRESS_RESOLVER``: the DNS server the proxy asks (``address`` or ``address:port``,
    #: ``[v6]:port``), instead of the system's resolver; unset: the system's.
    resolver: tuple[str, int] | None = None
    #: ``INFRACALC_EGRESS_FORWARDED_SOCKET``: a Unix socket (made mode 0600) where the local hub's forwarders
    #: hand over bubbles' connections, each starting with a PROXY line naming the bubble's address
    #: (:mod:`infracalc.proxy.forwarded`); unset: none. Only its owner can open it, so only the hub speaks there.
    forwarded_socket: Path | None = None
    #: ``INFRACALC_EGRESS_CA_DIR``: the platform's egress CA, ``ca-cert.pem`` and ``ca-key.pem`` (mode
    #: 0600), with which the proxy inspects ``inspect`` rules; unset: such rules open nothing (502).
    ca_dir: Path | None = None
    #: ``INFRACALC_EGRESS_CA_PUBLIC_DIR``: where the proxy writes, at start, what bubbles may have of the
    #: CA: ``ca-cert.pem`` and ``bubble-bundle.pem`` (the system's CAs and it); unset: nowhere.
    ca_public_dir: Path | None = None
    #: ``INFRACALC_EGRESS_TUNNEL_RULES``: ``allow`` (default) or ``forbid`` opaque tunnels (``tunnel`` rules).
    tunnels_allowed: bool = True
    #: ``INFRACALC_EGRESS_TEST_UPSTREAM_CA``: tests only (it needs the test-mode consent): one more CA
    #: trusted for upstreams, beside the system's trust store.
    test_upstream_ca: Path | None = None

    TEST_HOSTS_VARIABLE = "INFRACALC_EGRESS_TEST_HOSTS"
    RESOLVER_VARIABLE = "INFRACALC_EGRESS_RESOLVER"
    TEST_UPSTREAM_CA_VARIABLE = "INFRACALC_EGRESS_TEST_UPSTREAM_CA"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProxySettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            SettingError: a value is missing or out of range.
            EgressConfigError: the test-only settings are used without their consent phrase.
        """
        env = os.environ if env is None else env
        secret = env.get("INFRACALC_EGRESS_PROXY_SECRET", "")
        if not proxy_secret.well_formed(secret):
            raise SettingError(
                "INFRACALC_EGRESS_PROXY_SECRET is required: iep_ and 64 hex characters (python -c 'from "
                "infracalc.identity import proxy_secret; print(proxy_secret.mint())'); the service is given its SHA-256"
            )
        addresses = AddressPolicy.from_env(env)
        test_hosts = env.get(cls.TEST_HOSTS_VARIABLE, "").strip()
        if test_hosts and env.get(AddressPolicy.TEST_MODE_VARIABLE) != AddressPolicy.TEST_MODE_CONSENT:
            raise SettingError(
                f"{cls.TEST_HOSTS_VARIABLE} replaces DNS and is for tests only; set "
                f"{AddressPolicy.TEST_MODE_VARIABLE}={AddressPolicy.TEST_MODE_CONSENT} to use it, or unset it"
            )
        resolver = _resolver(env.get(cls.RESOLVER_VARIABLE, "").strip())
        if resolver is not None and test_hosts:
            raise SettingError(f"{cls.RESOLVER_VARIABLE} and {cls.TEST_HOSTS_VARIABLE} both replace DNS: set one")
        test_upstream_ca = env.get(cls.TEST_UPSTREAM_CA_VARIABLE, "").strip()
        if test_upstream_ca and env.get(AddressPolicy.TEST_MODE_VARIABLE) != AddressPolicy.TEST_MODE_CONSENT:
            raise SettingError(
                f"{cls.TEST_UPSTREAM_CA_VARIABLE} makes the proxy trust another CA for upstreams and is for tests "
                f"only; set {AddressPolicy.TEST_MODE_VARIABLE}={AddressPolicy.TEST_MODE_CONSENT} to use it, or unset it"
            )
        ca_dir = env.get("INFRACALC_EGRESS_CA_DIR", "").strip()
        ca_public_dir = env.get("INFRACALC_EGRESS_CA_PUBLIC_DIR", "").strip()
        if ca_public_dir and not ca_dir:
            raise SettingError(
                "INFRACALC_EGRESS_CA_PUBLIC_DIR publishes the egress CA: set INFRACALC_EGRESS_CA_DIR too"
            )
        return cls(
            host=env.get("INFRACALC_EGRESS_PROXY_HOST", "127.0.0.1"),
            port=_integer(env, "INFRACALC_EGRESS_PROXY_PORT", 3128, minimum=0, maximum=65535),
            metrics_host=env.get("INFRACALC_EGRESS_METRICS_HOST", "127.0.0.1"),
            metrics_port=_integer(env, "INFRACALC_EGRESS_METRICS_PORT", 9128, minimum=0, maximum=65535),
            service_url=env.get("INFRACALC_SERVICE_URL", "http://127.0.0.1:8001").rstrip("/"),
            service_secret=secret,
            connect_timeout=_number(env, "INFRACALC_EGRESS_CONNECT_TIMEOUT", 10.0, minimum=0.1, maximum=120),
            dns_timeout=_number(env, "INFRACALC_EGRESS_DNS_TIMEOUT", 5.0, minimum=0.1, maximum=60),
            idle_timeout=_number(env, "INFRACALC_EGRESS_IDLE_TIMEOUT", 300.0, minimum=0.1, maximum=86400),
            header_timeout=_number(env, "INFRACALC_EGRESS_HEADER_TIMEOUT", 10.0, minimum=0.1, maximum=120),
            max_header_bytes=_integer(
                env, "INFRACALC_EGRESS_MAX_HEADER_BYTES", 16 * 1024, minimum=1024, maximum=1024 * 1024
            ),
            max_tunnels_per_bubble=_integer(
                env, "INFRACALC_EGRESS_MAX_TUNNELS_PER_BUBBLE", 64, minimum=1, maximum=100_000
            ),
            max_connections=_integer(env, "INFRACALC_EGRESS_MAX_CONNECTIONS", 4096, minimum=1, maximum=1_000_000),
            connection_rate=_number(env, "INFRACALC_EGRESS_CONNECTION_RATE", 2000.0, minimum=0.1, maximum=1_000_000),
            connection_burst=_integer(env, "INFRACALC_EGRESS_CONNECTION_BURST", 4000, minimum=1, maximum=1_000_000),
            bubble_connection_rate=_number(
                env, "INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE", 100.0, minimum=0.1, maximum=1_000_000
            ),
            bubble_connection_burst=_integer(
                env, "INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST", 200, minimum=1, maximum=1_000_000
            ),
            max_unauthenticated_per_source=_integer(
                env, "INFRACALC_EGRESS_MAX_UNAUTHENTICATED_PER_SOURCE", 64, minimum=1, maximum=1_000_000
            ),
            decision_cache_seconds=_number(
                env,
                "INFRACALC_EGRESS_DECISION_CACHE_SECONDS",
                MAX_DECISION_CACHE_SECONDS,
                minimum=0,
                maximum=MAX_DECISION_CACHE_SECONDS,
            ),
            revision_poll_seconds=_number(
                env, "INFRACALC_EGRESS_REVISION_POLL_SECONDS", 0.2, minimum=0.01, maximum=0.5
            ),
            audit_grace_seconds=_number(env, "INFRACALC_EGRESS_AUDIT_GRACE_SECONDS", 10.0, minimum=0.1, maximum=600),
            audit_queue_size=_integer(env, "INFRACALC_EGRESS_AUDIT_QUEUE", 10_000, minimum=10, maximum=10_000_000),
            refusal_audit_seconds=_number(
                env, "INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS", 10.0, minimum=0.1, maximum=3600
            ),
            opa=OpaSettings.from_env(env),
            addresses=addresses,
            test_hosts=Path(test_hosts) if test_hosts else None,
            resolver=resolver,
            forwarded_socket=Path(forwarded) if (forwarded := env.get("INFRACALC_EGRESS_FORWARDED_SOCKET")) else None,
            ca_dir=Path(ca_dir) if ca_dir else None,
            ca_public_dir=Path(ca_public_dir) if ca_public_dir else None,
            tunnels_allowed=tunnels_allowed(env),
            test_upstream_ca=Path(test_upstream_ca) if test_upstream_ca else None,
        )
