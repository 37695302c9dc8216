"""The egress proxy's secret: its form, its digest, and the comparison with the configured digest."""

from __future__ import annotations

import hashlib

import pytest

from infracalc.identity import proxy_secret


def test_a_minted_secret_is_well_formed_and_matches_its_digest() -> None:
    secret = proxy_secret.mint()
    assert secret.startswith(proxy_secret.PREFIX)
    assert proxy_secret.well_formed(secret)
    stored = proxy_secret.digest(secret)
    assert stored == hashlib.sha256(secret.encode()).hexdigest(), "sha256sum of the whole secret, as documented"
    assert proxy_secret.is_digest(stored)
    assert proxy_secret.matches(secret, stored)


def test_two_secrets_differ_and_do_not_match_each_other() -> None:
    first, second = proxy_secret.mint(), proxy_secret.mint()
    assert first != second
    assert not proxy_secret.matches(first, proxy_secret.digest(second))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "iep_",
        "iep_" + "0" * 63,
        "iep_" + "0" * 65,
        "iep_" + "A" * 64,  # upper case is not how secrets are minted
        "iep_" + "g" * 64,
        "ibt_" + "0" * 64,
        " iep_" + "0" * 64,
        "iep_" + "0" * 64 + "\n",
    ],
)
def test_malformed_secrets_are_not_well_formed(text: str) -> None:
    assert not proxy_secret.well_formed(text)


@pytest.mark.parametrize("text", ["", "0" * 63, "0" * 65, "Z" * 64, "iep_" + "0" * 60])
def test_only_sha256_hex_is_a_digest(text: str) -> None:
    assert not proxy_secret.is_digest(text)
