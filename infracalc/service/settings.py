"""The service's settings: where it listens and how it finds Keycloak, OPA, the database and S3."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from infracalc.audit import AuditSettings
from infracalc.casd.exports import ExportSettings
from infracalc.casd.imports import DEFAULT_MAX_BYTES
from infracalc.config import SettingError
from infracalc.db import DatabaseSettings, MemberRole
from infracalc.egress.modes import tunnels_allowed
from infracalc.hub.source_address import parse_networks
from infracalc.identity import proxy_secret
from infracalc.mail import MailSettings
from infracalc.policy import OpaSettings
from infracalc.storage import S3Settings

#: The realm every INFRACALC token comes from (ARCHITECTURE.md, section 5).
REALM = "infracalc"
#: The audience of API tokens.
API_AUDIENCE = "infracalc-api"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise SettingError(f"{name} is required (see the settings reference, docs/reference/settings.md)")
    return value


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything ``infracalc serve`` needs, read once from the environment."""

    #: ``INFRACALC_HOST``: the address the service binds.
    host: str
    #: ``INFRACALC_SERVICE_PORT``: its port.
    port: int
    #: ``INFRACALC_KEYCLOAK_URL``: Keycloak's base URL, as it appears in the tokens' issuer.
    keycloak_url: str
    #: ``INFRACALC_KEYCLOAK_INTERNAL_URL``: where the service fetches the realm's keys (default: keycloak_url).
    keycloak_internal_url: str
    #: ``INFRACALC_JSON_LIMIT``: the largest JSON body accepted, in bytes (default 1 MiB).
    json_limit: int
    #: ``INFRACALC_API_CLIENT_SECRET`` (required): the ``infracalc-api`` client's secret; its service
    #: account looks people up in the realm.
    api_client_secret: str = field(repr=False)
    database: DatabaseSettings
    opa: OpaSettings
    audit: AuditSettings
    #: The object store; ``None`` when ``INFRACALC_S3_ENDPOINT_URL`` is unset (``/ready`` then says so).
    s3: S3Settings | None
    #: ``INFRACALC_EGRESS_PROXY_SECRET_SHA256``: the SHA-256 (hex) of the egress proxy's secret
    #: (:mod:`infracalc.identity.proxy_secret`); ``None`` when unset, and proxy credentials are then refused.
    egress_proxy_secret_sha256: str | None = None
    #: ``INFRACALC_IMPORT_MAX_BYTES``: the largest file imported (default 5 GiB); larger uploads are refused.
    import_max_bytes: int = DEFAULT_MAX_BYTES
    #: ``INFRACALC_DEMO_MEMBERS`` (``bruno:lead,alice:member``, set by ``infracalc up`` only): the members of
    #: the demo project created at the first start (:mod:`infracalc.service.demo`); empty in production.
    demo_members: tuple[tuple[str, MemberRole], ...] = ()
    #: ``INFRACALC_EXPORT_*``: the output checks' limits and the sampling of released exports.
    exports: ExportSettings = field(default_factory=ExportSettings)
    #: ``INFRACALC_WEB_URL``: the service as people's browsers reach it (enrollment links, Keycloak's way back);
    #: default ``http://<host>:<port>``.
    web_url: str = ""
    #: ``INFRACALC_TRUSTED_PROXIES``: comma-separated networks of the reverse proxies whose ``X-Forwarded-For``
    #: is believed (default: none, the socket peer is the client).
    trusted_proxies: tuple[str, ...] = ()
    #: ``INFRACALC_SMTP_*``: the relay invitations are mailed through; ``None``: links are not mailed.
    mail: MailSettings | None = None
    #: ``INFRACALC_WEB_SECRET``: signs the web pages' CSRF tokens; default: random at each start (one replica).
    web_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    #: ``INFRACALC_WEB_CLIENT_SECRET``: the ``infracalc-web`` client's secret, with which the console signs people
    #: in; ``None`` when unset, and ``/login`` then says the console is not configured.
    web_client_secret: str | None = field(default=None, repr=False)
    #: ``INFRACALC_HUB_URL``: JupyterHub as browsers reach it (the console links to bubbles there); ``None``: no links.
    hub_url: str | None = None
    #: ``INFRACALC_UPLOAD_GRACE_SECONDS``: an import whose request has not shown signs of life for this long (its
    #: heartbeat comes every quarter of it), and an incomplete upload of no import in progress begun this long
    #: ago, are what a crash left: the recovery sweep (every half of it, and at start) removes them.
    upload_grace_seconds: float = 600.0
    #: ``INFRACALC_ENDED_SESSION_SECONDS``: how long a Keycloak session ended by back-channel logout is remembered;
    #: at least the realm's longest access-token lifespan (5 minutes), so that its tokens expire before it is forgotten.
    ended_session_seconds: float = 3600.0
    #: ``INFRACALC_HUB_API_URL`` (``http://jupyterhub:8081/hub/api``): the hub's REST API, where the service stops
    #: the servers of the bubbles it revoked; ``None`` (unset, or no token): their servers are not stopped.
    hub_api_url: str | None = None
    #: ``INFRACALC_HUB_API_TOKEN``: the service's token with the hub (the hub's ``INFRACALC_HUB_SERVICE_TOKEN``).
    hub_api_token: str | None = field(default=None, repr=False)
    #: ``INFRACALC_EGRESS_TUNNEL_RULES``: ``allow`` (default) or ``forbid`` tunnel rules (opaque CONNECT): when
    #: forbidden, a lead cannot ask for one and staff cannot approve one (the egress proxy refuses to open one).
    egress_tunnels_allowed: bool = True

    def __post_init__(self) -> None:
        if not self.web_url:  # settings built in code rather than read from the environment
            object.__setattr__(self, "web_url", f"http://{self.host}:{self.port}")

    @property
    def issuer(self) -> str:
        """The issuer every accepted token must carry."""
        return f"{self.keycloak_url}/realms/{REALM}"

    @property
    def jwks_url(self) -> str:
        """Where the realm publishes its signing keys."""
        return f"{self.keycloak_internal_url}/realms/{REALM}/protocol/openid-connect/certs"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            SettingError: a value is not usable.
        """
        env = os.environ if env is None else env
        keycloak_url = env.get("INFRACALC_KEYCLOAK_URL", "http://127.0.0.1:8080").rstrip("/")
        try:
            port = int(env.get("INFRACALC_SERVICE_PORT", "8001"))
            json_limit = int(env.get("INFRACALC_JSON_LIMIT", str(1024 * 1024)))
            import_max_bytes = int(env.get("INFRACALC_IMPORT_MAX_BYTES", str(DEFAULT_MAX_BYTES)))
        except ValueError as error:
            raise SettingError(
                f"INFRACALC_SERVICE_PORT, INFRACALC_JSON_LIMIT and INFRACALC_IMPORT_MAX_BYTES must be integers: {error}"
            ) from None
        if import_max_bytes < 1:
            raise SettingError(f"INFRACALC_IMPORT_MAX_BYTES must be at least 1, got {import_max_bytes}")
        upload_grace = _seconds(env, "INFRACALC_UPLOAD_GRACE_SECONDS", 600.0, minimum=2.0)
        ended_session = _seconds(env, "INFRACALC_ENDED_SESSION_SECONDS", 3600.0, minimum=300.0)
        host = env.get("INFRACALC_HOST", "127.0.0.1")
        web_secret = env.get("INFRACALC_WEB_SECRET", "")
        return cls(
            host=host,
            port=port,
            keycloak_url=keycloak_url,
            keycloak_internal_url=env.get("INFRACALC_KEYCLOAK_INTERNAL_URL", keycloak_url).rstrip("/"),
            json_limit=json_limit,
            api_client_secret=_required(env, "INFRACALC_API_CLIENT_SECRET"),
            database=DatabaseSettings.from_env(env),
            opa=OpaSettings.from_env(env),
            audit=AuditSettings.from_env(env),
            s3=S3Settings.from_env(env) if env.get("INFRACALC_S3_ENDPOINT_URL") else None,
            egress_proxy_secret_sha256=_proxy_secret_digest(env),
            import_max_bytes=import_max_bytes,
            demo_members=parse_demo_members(env.get("INFRACALC_DEMO_MEMBERS", "")),
            exports=ExportSettings.from_env(env),
            web_url=env.get("INFRACALC_WEB_URL", f"http://{host}:{port}").rstrip("/"),
            trusted_proxies=_trusted_proxies(env),
            mail=MailSettings.from_env(env),
            web_secret=web_secret or secrets.token_urlsafe(32),
            web_client_secret=env.get("INFRACALC_WEB_CLIENT_SECRET") or None,
            hub_url=env.get("INFRACALC_HUB_URL", "").rstrip("/") or None,
            upload_grace_seconds=upload_grace,
            ended_session_seconds=ended_session,
            hub_api_url=env.get("INFRACALC_HUB_API_URL", "").rstrip("/") or None,
            hub_api_token=env.get("INFRACALC_HUB_API_TOKEN") or None,
            egress_tunnels_allowed=tunnels_allowed(env),
        )


def _seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    try:
        value = float(env.get(name, str(default)))
    except ValueError:
        raise SettingError(f"{name} must be a number of seconds, got {env[name]!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise SettingError(f"{name} must be at least {minimum:g} seconds, got {value:g}")
    return value


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    name = "INFRACALC_TRUSTED_PROXIES"
    entries = tuple(entry.strip() for entry in env.get(name, "").split(",") if entry.strip())
    try:
        parse_networks(entries)
    except ValueError as error:
        raise SettingError(f"{name}: {error} (networks in CIDR form, comma-separated)") from None
    return entries


def _proxy_secret_digest(env: Mapping[str, str]) -> str | None:
    name = "INFRACALC_EGRESS_PROXY_SECRET_SHA256"
    value = env.get(name, "").strip().lower()
    if not value:
        return None
    if not proxy_secret.is_digest(value):
        raise SettingError(
            f"{name} must be the SHA-256 of the egress proxy's secret, 64 hex characters "
            '(never the secret itself: printf %s "$INFRACALC_EGRESS_PROXY_SECRET" | sha256sum)'
        )
    return value


def parse_demo_members(text: str) -> tuple[tuple[str, MemberRole], ...]:
    """``"bruno:lead,alice:member"`` as ``(("bruno", LEAD), ("alice", MEMBER))``; ``""`` as no member.

    Raises:
        SettingError: an entry is not ``username:lead`` or ``username:member``.
    """
    members: list[tuple[str, MemberRole]] = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        username, _, role = (part.strip() for part in entry.partition(":"))
        if not username or role not in {member.value for member in MemberRole}:
            raise SettingError(f"INFRACALC_DEMO_MEMBERS: {entry!r} is not username:lead or username:member")
        members.append((username, MemberRole(role)))
    return tuple(members)
