"""Submitting an export from inside a bubble (``infracalc export``): a streamed form, with progress.

The file goes to ``POST <api>/projects/<project>/exports`` (or ``<api>/exports/<id>/versions`` for
a new version) as ``multipart/form-data``, built on the fly: the form's head, then the file read in
64 KiB chunks, then its tail, with ``Content-Length`` computed up front. Memory stays flat whatever
the file's size, and the progress callback sees each chunk leave. Standard library only, like the
rest of :mod:`infracalc.bubble`. The project is ``INFRACALC_PROJECT``, which the hub sets.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from infracalc.bubble.client import BubbleClientError, BubbleSettings, DeliveryFailed, NotInABubble

#: ``INFRACALC_PROJECT`` (set by the hub): the bubble's project, where ``infracalc export`` sends files.
PROJECT_VARIABLE = "INFRACALC_PROJECT"
#: Bytes read from the file at a time.
CHUNK_SIZE = 64 * 1024
#: The longest error message kept from an answer.
_MESSAGE_LENGTH = 1000

#: Called with (bytes of the file sent so far, the file's size).
Progress = Callable[[int, int], None]


def bubble_project(environ: Mapping[str, str] | None = None) -> str:
    """The bubble's project (``INFRACALC_PROJECT``).

    Raises:
        NotInABubble: it is not set.
    """
    env = os.environ if environ is None else environ
    project = env.get(PROJECT_VARIABLE, "")
    if not project:
        raise NotInABubble(f"{PROJECT_VARIABLE} not set: not in an INFRACALC bubble")
    return project


def submit_export(
    settings: BubbleSettings,
    project: str,
    path: Path,
    *,
    justification: str,
    contributors: Path | None = None,
    export_id: str | None = None,
    progress: Progress | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Upload ``path`` as an export of ``project`` (or as a new version of ``export_id``).

    Returns:
        The service's answer: the export, its state and the checks' findings.

    Raises:
        BubbleClientError: the file or the contributors cannot be read.
        DeliveryFailed: the service refused (its message) or could not be reached.
    """
    if not path.is_file():
        raise BubbleClientError(f"{path} is not a file")
    fields = {"justification": justification}
    if contributors is not None:
        try:
            fields["contributors"] = json.dumps(json.loads(contributors.read_text()))
        except (OSError, ValueError) as error:
            raise BubbleClientError(f"cannot read the contributors from {contributors}: {error}") from None
    boundary = f"infracalc-{secrets.token_hex(16)}"
    head = b"".join(_field(boundary, name, value) for name, value in fields.items())
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_quoted(path.name)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    target = (
        f"/projects/{quote(project, safe='')}/exports"
        if export_id is None
        else f"/exports/{quote(export_id, safe='')}/versions"
    )
    request = urllib.request.Request(  # noqa: S310 - the URL is the service's, from the hub
        f"{settings.api_url}{target}",
        data=_body(head, path, tail, size, progress),
        headers={
            "Authorization": f"Bearer {settings.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            document = json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(error.code, f"the service refused the export ({error.code}): {_message(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryFailed(None, f"the service cannot be reached: {error}") from None
    return document if isinstance(document, dict) else {}


def _field(boundary: str, name: str, value: str) -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def _quoted(name: str) -> str:
    """The file name as browsers put it in a form (WHATWG HTML): UTF-8, line breaks and quotes percent-encoded."""
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _body(head: bytes, path: Path, tail: bytes, size: int, progress: Progress | None) -> Iterator[bytes]:
    yield head
    sent = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, size)
    yield tail


def _message(error: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(error.read() or b"null")
    except (ValueError, OSError):
        document = None
    message = document.get("message") if isinstance(document, dict) else None
    return str(message or error.reason)[:_MESSAGE_LENGTH]


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
