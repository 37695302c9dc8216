"""The Ed25519 key that signs checkpoints: loaded from a PEM file, created there on first use.

The file is written with mode 0600 and refused when group or others may read it (as ssh does).
A key is named by its key id: the first 16 hex characters of the SHA-256 of its raw public key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infracalc.audit.errors import AuditKeyError


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: SHA-256 of the raw 32-byte public key, first 16 hex characters."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_valid(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message``."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class CheckpointSigner:
    """Signs checkpoint messages with one Ed25519 private key (never shown in reprs)."""

    __slots__ = ("_key_id", "_private_key", "_public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self._key_id = key_id(self._public_key)

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self._key_id!r})"

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, which verifies this signer's checkpoints."""
        return self._public_key

    @property
    def key_id(self) -> str:
        """This key's id (see :func:`key_id`)."""
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private_key.sign(message)

    @classmethod
    def generate(cls) -> CheckpointSigner:
        """A signer with a new random key, kept in memory only (tests, benchmarks)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> CheckpointSigner:
        """The signer whose private key is in the PEM file at ``path``.

        Raises:
            AuditKeyError: the file is missing, readable by group or others, or not an Ed25519 private key.
        """
        return cls(_load_private_key(path))

    @classmethod
    def load_or_create(cls, path: Path) -> CheckpointSigner:
        """The signer from ``path``, first writing a new key there (mode 0600) when there is none.

        Safe when several processes start at once: the file appears whole, and only once.

        Raises:
            AuditKeyError: an existing file cannot be used (see :meth:`load`), or the new one cannot be written.
        """
        if not path.exists():
            _write_new_key(path)
        return cls.load(path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at ``path``: a public key, or the public half of a private key.

    Raises:
        AuditKeyError: the file is missing or holds no Ed25519 key.
    """
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return _load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise AuditKeyError(f"{path} holds no PEM public or private key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """``public_key`` as a PEM ``PUBLIC KEY`` block, to hand to whoever verifies the log."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(f"no audit key at {path} (INFRACALC_AUDIT_KEY)") from None
    except OSError as error:
        raise AuditKeyError(f"cannot read the audit key at {path}: {error.strerror}") from None


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(f"the audit key {path} is open to group or others (mode {mode & 0o777:o}): chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # Never echo the file's content: it is a secret.
        raise AuditKeyError(f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _write_new_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write a private temporary file, then link it into place: the link fails if another process won.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise AuditKeyError(f"cannot create the audit key at {path}: {error.strerror}") from None
