"""Settings read from the environment (``INFRACALC_*``), one typed struct per concern.

Each struct is built once, by its ``from_env`` class method, and then passed to whoever needs it;
nothing reads the environment behind the caller's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from infracalc.errors import InfracalcError

#: The repository checkout this package runs from, when it runs from one (editable install).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


class SettingError(InfracalcError):
    """An ``INFRACALC_*`` variable holds a value that cannot be used."""


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:  # noqa: PLR2004 - the TCP port range
        raise SettingError(f"{name}={port} is outside 1-65535")
    return port


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def home_dir(env: Mapping[str, str]) -> Path:
    """``INFRACALC_HOME``: where local state lives (default ``.infracalc`` in the working directory)."""
    return _path(env, "INFRACALC_HOME", Path.cwd() / ".infracalc")


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """Where downloaded servers and linters live, and which Java runs Keycloak."""

    #: ``INFRACALC_TOOLS_DIR``: cache of pinned tools (default ``.tools`` in the working directory).
    tools_dir: Path
    #: ``INFRACALC_JAVA_HOME``: the JDK for Keycloak; empty means Temurin 25 if present, else the system Java.
    java_home: Path | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ToolSettings:
        """Read the tool settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        java_home = env.get("INFRACALC_JAVA_HOME")
        return cls(
            tools_dir=_path(env, "INFRACALC_TOOLS_DIR", Path.cwd() / ".tools"),
            java_home=Path(java_home) if java_home else None,
        )


@dataclass(frozen=True, slots=True)
class StackSettings:
    """Where the local stack keeps its state and which loopback ports its servers bind."""

    #: ``INFRACALC_HOME``: state of the local stack: databases, object store, logs, ``stack.json``.
    home: Path
    #: ``INFRACALC_POLICIES_DIR``: the Rego policies OPA loads (default: the checkout's ``policies/``).
    policies_dir: Path
    #: ``INFRACALC_HOST``: the address every local server binds (loopback only by default).
    host: str
    #: ``INFRACALC_KEYCLOAK_PORT``: Keycloak's HTTP port.
    keycloak_port: int
    #: ``INFRACALC_KEYCLOAK_MANAGEMENT_PORT``: Keycloak's health and metrics port.
    keycloak_management_port: int
    #: ``INFRACALC_OPA_PORT``: OPA's REST API.
    opa_port: int
    #: ``INFRACALC_S3_PORT``: the S3-compatible object store.
    s3_port: int
    #: ``INFRACALC_HUB_PORT``: JupyterHub's public port (Keycloak redirects there after login).
    hub_port: int
    #: ``INFRACALC_HUB_API_PORT``: the hub's own API, which bubbles reach on their gateway.
    hub_api_port: int
    #: ``INFRACALC_CHP_API_PORT``: the API of JupyterHub's proxy (configurable-http-proxy).
    chp_api_port: int
    #: ``INFRACALC_HUB_CONFIG``: the hub's configuration (default: the checkout's ``hub_config/``).
    hub_config: Path
    #: ``INFRACALC_SERVICE_PORT``: the INFRACALC service and its web console.
    service_port: int
    #: ``INFRACALC_EGRESS_PROXY_PORT``: the egress proxy, the bubbles' only way out.
    egress_proxy_port: int
    #: ``INFRACALC_EGRESS_METRICS_PORT``: the egress proxy's Prometheus metrics.
    egress_metrics_port: int
    #: ``INFRACALC_MAILBOX_SMTP_PORT``: the local mailbox's SMTP port (the service and Keycloak send there).
    mailbox_smtp_port: int
    #: ``INFRACALC_MAILBOX_PORT``: the local mailbox's page, where people read what was sent.
    mailbox_port: int

    #: The ports `infracalc up` binds, each with the variable that sets it (for errors that say how to fix a clash).
    PORT_SETTINGS: ClassVar[dict[str, str]] = {
        "keycloak_port": "INFRACALC_KEYCLOAK_PORT",
        "keycloak_management_port": "INFRACALC_KEYCLOAK_MANAGEMENT_PORT",
        "opa_port": "INFRACALC_OPA_PORT",
        "s3_port": "INFRACALC_S3_PORT",
        "service_port": "INFRACALC_SERVICE_PORT",
        "hub_port": "INFRACALC_HUB_PORT",
        "hub_api_port": "INFRACALC_HUB_API_PORT",
        "chp_api_port": "INFRACALC_CHP_API_PORT",
        "egress_proxy_port": "INFRACALC_EGRESS_PROXY_PORT",
        "egress_metrics_port": "INFRACALC_EGRESS_METRICS_PORT",
        "mailbox_smtp_port": "INFRACALC_MAILBOX_SMTP_PORT",
        "mailbox_port": "INFRACALC_MAILBOX_PORT",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        """Read the stack settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        default_policies = SOURCE_ROOT / "policies"
        if not default_policies.is_dir():
            default_policies = Path.cwd() / "policies"
        return cls(
            home=home_dir(env),
            policies_dir=_path(env, "INFRACALC_POLICIES_DIR", default_policies),
            host=env.get("INFRACALC_HOST", "127.0.0.1"),
            keycloak_port=_port(env, "INFRACALC_KEYCLOAK_PORT", 8080),
            keycloak_management_port=_port(env, "INFRACALC_KEYCLOAK_MANAGEMENT_PORT", 9080),
            opa_port=_port(env, "INFRACALC_OPA_PORT", 8181),
            s3_port=_port(env, "INFRACALC_S3_PORT", 7070),
            hub_port=_port(env, "INFRACALC_HUB_PORT", 8000),
            hub_api_port=_port(env, "INFRACALC_HUB_API_PORT", 8081),
            chp_api_port=_port(env, "INFRACALC_CHP_API_PORT", 8002),
            hub_config=_path(
                env, "INFRACALC_HUB_CONFIG", default_policies.parent / "hub_config" / "jupyterhub_config.py"
            ),
            service_port=_port(env, "INFRACALC_SERVICE_PORT", 8001),
            egress_proxy_port=_port(env, "INFRACALC_EGRESS_PROXY_PORT", 3128),
            egress_metrics_port=_port(env, "INFRACALC_EGRESS_METRICS_PORT", 9128),
            mailbox_smtp_port=_port(env, "INFRACALC_MAILBOX_SMTP_PORT", 1025),
            mailbox_port=_port(env, "INFRACALC_MAILBOX_PORT", 8025),
        )

    @property
    def hub_url(self) -> str:
        """JupyterHub's base URL."""
        return f"http://{self.host}:{self.hub_port}"

    @property
    def service_url(self) -> str:
        """The INFRACALC service's base URL (API and web console)."""
        return f"http://{self.host}:{self.service_port}"

    @property
    def egress_proxy_url(self) -> str:
        """The egress proxy's address, as bubbles name it (without their credentials)."""
        return f"http://{self.host}:{self.egress_proxy_port}"

    @property
    def mailbox_url(self) -> str:
        """The local mailbox's page."""
        return f"http://{self.host}:{self.mailbox_port}"

    def ports(self) -> dict[str, int]:
        """Every port the stack binds, keyed by the environment variable that sets it."""
        return {variable: getattr(self, field) for field, variable in self.PORT_SETTINGS.items()}
