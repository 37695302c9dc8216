"""Bubble tokens: minted once, given to the bubble, kept by the service as a SHA-256 digest only.

A token reads ``ibt_<bubble id>_<secret>``: the prefix tells it apart from Keycloak's JWTs, the id
finds the bubble without scanning, and the secret (256 random bits, hex) proves possession.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "ibt_"
_ID_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A new bubble's id, the token to hand over once, and the digest to store."""

    bubble_id: str
    token: str = ""
    digest: str = ""

    def __repr__(self) -> str:
        return f"MintedToken(bubble_id={self.bubble_id!r})"  # never the token


def mint() -> MintedToken:
    """A fresh bubble id and token."""
    bubble_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    return MintedToken(bubble_id, f"{PREFIX}{bubble_id}_{secret}", digest(secret))


def digest(secret: str) -> str:
    """What the service stores of a token's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """``(bubble id, secret)`` of a well-formed token, else ``None``."""
    if not token.startswith(PREFIX):
        return None
    bubble_id, _, secret = token[len(PREFIX) :].partition("_")
    if len(bubble_id) != 2 * _ID_BYTES or len(secret) != 2 * _SECRET_BYTES:
        return None
    return bubble_id, secret


def matches(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` is the one whose digest was stored (constant-time comparison)."""
    return hmac.compare_digest(digest(secret), stored_digest)
