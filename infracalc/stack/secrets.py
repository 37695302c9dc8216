"""Secrets of the local stack, made once and kept in ``.infracalc/secrets.json`` (mode 0600).

Keycloak's file database and the object store outlive a restart, so the credentials they were
created with must too: the first ``infracalc up`` generates them, later runs read them back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infracalc.identity import DemoAccount, RealmConfig, generate_demo_accounts, proxy_secret


@dataclass(frozen=True, slots=True)
class LocalSecrets:
    """Every credential the local stack was created with."""

    keycloak_admin_password: str
    s3_access_key: str
    s3_secret_key: str
    realm: RealmConfig
    accounts: tuple[DemoAccount, ...]
    #: The egress proxy's credential with the service (which is given only its SHA-256).
    egress_proxy_secret: str = ""
    #: JUPYTERHUB_CRYPT_KEY: encrypts the hub's copy of each person's tokens (auth state).
    hub_crypt_key: str = ""
    #: The service's token with the hub's API, to stop the servers of the bubbles it revokes.
    hub_service_token: str = ""

    @classmethod
    def generate(cls, *, hub_url: str, web_url: str) -> LocalSecrets:
        """Fresh random credentials for a new local stack."""
        return cls(
            keycloak_admin_password=secrets.token_urlsafe(24),
            s3_access_key="infracalc-" + secrets.token_hex(6),
            s3_secret_key=secrets.token_urlsafe(32),
            realm=RealmConfig.generate(hub_url=hub_url, web_url=web_url),
            accounts=tuple(generate_demo_accounts(secrets.SystemRandom())),
            egress_proxy_secret=proxy_secret.mint(),
            hub_crypt_key=secrets.token_hex(32),
            hub_service_token=secrets.token_hex(32),
        )

    @classmethod
    def load_or_create(cls, path: Path, *, hub_url: str, web_url: str) -> LocalSecrets:
        """Read the secrets at ``path``, or generate and save them when the file does not exist."""
        if path.is_file():
            loaded = cls.from_json(json.loads(path.read_text()))
            # Made by an earlier version: add the secrets it did not have, keep everything else.
            upgraded = dataclasses.replace(
                loaded,
                egress_proxy_secret=loaded.egress_proxy_secret
                if proxy_secret.well_formed(loaded.egress_proxy_secret)
                else proxy_secret.mint(),
                hub_crypt_key=loaded.hub_crypt_key or secrets.token_hex(32),
                hub_service_token=loaded.hub_service_token or secrets.token_hex(32),
            )
            if upgraded != loaded:
                upgraded.save(path)
            return upgraded
        created = cls.generate(hub_url=hub_url, web_url=web_url)
        created.save(path)
        return created

    def save(self, path: Path) -> None:
        """Write the secrets to ``path``, readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.to_json(), handle, indent=2)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalSecrets:
        """The inverse of :meth:`to_json`."""
        return cls(
            keycloak_admin_password=data["keycloak_admin_password"],
            s3_access_key=data["s3_access_key"],
            s3_secret_key=data["s3_secret_key"],
            realm=RealmConfig(**data["realm"]),
            accounts=tuple(
                DemoAccount(**{**account, "roles": tuple(account["roles"])}) for account in data["accounts"]
            ),
            egress_proxy_secret=data.get("egress_proxy_secret", ""),
            hub_crypt_key=data.get("hub_crypt_key", ""),
            hub_service_token=data.get("hub_service_token", ""),
        )
