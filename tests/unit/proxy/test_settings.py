"""The proxy refuses to start on settings it cannot run safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.config import SettingError
from infracalc.egress import EgressConfigError
from infracalc.proxy.settings import ProxySettings

SECRET = {"INFRACALC_EGRESS_PROXY_SECRET": "iep_" + "a" * 64}
CONSENT = {"INFRACALC_EGRESS_TEST_MODE": "i-understand-this-disables-ssrf-protection"}


def test_defaults_are_safe_and_the_secret_is_not_shown() -> None:
    settings = ProxySettings.from_env(SECRET)
    assert (settings.port, settings.metrics_port, settings.connect_timeout) == (3128, 9128, 10.0)
    assert settings.decision_cache_seconds == 1.0
    assert settings.addresses.allow_ranges == ()
    assert settings.test_hosts is None
    assert "aaaa" not in repr(settings)


def test_the_secret_is_required() -> None:
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_PROXY_SECRET"):
        ProxySettings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INFRACALC_EGRESS_DECISION_CACHE_SECONDS", "1.5"),
        ("INFRACALC_EGRESS_MAX_TUNNELS_PER_BUBBLE", "0"),
        ("INFRACALC_EGRESS_PROXY_PORT", "70000"),
        ("INFRACALC_EGRESS_IDLE_TIMEOUT", "soon"),
        ("INFRACALC_EGRESS_REVISION_POLL_SECONDS", "2"),
    ],
)
def test_out_of_range_values_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=name):
        ProxySettings.from_env({**SECRET, name: value})


def test_test_only_settings_need_the_consent_phrase(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("10.231.200.2 api.allowed.test\n")
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_TEST_HOSTS"):
        ProxySettings.from_env({**SECRET, "INFRACALC_EGRESS_TEST_HOSTS": str(hosts)})
    with pytest.raises(EgressConfigError):
        ProxySettings.from_env({**SECRET, "INFRACALC_EGRESS_TEST_ALLOW_RANGES": "10.231.200.0/24"})
    test_settings = {"INFRACALC_EGRESS_TEST_HOSTS": str(hosts), "INFRACALC_EGRESS_TEST_ALLOW_RANGES": "10.231.200.0/24"}
    settings = ProxySettings.from_env({**SECRET, **CONSENT, **test_settings})
    assert settings.test_hosts == hosts
    assert [str(network) for network in settings.addresses.allow_ranges] == ["10.231.200.0/24"]


def test_the_upstream_test_ca_needs_the_consent_phrase_and_the_ca_settings_go_together(tmp_path: Path) -> None:
    extra = {"INFRACALC_EGRESS_TEST_UPSTREAM_CA": str(tmp_path / "lab-ca.pem")}
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_TEST_UPSTREAM_CA"):
        ProxySettings.from_env({**SECRET, **extra})
    assert ProxySettings.from_env({**SECRET, **CONSENT, **extra}).test_upstream_ca == tmp_path / "lab-ca.pem"
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_CA_DIR"):
        ProxySettings.from_env({**SECRET, "INFRACALC_EGRESS_CA_PUBLIC_DIR": str(tmp_path)})
    defaults = ProxySettings.from_env(SECRET)
    assert (defaults.ca_dir, defaults.tunnels_allowed, defaults.test_upstream_ca) == (None, True, None)
    assert not ProxySettings.from_env({**SECRET, "INFRACALC_EGRESS_TUNNEL_RULES": "forbid"}).tunnels_allowed
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_TUNNEL_RULES must be allow or forbid"):
        ProxySettings.from_env({**SECRET, "INFRACALC_EGRESS_TUNNEL_RULES": "maybe"})
