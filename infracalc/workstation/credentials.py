"""Where ``infracalc login`` keeps a person's sign-in: one refresh token per realm, in a private file.

The file is ``credentials.json`` in the user's configuration folder (``$XDG_CONFIG_HOME/infracalc/``,
else ``~/.config/infracalc/``): the folder mode 0700, the file 0600, written whole to a temporary file
and renamed, so that a reader never sees half a file and nothing is ever readable by others, even
briefly. It holds one entry per realm (keyed by the realm's issuer URL) and which realm was signed in
to last, the default of the commands that need a token.

Only the refresh token is kept, never an access token: a refresh token is good only at Keycloak (which
can revoke it and checks its session on every use), while an access token lying in a file would be a
bearer credential for the API that nothing can withdraw before it expires. Getting a fresh access token
costs each command one round trip to Keycloak, which a person-facing command can afford.

A file or folder that others may read is refused, as ``ssh`` does with its keys: the refresh token in it
may already have leaked.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from infracalc.workstation.errors import CredentialFileUnsafe

#: The file's name in the configuration folder.
FILE_NAME: Final = "credentials.json"
_FORMAT: Final = 1
_FOLDER_MODE: Final = 0o700
_FILE_MODE: Final = 0o600


def config_folder(env: Mapping[str, str] | None = None) -> Path:
    """The user's INFRACALC configuration folder: ``$XDG_CONFIG_HOME/infracalc``, else ``~/.config/infracalc``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME")
    # The XDG Base Directory specification: a relative path is invalid and must be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path(env.get("HOME") or Path.home()) / ".config"
    return root / "infracalc"


@dataclass(frozen=True, slots=True)
class Credential:
    """A person's sign-in to one realm: who, since when, until when at the latest, and the refresh token."""

    #: The realm's issuer URL (``https://id.example.org/realms/infracalc``): the key of the entry.
    issuer: str
    #: Keycloak's base URL the commands talk to (the issuer without ``/realms/<realm>``).
    keycloak_url: str
    realm: str
    username: str
    signed_in_at: datetime
    #: When the refresh token lapses unless used (Keycloak's ``refresh_expires_in``; each use extends it, within
    #: the session's maximum). ``None`` when Keycloak gave no time.
    expires_at: datetime | None
    refresh_token: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as stored."""
        return {
            "keycloak_url": self.keycloak_url,
            "realm": self.realm,
            "username": self.username,
            "signed_in_at": self.signed_in_at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "refresh_token": self.refresh_token,
        }

    @classmethod
    def from_json(cls, issuer: str, entry: Mapping[str, Any]) -> Credential:
        """An entry read back; ``KeyError``/``ValueError``/``TypeError`` when it is not one."""
        expires_at = entry.get("expires_at")
        return cls(
            issuer=issuer,
            keycloak_url=str(entry["keycloak_url"]),
            realm=str(entry["realm"]),
            username=str(entry["username"]),
            signed_in_at=datetime.fromisoformat(str(entry["signed_in_at"])),
            expires_at=None if expires_at is None else datetime.fromisoformat(str(expires_at)),
            refresh_token=str(entry["refresh_token"]),
        )


class CredentialStore:
    """The credentials file of one configuration folder."""

    def __init__(self, folder: Path) -> None:
        """Use ``folder`` (see :func:`config_folder`); nothing is created before the first :meth:`save`."""
        self.folder = folder
        self.path = folder / FILE_NAME

    # -- reading -------------------------------------------------------------------------------

    def load(self, issuer: str, *, private_only: bool = True) -> Credential | None:
        """The credential of the realm ``issuer``, or ``None``.

        Args:
            issuer: The realm's issuer URL.
            private_only: Refuse a file others can read (``False`` only to revoke what it holds).

        Raises:
            CredentialFileUnsafe: the file or its folder can be read by others, or the file is not ours.
        """
        entry = self._read(private_only=private_only)["credentials"].get(issuer)
        if not isinstance(entry, dict):
            return None
        try:
            return Credential.from_json(issuer, entry)
        except (KeyError, ValueError, TypeError):
            return None

    def latest(self) -> Credential | None:
        """The credential signed in to last, or ``None``."""
        latest = self._read().get("latest")
        return self.load(latest) if isinstance(latest, str) else None

    def _read(self, *, private_only: bool = True) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return {"credentials": {}}
        except OSError as error:
            raise CredentialFileUnsafe(f"cannot read {self.path}: {error.strerror}") from None
        with os.fdopen(fd, "rb") as file:
            if private_only:
                self._check_private(os.fstat(file.fileno()), self.path, _FILE_MODE)
                self._check_private(os.stat(self.folder), self.folder, _FOLDER_MODE)
            raw = file.read()
        try:
            document = json.loads(raw)
        except ValueError:
            raise CredentialFileUnsafe(
                f"{self.path} is not a credentials file INFRACALC wrote; remove it and sign in again"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("credentials"), dict):
            raise CredentialFileUnsafe(
                f"{self.path} is not a credentials file INFRACALC wrote; remove it and sign in again"
            )
        return document

    @staticmethod
    def _check_private(status: os.stat_result, path: Path, mode: int) -> None:
        if hasattr(os, "getuid") and status.st_uid != os.getuid():
            raise CredentialFileUnsafe(f"{path} belongs to another user; INFRACALC does not use it")
        loose = stat.S_IMODE(status.st_mode) & ~mode
        if loose & 0o077:
            raise CredentialFileUnsafe(
                f"{path} can be read or changed by others (mode {stat.S_IMODE(status.st_mode):04o}): the sign-in in it"
                " may have leaked. Run `infracalc logout` (it revokes it and rewrites the file privately), then"
                " sign in again"
            )

    # -- writing -------------------------------------------------------------------------------

    def save(self, credential: Credential) -> None:
        """Keep ``credential`` (replacing the realm's previous one) and make it the latest."""
        document = self._read()
        document["credentials"][credential.issuer] = credential.to_json()
        document["latest"] = credential.issuer
        self._write(document)

    def remove(self, issuer: str) -> Credential | None:
        """Forget the realm's credential (whatever the file's mode: it is rewritten private); the one removed."""
        removed = self.load(issuer, private_only=False)
        document = self._read(private_only=False)
        if document["credentials"].pop(issuer, None) is None:
            return removed
        if document.get("latest") == issuer:
            document["latest"] = next(iter(document["credentials"]), None)
        self._write(document)
        return removed

    def _write(self, document: dict[str, Any]) -> None:
        self.folder.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask, and an existing folder keeps its own: set it.
        self.folder.chmod(_FOLDER_MODE)
        document["format"] = _FORMAT
        data = json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
        # mkstemp creates the file with mode 0600 before a byte is written.
        fd, temporary = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, _FILE_MODE)
            Path(temporary).replace(self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temporary).unlink()
            raise


__all__ = ["FILE_NAME", "Credential", "CredentialStore", "config_folder"]
