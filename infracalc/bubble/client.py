"""The INFRACALC service as a bubble reaches it, with the bubble's own token.

The hub gives each bubble ``INFRACALC_API_URL`` (the service's ``/api/v1``), ``INFRACALC_BUBBLE_TOKEN``
(``ibt_<bubble id>_<secret>``, sent as ``Authorization: Bearer``, as :mod:`infracalc.service.auth`
expects) and ``INFRACALC_BUBBLE_ID``. Standard library only (``urllib``): this module is imported
inside researchers' kernels. Proxies come from the environment like every client of the bubble;
the hub lists the service in ``NO_PROXY``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from infracalc.errors import InfracalcError

#: ``INFRACALC_API_URL`` (set by the hub): the service's ``/api/v1`` as the bubble reaches it.
API_URL_VARIABLE = "INFRACALC_API_URL"
#: ``INFRACALC_BUBBLE_TOKEN`` (set by the hub): the bubble's own credential with the service (``ibt_...``).
TOKEN_VARIABLE = "INFRACALC_BUBBLE_TOKEN"  # noqa: S105 - a variable name, not a secret
#: ``INFRACALC_BUBBLE_ID`` (set by the hub): the bubble's id, which is also its session's.
BUBBLE_ID_VARIABLE = "INFRACALC_BUBBLE_ID"
#: Bubble tokens read ``ibt_<bubble id>_<secret>``.
_TOKEN_PREFIX = "ibt_"  # noqa: S105 - a prefix, not a secret
#: The longest error message kept from an answer.
_MESSAGE_LENGTH = 300


class BubbleClientError(InfracalcError):
    """Root of the bubble client's errors."""


class NotInABubble(BubbleClientError):
    """The environment lacks what a bubble is given (this process does not run in a bubble)."""


class DeliveryFailed(BubbleClientError):
    """The service refused a request or could not be reached; ``status`` is ``None`` when unreachable."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def worth_retrying(self) -> bool:
        """Unreachable, overloaded or failing (5xx, 429): the same request may succeed later; a refusal will not."""
        return self.status is None or self.status == 429 or self.status >= 500  # noqa: PLR2004


@dataclass(frozen=True, slots=True)
class BubbleSettings:
    """Where the service is, and who this bubble is."""

    api_url: str
    bubble_id: str
    token: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BubbleSettings:
        """The settings the hub put in the bubble's environment.

        Raises:
            NotInABubble: ``INFRACALC_API_URL`` or ``INFRACALC_BUBBLE_TOKEN`` is missing.
        """
        env = os.environ if environ is None else environ
        missing = [name for name in (API_URL_VARIABLE, TOKEN_VARIABLE) if not env.get(name)]
        if missing:
            raise NotInABubble(f"{' and '.join(missing)} not set: not in an INFRACALC bubble")
        token = env[TOKEN_VARIABLE]
        bubble_id = env.get(BUBBLE_ID_VARIABLE) or token.removeprefix(_TOKEN_PREFIX).partition("_")[0]
        return cls(api_url=env[API_URL_VARIABLE].rstrip("/"), bubble_id=bubble_id, token=token)


class BubbleClient:
    """Calls to the service with the bubble's token; each call is one short HTTP request."""

    def __init__(self, settings: BubbleSettings, *, timeout: float = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"BubbleClient({self.settings.api_url!r}, bubble={self.settings.bubble_id!r})"

    def post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON to ``<api>/<path>``; the answer's JSON (``None`` when empty).

        Raises:
            DeliveryFailed: the service answered an error (its message), or could not be reached.
        """
        request = urllib.request.Request(  # noqa: S310 - the URL is the service's, from the hub
            f"{self.settings.api_url}{path}",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {self.settings.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raise DeliveryFailed(error.code, f"the service answered {error.code}: {_message(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise DeliveryFailed(None, f"the service cannot be reached: {error}") from None
        return json.loads(raw) if raw else None

    def record_code(self, cells: Sequence[Mapping[str, Any]]) -> int:
        """Add ``cells`` (see ``POST /sessions/{id}/code``) to this bubble's session; how many were recorded."""
        answer = self.post_json(f"/sessions/{quote(self.settings.bubble_id, safe='')}/code", {"cells": list(cells)})
        return int(answer["recorded"]) if isinstance(answer, dict) else 0


def _message(error: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(error.read() or b"null")
    except (ValueError, OSError):
        document = None
    message = document.get("message") if isinstance(document, dict) else None
    return str(message or error.reason)[:_MESSAGE_LENGTH]
