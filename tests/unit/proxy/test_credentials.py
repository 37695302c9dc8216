"""Bubble credentials in Proxy-Authorization: the digest is kept, every malformed form is a 407."""

from __future__ import annotations

import base64

import pytest

from infracalc.identity import bubble_tokens
from infracalc.proxy.credentials import from_head
from infracalc.proxy.wire import ProxyError, RequestHead


def with_auth(*values: str) -> RequestHead:
    return RequestHead("CONNECT", "a.example:443", "HTTP/1.1", tuple(("Proxy-Authorization", v) for v in values))


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_a_bubble_id_and_its_token_give_the_digest_of_the_secret_only() -> None:
    minted = bubble_tokens.mint()
    credentials = from_head(with_auth(basic(f"{minted.bubble_id}:{minted.token}")))
    assert credentials.bubble_id == minted.bubble_id
    assert credentials.token_sha256 == minted.digest
    assert minted.token not in repr(credentials)


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("Bearer abc",),
        ("Basic",),
        ("Basic not*base64",),
        (basic("no-colon"),),
        (basic("0123456789abcdef:not-a-token"),),
        (basic("0123456789abcdef:ibt_fedcba9876543210_" + "a" * 64),),  # another bubble's token
        (basic("x:y"), basic("x:y")),
        ("Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),),
    ],
)
def test_missing_or_malformed_credentials_are_407(values: tuple[str, ...]) -> None:
    with pytest.raises(ProxyError) as caught:
        from_head(with_auth(*values))
    assert (caught.value.status, caught.value.label) == (407, "proxy_auth")
    for value in values:
        _, _, credential = value.partition(" ")
        assert not credential or credential not in caught.value.reason
