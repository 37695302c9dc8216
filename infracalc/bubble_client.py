"""What a bubble runs to reach the service with its own token: submitting an export (``infracalc export``).

The hub gives every bubble ``INFRACALC_API_URL`` (the service's ``/api/v1`` as the bubble reaches
it), ``INFRACALC_BUBBLE_TOKEN`` and ``INFRACALC_PROJECT`` (:func:`infracalc.hub.bubbles.bubble_environment`).
The file is streamed from disk as a ``multipart/form-data`` body (httpx reads it in 64 KiB chunks),
so memory stays flat whatever its size, and a progress callback sees every chunk leave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx

from infracalc.errors import InfracalcError

#: Called with (bytes sent so far, total bytes).
Progress = Callable[[int, int], None]


class ClientError(InfracalcError):
    """The bubble's environment is incomplete, or the service refused; the message says why."""


@dataclass(frozen=True, slots=True)
class BubbleSettings:
    """Where the service is and the bubble's credential, from the environment the hub set."""

    #: ``INFRACALC_API_URL``: the service's ``/api/v1``.
    api_url: str
    #: ``INFRACALC_BUBBLE_TOKEN``.
    token: str = field(repr=False)
    #: ``INFRACALC_PROJECT``.
    project: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BubbleSettings:
        """Read the bubble's settings.

        Raises:
            ClientError: a variable is missing (not inside a bubble).
        """
        env = os.environ if env is None else env
        names = ("INFRACALC_API_URL", "INFRACALC_BUBBLE_TOKEN", "INFRACALC_PROJECT")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ClientError(f"{', '.join(missing)} not set: run this inside a bubble started by the hub")
        return cls(
            api_url=env["INFRACALC_API_URL"].rstrip("/"),
            token=env["INFRACALC_BUBBLE_TOKEN"],
            project=env["INFRACALC_PROJECT"],
        )


class _Counted:
    """A file whose reads report progress; ``seek`` and ``tell`` let httpx size the body up front."""

    def __init__(self, stream: IO[bytes], total: int, progress: Progress | None) -> None:
        self._stream = stream
        self._total = total
        self._progress = progress
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._sent += len(data)
        if self._progress is not None and data:
            self._progress(self._sent, self._total)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def submit_export(
    settings: BubbleSettings,
    path: Path,
    *,
    justification: str,
    contributors: Path | None = None,
    export_id: str | None = None,
    progress: Progress | None = None,
    timeout: float = 600.0,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Upload ``path`` as an export of the bubble's project (or as a new version of ``export_id``).

    Returns:
        The service's answer: the export with its state and the checks' findings.

    Raises:
        ClientError: the file or the contributors cannot be read, the service cannot be reached, or it refused
            (its message).
    """
    if not path.is_file():
        raise ClientError(f"{path} is not a file")
    data = {"justification": justification}
    if contributors is not None:
        try:
            data["contributors"] = json.dumps(json.loads(contributors.read_text()))
        except (OSError, ValueError) as error:
            raise ClientError(f"cannot read the contributors from {contributors}: {error}") from None
    url = (
        f"{settings.api_url}/projects/{settings.project}/exports"
        if export_id is None
        else f"{settings.api_url}/exports/{export_id}/versions"
    )
    total = path.stat().st_size
    try:
        with path.open("rb") as stream, httpx.Client(timeout=timeout, transport=transport, trust_env=False) as client:
            answer = client.post(
                url,
                data=data,
                # httpx needs read() only (and seek/tell to size the body): the duck-typed file will do.
                files={
                    "file": (path.name, cast(IO[bytes], _Counted(stream, total, progress)), "application/octet-stream")
                },
                headers={"Authorization": f"Bearer {settings.token}"},
            )
    except httpx.HTTPError as error:
        raise ClientError(f"cannot reach the service at {settings.api_url}: {error}") from None
    body = _json(answer)
    if answer.status_code >= 400:  # noqa: PLR2004 - HTTP error statuses
        raise ClientError(f"the service refused the export ({answer.status_code}): {body.get('message', answer.text)}")
    return body


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def progress_bar(write: Callable[[str], None], width: int = 30) -> Progress:
    """A one-line progress bar (``write`` gets carriage-return lines, for stderr), redrawn at each whole percent."""
    shown: list[int] = []

    def show(sent: int, total: int) -> None:
        share = sent / total if total else 1.0
        percent = int(share * 100)
        if shown and shown[-1] == percent:
            return
        shown.append(percent)
        filled = int(share * width)
        write(f"\r[{'#' * filled}{'.' * (width - filled)}] {share:4.0%} {sent / 1e6:.1f}/{total / 1e6:.1f} MB")

    return show
