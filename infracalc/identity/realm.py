"""The ``infracalc`` Keycloak realm: the file kept as code, its placeholders, and the demo accounts.

``infracalc-realm.json`` (beside this module) holds the realm without people (its only user is
the service account of ``infracalc-api``). Its ``${INFRACALC_*}`` placeholders are resolved by
Keycloak from its environment when it imports the file in production, and by
:func:`render_realm` for local stacks and tests, which also adds accounts with a password and a
pre-provisioned TOTP credential.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import pyotp

from infracalc.errors import InfracalcError
from infracalc.mail import MailSettings

#: Name of the realm, as the rest of INFRACALC relies on it.
REALM_NAME = "infracalc"
#: Issuer shown by authenticator apps next to the account name.
TOTP_ISSUER = "INFRACALC"
#: TOTP parameters; they must match the realm's OTP policy (HmacSHA1, 6 digits, 30 s).
TOTP_DIGITS = 6
TOTP_PERIOD = 30
#: File name written for Keycloak's ``--import-realm`` (it reads every ``*.json`` of its import directory).
IMPORT_FILE_NAME = "infracalc.json"
#: The placeholders of the realm file, each the name of an environment variable Keycloak reads at import.
PLACEHOLDERS = (
    "INFRACALC_API_CLIENT_SECRET",
    "INFRACALC_HUB_URL",
    "INFRACALC_JUPYTERHUB_CLIENT_SECRET",
    "INFRACALC_WEB_CLIENT_SECRET",
    "INFRACALC_WEB_URL",
    # The relay Keycloak sends its e-mails through (the link to its required actions at enrollment).
    "INFRACALC_SMTP_HOST",
    "INFRACALC_SMTP_PORT",
    "INFRACALC_SMTP_FROM",
    "INFRACALC_SMTP_STARTTLS",
    #: ``INFRACALC_SMTP_AUTH`` (Keycloak, at import): ``true`` when the relay wants a login from Keycloak.
    "INFRACALC_SMTP_AUTH",
    "INFRACALC_SMTP_USERNAME",
    "INFRACALC_SMTP_PASSWORD",
)

_REALM_RESOURCE = "infracalc-realm.json"
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# No quote, backslash or shell metacharacter that could trip a copy-paste into a terminal or a JSON file.
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.,:+="
_PASSWORD_LENGTH = 24
_CLIENT_SECRET_BYTES = 32
# 160-bit TOTP key, the size RFC 4226 recommends for HMAC-SHA1.
_TOTP_SECRET_BYTES = 20


class RealmError(InfracalcError):
    """The realm could not be rendered: a placeholder nobody provides, or an invalid account."""


class RandomSource(Protocol):
    """The randomness account generation needs: :class:`random.SystemRandom`, never a seeded ``random.Random``."""

    def choice(self, seq: Sequence[str], /) -> str:
        """One element of ``seq``."""
        ...

    def getrandbits(self, k: int, /) -> int:
        """A non-negative integer with ``k`` random bits."""
        ...


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A user seeded into the realm with a password, a base32 TOTP secret and realm roles."""

    username: str
    password: str = field(repr=False)
    totp_secret: str = field(repr=False)
    roles: tuple[str, ...]
    email: str
    first_name: str
    last_name: str

    def totp(self) -> pyotp.TOTP:
        """The account's TOTP generator (HMAC-SHA1, 6 digits, 30 s, like the realm's OTP policy)."""
        return pyotp.TOTP(self.totp_secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)

    def otpauth_uri(self) -> str:
        """The ``otpauth://`` URI an authenticator app scans to hold this account's TOTP secret."""
        # pyotp leaves out parameters equal to the defaults of Google Authenticator; some apps want them spelled out.
        base = self.totp().provisioning_uri(name=self.username, issuer_name=TOTP_ISSUER)
        return f"{base}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD}"


@dataclass(frozen=True, slots=True)
class RealmConfig:
    """The values the realm file leaves to its environment: public URLs and client secrets."""

    hub_url: str
    web_url: str
    jupyterhub_client_secret: str = field(repr=False)
    web_client_secret: str = field(repr=False)
    api_client_secret: str = field(repr=False)

    @classmethod
    def generate(cls, hub_url: str, web_url: str) -> RealmConfig:
        """A configuration for ``hub_url`` and ``web_url`` with fresh random client secrets."""
        return cls(
            hub_url=hub_url.rstrip("/"),
            web_url=web_url.rstrip("/"),
            jupyterhub_client_secret=secrets.token_urlsafe(_CLIENT_SECRET_BYTES),
            web_client_secret=secrets.token_urlsafe(_CLIENT_SECRET_BYTES),
            api_client_secret=secrets.token_urlsafe(_CLIENT_SECRET_BYTES),
        )

    def placeholders(self) -> dict[str, str]:
        """The value of each placeholder of the realm file, keyed by environment variable name."""
        return {
            "INFRACALC_API_CLIENT_SECRET": self.api_client_secret,
            "INFRACALC_HUB_URL": self.hub_url,
            "INFRACALC_JUPYTERHUB_CLIENT_SECRET": self.jupyterhub_client_secret,
            "INFRACALC_WEB_CLIENT_SECRET": self.web_client_secret,
            "INFRACALC_WEB_URL": self.web_url,
        }


def mail_placeholders(mail: MailSettings) -> dict[str, str]:
    """The realm's ``INFRACALC_SMTP_*`` placeholders for ``mail``: Keycloak sends through the service's relay."""
    return {
        "INFRACALC_SMTP_HOST": mail.host,
        "INFRACALC_SMTP_PORT": str(mail.port),
        "INFRACALC_SMTP_FROM": mail.sender,
        "INFRACALC_SMTP_STARTTLS": "true" if mail.starttls else "false",
        "INFRACALC_SMTP_AUTH": "true" if mail.username else "false",
        "INFRACALC_SMTP_USERNAME": mail.username or "",
        "INFRACALC_SMTP_PASSWORD": mail.password or "",
    }


def random_password(rng: RandomSource, length: int = _PASSWORD_LENGTH) -> str:
    """A password of ``length`` characters with at least one lower-case letter, upper-case letter and digit."""
    while True:
        password = "".join(rng.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def random_totp_secret(rng: RandomSource) -> str:
    """A random 160-bit TOTP secret, base32 without padding (32 characters)."""
    key = rng.getrandbits(_TOTP_SECRET_BYTES * 8).to_bytes(_TOTP_SECRET_BYTES, "big")
    return base64.b32encode(key).decode("ascii").rstrip("=")


def new_account(
    rng: RandomSource,
    username: str,
    roles: Sequence[str],
    *,
    first_name: str,
    last_name: str,
    email: str | None = None,
) -> DemoAccount:
    """An account with a random password and TOTP secret; the e-mail defaults to ``<username>@example.org``."""
    return DemoAccount(
        username=username,
        password=random_password(rng),
        totp_secret=random_totp_secret(rng),
        roles=tuple(roles),
        email=email if email is not None else f"{username}@example.org",
        first_name=first_name,
        last_name=last_name,
    )


def generate_demo_accounts(rng: RandomSource | None = None) -> list[DemoAccount]:
    """The three demo users: a researcher (alice), a project lead (bruno) and a CASD staff member (claire).

    Args:
        rng: Source of the passwords and TOTP secrets; the operating system's (``random.SystemRandom``) by default.
    """
    rng = rng if rng is not None else random.SystemRandom()
    return [
        new_account(rng, "alice", ["researcher"], first_name="Alice", last_name="Martin"),
        new_account(rng, "bruno", ["project-lead"], first_name="Bruno", last_name="Lefebvre"),
        new_account(rng, "claire", ["casd-staff"], first_name="Claire", last_name="Dubois"),
    ]


def user_representation(account: DemoAccount) -> dict[str, Any]:
    """The Keycloak user representation of ``account``: password, TOTP credential, realm roles, full profile.

    The profile is complete and the e-mail verified so that no required action stops the first login. The
    TOTP credential uses ``secretEncoding: BASE32`` so that Keycloak's HMAC key is the decoded base32 secret
    that the authenticator app holds (without it Keycloak would use the UTF-8 bytes of the text).
    """
    if not account.totp_secret:
        raise RealmError(f"account {account.username!r} has no TOTP secret")
    try:
        base64.b32decode(account.totp_secret + "=" * (-len(account.totp_secret) % 8), casefold=True)
    except ValueError as error:
        raise RealmError(f"the TOTP secret of {account.username!r} is not base32") from error
    credential_data = {
        "subType": "totp",
        "digits": TOTP_DIGITS,
        "counter": 0,
        "period": TOTP_PERIOD,
        "algorithm": "HmacSHA1",
        "secretEncoding": "BASE32",
    }
    return {
        "username": account.username,
        "enabled": True,
        "email": account.email,
        "emailVerified": True,
        "firstName": account.first_name,
        "lastName": account.last_name,
        "realmRoles": list(account.roles),
        "requiredActions": [],
        "credentials": [
            {"type": "password", "value": account.password, "temporary": False},
            {
                "type": "otp",
                "userLabel": TOTP_ISSUER,
                "secretData": json.dumps({"value": account.totp_secret}),
                "credentialData": json.dumps(credential_data),
            },
        ],
    }


def realm_template() -> dict[str, Any]:
    """The realm file as shipped, placeholders unresolved."""
    text = resources.files(__package__).joinpath(_REALM_RESOURCE).read_text(encoding="utf-8")
    realm: dict[str, Any] = json.loads(text)
    return realm


def resolve_placeholders(value: Any, values: Mapping[str, str]) -> Any:
    """A copy of the JSON ``value`` with every ``${NAME}`` in its strings replaced by ``values[NAME]``.

    Substitution happens inside the parsed strings, so a value can never change the JSON structure.

    Raises:
        RealmError: a placeholder is not in ``values``.
    """
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise RealmError(f"the realm file uses the placeholder ${{{name}}}, which has no value")
            return values[name]

        return _PLACEHOLDER.sub(substitute, value)
    if isinstance(value, dict):
        return {key: resolve_placeholders(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_placeholders(item, values) for item in value]
    return value


def render_realm(config: RealmConfig, accounts: Sequence[DemoAccount], mail: MailSettings) -> dict[str, Any]:
    """The realm ready to import: placeholders resolved from ``config`` and ``mail``, ``accounts`` added as users.

    Raises:
        RealmError: an unknown placeholder, a duplicate username, or an account role the realm lacks.
    """
    values = {**config.placeholders(), **mail_placeholders(mail)}
    realm: dict[str, Any] = resolve_placeholders(realm_template(), values)
    known_roles = {role["name"] for role in realm.get("roles", {}).get("realm", [])}
    # The file's own users are service accounts (infracalc-api's, which may look people up).
    users: list[dict[str, Any]] = list(realm.get("users", []))
    seen = {user["username"] for user in users}
    for account in accounts:
        if account.username in seen:
            raise RealmError(f"two accounts are named {account.username!r}")
        seen.add(account.username)
        unknown = set(account.roles) - known_roles
        if unknown:
            raise RealmError(f"account {account.username!r} has roles the realm lacks: {sorted(unknown)}")
        users.append(user_representation(account))
    realm["users"] = users
    return realm


def write_realm_import(
    import_dir: Path, config: RealmConfig, accounts: Sequence[DemoAccount], mail: MailSettings
) -> Path:
    """Write the rendered realm to ``import_dir/infracalc.json`` (mode 0600: it holds secrets); return its path."""
    import_dir.mkdir(parents=True, exist_ok=True)
    path = import_dir / IMPORT_FILE_NAME
    data = json.dumps(render_realm(config, accounts, mail), indent=2).encode("utf-8")
    # Created with 0600 from the start, so the secrets are never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    path.chmod(0o600)
    return path
