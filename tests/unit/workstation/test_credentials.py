"""The credentials file of ``infracalc login``: private from the first byte, one sign-in per realm, refused if loose."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infracalc.workstation.credentials import Credential, CredentialStore, config_folder
from infracalc.workstation.errors import CredentialFileUnsafe

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def credential(issuer: str = "https://id.example.org/realms/infracalc", token: str = "refresh-1") -> Credential:  # noqa: S107
    keycloak_url, _, realm = issuer.rpartition("/realms/")
    return Credential(
        issuer=issuer,
        keycloak_url=keycloak_url,
        realm=realm,
        username="alice",
        signed_in_at=NOW,
        expires_at=NOW + timedelta(minutes=30),
        refresh_token=token,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folder_follows_xdg_and_falls_back_to_dot_config() -> None:
    assert config_folder({"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/a"}) == Path("/x/conf/infracalc")
    assert config_folder({"HOME": "/home/a"}) == Path("/home/a/.config/infracalc")
    # A relative XDG_CONFIG_HOME is invalid (XDG Base Directory specification) and ignored.
    assert config_folder({"XDG_CONFIG_HOME": "conf", "HOME": "/home/a"}) == Path("/home/a/.config/infracalc")


def test_saved_credential_is_private_and_read_back(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "conf" / "infracalc")
    kept = credential()

    previous = os.umask(0o022)  # the usual umask would leave a folder 0755
    try:
        store.save(kept)
    finally:
        os.umask(previous)

    assert mode(store.folder) == 0o700
    assert mode(store.path) == 0o600
    assert store.load(kept.issuer) == kept
    assert store.latest() == kept
    assert [p.name for p in store.folder.iterdir()] == ["credentials.json"], "a temporary file was left behind"
    # Only the refresh token is kept: no access token, no ID token.
    entry = json.loads(store.path.read_text())["credentials"][kept.issuer]
    assert set(entry) == {"keycloak_url", "realm", "username", "signed_in_at", "expires_at", "refresh_token"}
    assert "refresh-1" not in repr(kept)


def test_an_existing_loose_folder_is_made_private_at_the_next_save(tmp_path: Path) -> None:
    folder = tmp_path / "infracalc"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    CredentialStore(folder).save(credential())
    assert mode(folder) == 0o700


def test_one_credential_per_realm_and_the_latest_is_the_default(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    first = credential("https://id.example.org/realms/infracalc", "refresh-a")
    second = credential("http://127.0.0.1:8080/realms/infracalc", "refresh-b")
    store.save(first)
    store.save(second)
    store.save(credential("https://id.example.org/realms/infracalc", "refresh-c"))

    assert store.load(second.issuer) == second
    replaced = store.load(first.issuer)
    assert replaced is not None
    assert replaced.refresh_token == "refresh-c"
    assert store.latest() == replaced

    assert store.remove(first.issuer) == replaced
    assert store.load(first.issuer) is None
    assert store.latest() == second
    assert store.remove(first.issuer) is None


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_or_change_is_refused(tmp_path: Path, loose: int) -> None:
    store = CredentialStore(tmp_path / "infracalc")
    kept = credential()
    store.save(kept)
    store.path.chmod(loose)

    with pytest.raises(CredentialFileUnsafe, match=r"can be read or changed by others \(mode 0"):
        store.load(kept.issuer)
    with pytest.raises(CredentialFileUnsafe):
        store.latest()
    # Signing out still works, revokes what the file holds, and leaves a private file.
    assert store.remove(kept.issuer) == kept
    assert mode(store.path) == 0o600
    assert store.load(kept.issuer) is None


def test_a_folder_others_can_enter_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "infracalc")
    store.save(credential())
    store.folder.chmod(0o755)
    with pytest.raises(CredentialFileUnsafe, match="infracalc can be read or changed by others"):
        store.latest()


def test_a_symlink_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "infracalc")
    store.save(credential())
    elsewhere = tmp_path / "elsewhere.json"
    store.path.replace(elsewhere)
    store.path.symlink_to(elsewhere)
    with pytest.raises(CredentialFileUnsafe, match="cannot read"):
        store.latest()


def test_a_file_that_is_not_ours_is_refused_with_what_to_do(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("not json")
    store.path.chmod(0o600)
    tmp_path.chmod(0o700)
    with pytest.raises(CredentialFileUnsafe, match="remove it and sign in again"):
        store.latest()


def test_nothing_kept_reads_as_not_signed_in_and_creates_nothing(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "infracalc")
    assert store.latest() is None
    assert store.load("https://id.example.org/realms/infracalc") is None
    assert not store.folder.exists()
