"""The checkpoint key: created once with mode 0600, reused, refused when exposed; key ids; public keys."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from infracalc.audit import AuditKeyError, CheckpointSigner, key_id, load_public_key, public_key_pem
from infracalc.audit.signer import signature_valid


def test_load_or_create_writes_a_private_key_file_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-ed25519.pem"
    first = CheckpointSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = CheckpointSigner.load_or_create(path)
    assert again.key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left behind"


def test_key_id_is_sha256_of_the_raw_public_key(tmp_path: Path) -> None:
    signer = CheckpointSigner.generate()
    raw = signer.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == key_id(signer.public_key) == hashlib.sha256(raw).hexdigest()[:16]
    assert CheckpointSigner.generate().key_id != signer.key_id


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    CheckpointSigner.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        CheckpointSigner.load(path)


def test_missing_and_foreign_keys_are_refused_without_showing_content(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="no audit key at"):
        CheckpointSigner.load(tmp_path / "absent.pem")
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ec_path.chmod(0o600)
    with pytest.raises(AuditKeyError, match="not an Ed25519 key"):
        CheckpointSigner.load(ec_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    junk.chmod(0o600)
    with pytest.raises(AuditKeyError) as caught:
        CheckpointSigner.load(junk)
    assert "c2VjcmV0" not in str(caught.value)


def test_public_key_loads_from_the_private_or_the_public_pem(tmp_path: Path) -> None:
    signer = CheckpointSigner.load_or_create(tmp_path / "audit.pem")
    public = tmp_path / "audit.pub.pem"
    public.write_bytes(public_key_pem(signer.public_key))
    for path in (tmp_path / "audit.pem", public):
        assert key_id(load_public_key(path)) == signer.key_id


def test_signatures_verify_only_with_the_signing_key() -> None:
    signer = CheckpointSigner.generate()
    signature = signer.sign(b"message")
    assert signature_valid(signer.public_key, signature, b"message")
    assert not signature_valid(signer.public_key, signature, b"messagf")
    assert not signature_valid(CheckpointSigner.generate().public_key, signature, b"message")


def test_repr_shows_the_key_id_only() -> None:
    signer = CheckpointSigner.generate()
    assert repr(signer) == f"CheckpointSigner(key_id={signer.key_id!r})"
