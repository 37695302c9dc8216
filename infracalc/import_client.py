"""The client side of an import: stream a local file to the service, reporting progress.

Used by ``infracalc import``. The file is sent as it is read, in 1 MiB blocks, with its length
declared (so the service refuses a file over its cap before a byte is sent): memory stays flat
whatever the file's size. Standard library only (``http.client``), so the command works in a
bubble image or on a workstation with nothing else installed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from infracalc.errors import InfracalcError

#: Bytes read and sent at a time.
BLOCK = 1024 * 1024
#: Seconds a connection may stay silent (the service checks and stores the file before it answers).
TIMEOUT = 600.0


class UploadFailed(InfracalcError):
    """The service refused the file, or could not be reached; the message says why."""


def upload_file(
    api: str,
    token: str,
    project: str,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """Import ``path`` into ``project`` through the service at ``api`` (``https://host/api/v1``).

    Args:
        api: the API's base URL.
        token: a bearer credential (a person's access token).
        project: the project's id.
        path: the file; its name is the import's name.
        progress: called with the number of bytes just sent, after each block.
        timeout: seconds the connection may stay silent.

    Returns:
        The service's answer: the import (id, state, sha256...).

    Raises:
        UploadFailed: the file cannot be read, the service cannot be reached, or it refused the file.
    """
    try:
        size = path.stat().st_size
        file = path.open("rb")
    except OSError as error:
        raise UploadFailed(f"cannot read {path}: {error.strerror}") from None
    parts = urlsplit(api.rstrip("/"))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UploadFailed(f"--api must be an http(s) URL such as https://infracalc.example/api/v1, not {api!r}")
    target = f"{parts.path}/projects/{quote(project, safe='')}/imports?name={quote(path.name, safe='')}"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    with file, contextlib.closing(connection):
        try:
            connection.putrequest("POST", target)
            connection.putheader("Authorization", f"Bearer {token}")
            connection.putheader("Content-Type", "application/octet-stream")
            connection.putheader("Content-Length", str(size))
            connection.putheader("Accept", "application/json")
            connection.endheaders()
            try:
                while block := file.read(BLOCK):
                    connection.send(block)
                    if progress is not None:
                        progress(len(block))
            except (BrokenPipeError, ConnectionResetError):
                # The service refused early (a name, a cap) and closed: its answer says why.
                pass
            answer = connection.getresponse()
            body = answer.read()
        except OSError as error:
            raise UploadFailed(f"cannot reach the service at {api}: {error}") from None
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {}
    if answer.status != HTTPStatus.CREATED or not isinstance(document, dict):
        message = document.get("message") if isinstance(document, dict) else None
        raise UploadFailed(
            f"the service refused the import ({answer.status}): {message if message else repr(body[:200])}"
        )
    return document


__all__ = ["UploadFailed", "upload_file"]
