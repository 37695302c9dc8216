"""Settings from the environment: defaults, validation with the variable's name, no secret in reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.config import SettingError, StackSettings
from infracalc.storage import S3Settings


def test_defaults_bind_loopback_on_documented_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = StackSettings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.home == tmp_path / ".infracalc"
    assert settings.ports() == {
        "INFRACALC_KEYCLOAK_PORT": 8080,
        "INFRACALC_KEYCLOAK_MANAGEMENT_PORT": 9080,
        "INFRACALC_OPA_PORT": 8181,
        "INFRACALC_S3_PORT": 7070,
        "INFRACALC_SERVICE_PORT": 8001,
        "INFRACALC_HUB_PORT": 8000,
        "INFRACALC_HUB_API_PORT": 8081,
        "INFRACALC_CHP_API_PORT": 8002,
        "INFRACALC_EGRESS_PROXY_PORT": 3128,
        "INFRACALC_EGRESS_METRICS_PORT": 9128,
        "INFRACALC_MAILBOX_SMTP_PORT": 1025,
        "INFRACALC_MAILBOX_PORT": 8025,
    }
    assert settings.hub_url == "http://127.0.0.1:8000"


def test_port_is_read_from_its_variable() -> None:
    assert StackSettings.from_env({"INFRACALC_OPA_PORT": "18181"}).opa_port == 18181


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_bad_port_names_the_variable(value: str) -> None:
    with pytest.raises(SettingError, match="INFRACALC_S3_PORT"):
        StackSettings.from_env({"INFRACALC_S3_PORT": value})


def test_s3_settings_never_show_the_secret_key() -> None:
    settings = S3Settings.from_env(
        {
            "INFRACALC_S3_ENDPOINT_URL": "http://127.0.0.1:7070",
            "INFRACALC_S3_ACCESS_KEY": "access",
            "INFRACALC_S3_SECRET_KEY": "very-secret-value",
        }
    )
    assert settings.secret_key == "very-secret-value"
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings)
