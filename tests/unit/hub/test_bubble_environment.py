"""What a bubble's environment says: its API, token and project, and the proxy carrying its credentials."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from urllib.parse import unquote, urlsplit

from infracalc.egress.trust import write_bubble_bundle
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


def test_a_local_bubble_trusts_the_egress_ca_through_a_bundle_in_its_home(tmp_path: Path) -> None:
    from infracalc.hub.spawner import LocalBubbleSpawner
    from infracalc.proxy.authority import create_authority

    ca = create_authority(tmp_path / "ca")
    spawner = LocalBubbleSpawner(
        egress_ca_cert=str(ca.cert_path), home_dir_template=str(tmp_path / "home" / "{username}")
    )
    spawner.user = SimpleNamespace(name="alice")
    with mock.patch("jupyterhub.spawner.SimpleLocalProcessSpawner.get_env", return_value={}):
        env = spawner.get_env()
    bundle = tmp_path / "home" / "alice" / ".infracalc" / "egress-ca-bundle.pem"
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == env["CURL_CA_BUNDLE"] == str(bundle)
    assert env["NODE_EXTRA_CA_CERTS"] == str(ca.cert_path)
    write_bubble_bundle(Path(spawner.egress_ca_cert), spawner.ca_bundle)  # what start() does first
    assert ca.cert_path.read_text().strip() in bundle.read_text()
    assert "PRIVATE KEY" not in bundle.read_text()
    without = LocalBubbleSpawner(home_dir_template=str(tmp_path / "home" / "{username}"))
    without.user = SimpleNamespace(name="alice")
    with mock.patch("jupyterhub.spawner.SimpleLocalProcessSpawner.get_env", return_value={}):
        assert "SSL_CERT_FILE" not in without.get_env()
