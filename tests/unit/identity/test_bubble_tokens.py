"""Bubble tokens: what is handed over, what is stored, and what parses."""

from __future__ import annotations

import pytest

from infracalc.identity import bubble_tokens as tokens


def test_minted_token_parses_back_and_only_its_digest_is_kept() -> None:
    minted = tokens.mint()
    parsed = tokens.parse(minted.token)
    assert parsed is not None
    bubble_id, secret = parsed
    assert bubble_id == minted.bubble_id
    assert tokens.matches(secret, minted.digest)
    assert secret not in minted.digest
    assert minted.token not in repr(minted)


def test_two_tokens_differ() -> None:
    assert tokens.mint().token != tokens.mint().token


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ibt_",
        "ibt_abc_def",
        "Bearer ibt_x",
        "eyJ.a.b",
        "ibt_" + "0" * 16 + "_" + "0" * 63,
        "xbt_" + "0" * 16 + "_" + "0" * 64,
    ],
)
def test_malformed_tokens_do_not_parse(text: str) -> None:
    assert tokens.parse(text) is None


def test_wrong_secret_does_not_match() -> None:
    minted = tokens.mint()
    assert not tokens.matches("0" * 64, minted.digest)
