"""Reading a bubble's proxy credentials from ``Proxy-Authorization: Basic``.

The hub gives each bubble ``HTTP(S)_PROXY=http://<bubble id>:<bubble token>@<proxy>``, so clients
send ``Basic base64("<bubble id>:ibt_<bubble id>_<secret>")``. The proxy keeps only the SHA-256 of
the secret, which is what OPA compares with (``data.store.infracalc.bubbles``); the token itself is
never logged, stored or sent on.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from infracalc.identity import bubble_tokens
from infracalc.proxy.wire import ProxyError, RequestHead

#: The challenge sent with every 407.
CHALLENGE = ("Proxy-Authenticate", 'Basic realm="infracalc-egress"')


@dataclass(frozen=True, slots=True)
class BubbleCredentials:
    """A bubble's claimed identity: its id and the digest of its token's secret (never the token)."""

    bubble_id: str
    token_sha256: str


def _refuse(reason: str) -> ProxyError:
    return ProxyError(407, "proxy_auth", reason)


def from_head(head: RequestHead) -> BubbleCredentials:
    """The credentials in ``head``'s ``Proxy-Authorization``.

    Raises:
        ProxyError: 407 when the header is missing, repeated, not Basic, or not a well-formed bubble
            id and token that belong together; the reason says which, never echoing the token.
    """
    values = head.values("Proxy-Authorization")
    if not values:
        raise _refuse("proxy authentication required: use http://<bubble id>:<bubble token>@<proxy> as the proxy")
    if len(values) > 1:
        raise _refuse("the Proxy-Authorization header appears more than once")
    scheme, _, encoded = values[0].partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise _refuse("Proxy-Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise _refuse("Proxy-Authorization holds malformed Basic credentials") from None
    bubble_id, colon, token = decoded.partition(":")
    if not colon:
        raise _refuse("Proxy-Authorization holds malformed Basic credentials")
    parsed = bubble_tokens.parse(token)
    if parsed is None or parsed[0] != bubble_id:
        raise _refuse("the proxy credentials are not a bubble id and its bubble token")
    return BubbleCredentials(bubble_id, bubble_tokens.digest(parsed[1]))
