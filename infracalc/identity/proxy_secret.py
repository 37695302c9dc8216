"""The egress proxy's secret: minted once, given to the proxy, known to the service as a SHA-256 digest only.

A secret reads ``iep_<64 hex>`` (256 random bits): the prefix tells it apart from Keycloak's JWTs
and from bubble tokens (``ibt_``). The proxy is configured with the secret
(``INFRACALC_EGRESS_PROXY_SECRET``), the service with its digest
(``INFRACALC_EGRESS_PROXY_SECRET_SHA256``), so that the service's environment holds nothing a
caller could present. The digest is of the whole secret, prefix included::

    printf %s "$INFRACALC_EGRESS_PROXY_SECRET" | sha256sum
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "iep_"
_SECRET_BYTES = 32
_FORM = re.compile(rf"{PREFIX}[0-9a-f]{{{2 * _SECRET_BYTES}}}")
_DIGEST_FORM = re.compile(r"[0-9a-f]{64}")


def mint() -> str:
    """A fresh proxy secret."""
    return f"{PREFIX}{secrets.token_hex(_SECRET_BYTES)}"


def well_formed(secret: str) -> bool:
    """Whether ``secret`` has the form of a proxy secret (``iep_`` and 64 lowercase hex characters)."""
    return _FORM.fullmatch(secret) is not None


def digest(secret: str) -> str:
    """What the service is configured with: the SHA-256 of the whole secret, 64 lowercase hex characters."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_digest(text: str) -> bool:
    """Whether ``text`` is a SHA-256 digest as :func:`digest` writes it."""
    return _DIGEST_FORM.fullmatch(text) is not None


def matches(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` is the one whose digest was stored (constant-time comparison)."""
    return hmac.compare_digest(digest(secret), stored_digest)
