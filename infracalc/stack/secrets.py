"""Secrets of the local stack, made once and kept in ``.infracalc/secrets.json`` (mode 0600).

Keycloak's file database and the object store outlive a restart, so the credentials they were
created with must too: the first ``infracalc up`` generates them, later runs read them back.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infracalc.identity import DemoAccount, RealmConfig, generate_demo_accounts


@dataclass(frozen=True, slots=True)
class LocalSecrets:
    """Every credential the local stack was created with."""

    keycloak_admin_password: str
    s3_access_key: str
    s3_secret_key: str
    realm: RealmConfig
    accounts: tuple[DemoAccount, ...]

    @classmethod
    def generate(cls, *, hub_url: str, web_url: str) -> LocalSecrets:
        """Fresh random credentials for a new local stack."""
        return cls(
            keycloak_admin_password=secrets.token_urlsafe(24),
            s3_access_key="infracalc-" + secrets.token_hex(6),
            s3_secret_key=secrets.token_urlsafe(32),
            realm=RealmConfig.generate(hub_url=hub_url, web_url=web_url),
            accounts=tuple(generate_demo_accounts(secrets.SystemRandom())),
        )

    @classmethod
    def load_or_create(cls, path: Path, *, hub_url: str, web_url: str) -> LocalSecrets:
        """Read the secrets at ``path``, or generate and save them when the file does not exist."""
        if path.is_file():
            return cls.from_json(json.loads(path.read_text()))
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
        )
