"""Which realm the workstation commands talk to; the device login itself is tested against the real Keycloak
(``tests/integration/workstation/``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from infracalc.workstation import Credential, CredentialStore, WorkstationError, choose_realm


def test_an_explicit_url_wins_and_is_checked(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    realm = choose_realm("https://id.example.org/", store)
    assert (realm.keycloak_url, realm.realm, realm.client_id) == (
        "https://id.example.org",
        "infracalc",
        "infracalc-cli",
    )
    assert realm.issuer == "https://id.example.org/realms/infracalc"
    assert (
        realm.endpoint("auth/device") == "https://id.example.org/realms/infracalc/protocol/openid-connect/auth/device"
    )
    for bad in ("id.example.org", "ftp://id.example.org", "https://", "https://id.example.org/?x=1", "https://a/#f"):
        with pytest.raises(WorkstationError, match="must be an http"):
            choose_realm(bad, store)


def test_without_a_url_the_last_realm_signed_in_to_then_the_local_stack(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "infracalc")
    assert choose_realm(None, store).issuer == "http://127.0.0.1:8080/realms/infracalc"
    store.save(
        Credential(
            issuer="https://id.example.org/realms/infracalc",
            keycloak_url="https://id.example.org",
            realm="infracalc",
            username="alice",
            signed_in_at=datetime(2026, 12, 6, tzinfo=UTC),
            expires_at=None,
            refresh_token="r",
        )
    )
    assert choose_realm(None, store).issuer == "https://id.example.org/realms/infracalc"
    assert choose_realm("", store).issuer == "https://id.example.org/realms/infracalc"
