"""What a bubble's environment says: its API, token and project, and the proxy carrying its credentials."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from infracalc.hub.bubbles import BubbleRegistration, bubble_environment
from infracalc.identity import bubble_tokens


def test_the_proxy_url_carries_the_bubble_id_and_token_and_both_spellings_are_set() -> None:
    minted = bubble_tokens.mint()
    bubble = BubbleRegistration(minted.bubble_id, "weather", "alice", minted.token)
    env = bubble_environment(
        bubble,
        api_url="http://service:8000/api/v1",
        proxy_url="http://egress-proxy:3128",
        no_proxy=["jupyterhub", "service"],
    )
    proxy = urlsplit(env["HTTPS_PROXY"])
    assert (proxy.hostname, proxy.port) == ("egress-proxy", 3128)
    assert (unquote(proxy.username or ""), unquote(proxy.password or "")) == (minted.bubble_id, minted.token)
    assert env["HTTP_PROXY"] == env["http_proxy"] == env["https_proxy"] == env["HTTPS_PROXY"]
    assert env["NO_PROXY"] == env["no_proxy"] == "jupyterhub,service,localhost,127.0.0.1"
    assert env["INFRACALC_API_URL"] == "http://service:8000/api/v1"
    assert (env["INFRACALC_PROJECT"], env["INFRACALC_BUBBLE_TOKEN"]) == ("weather", minted.token)


def test_the_registration_never_shows_its_token() -> None:
    minted = bubble_tokens.mint()
    assert minted.token not in repr(BubbleRegistration(minted.bubble_id, "weather", "alice", minted.token))
