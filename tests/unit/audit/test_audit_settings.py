"""Audit settings: key path under INFRACALC_HOME by default, cadence validated with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.audit import AuditError, AuditSettings


def test_defaults(tmp_path: Path) -> None:
    settings = AuditSettings.from_env({"INFRACALC_HOME": str(tmp_path)})
    assert settings == AuditSettings(
        key_path=tmp_path / "audit-ed25519.pem", checkpoint_every=100, checkpoint_seconds=300
    )


def test_values_from_the_environment(tmp_path: Path) -> None:
    settings = AuditSettings.from_env(
        {
            "INFRACALC_AUDIT_KEY": str(tmp_path / "k.pem"),
            "INFRACALC_AUDIT_CHECKPOINT_EVERY": "7",
            "INFRACALC_AUDIT_CHECKPOINT_SECONDS": "60",
        }
    )
    assert settings == AuditSettings(key_path=tmp_path / "k.pem", checkpoint_every=7, checkpoint_seconds=60)


@pytest.mark.parametrize(
    ("name", "value"),
    [("INFRACALC_AUDIT_CHECKPOINT_EVERY", "0"), ("INFRACALC_AUDIT_CHECKPOINT_SECONDS", "soon")],
)
def test_bad_cadence_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(AuditError, match=name):
        AuditSettings.from_env({name: value})
