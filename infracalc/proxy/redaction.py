"""Keeping credentials out of everything the proxy writes: answers, log lines, metrics and reported events.

A bubble's client may put its credentials where they do not belong: in the request target
(``GET http://<id>:<token>@host/``), in a path or query, in a header that the proxy quotes back. The
parser never quotes a request target's userinfo (:func:`infracalc.proxy.wire.parse_authority`
refuses it without echoing), and every text the proxy sends out from a request passes through
:func:`redact`, which replaces what has the form of a bubble token (``ibt_...``) or of a proxy
secret (``iep_...``) with a marker. The logging filter :class:`RedactingFilter` does the same for
every log line, whoever wrote it.
"""

from __future__ import annotations

import logging
import re

from infracalc.identity import bubble_tokens, proxy_secret

#: What replaces a credential.
MARKER = "<redacted>"
#: A bubble token or proxy secret, whole or cut, as written or percent-encoded (its prefix, then
#: the hex, separators and escapes that follow).
_CREDENTIAL = re.compile(r"(?i)(?:ibt|iep)(?:_|%5f)[0-9a-z_%-]*")
#: What every credential starts with, lowercase, as written or percent-encoded.
_PREFIXES = tuple(
    prefix.lower().replace("_", separator)
    for prefix in (bubble_tokens.PREFIX, proxy_secret.PREFIX)
    for separator in ("_", "%5f")
)


def redact(text: str) -> str:
    """``text`` with every bubble token and proxy secret replaced by ``<redacted>``."""
    lowered = text.lower()
    if not any(prefix in lowered for prefix in _PREFIXES):
        return text  # the usual case, at the cost of a few searches
    return _CREDENTIAL.sub(MARKER, text)


def redact_optional(text: str | None) -> str | None:
    """:func:`redact`, letting ``None`` through."""
    return None if text is None else redact(text)


class RedactingFilter(logging.Filter):
    """A filter for log handlers: the formatted message of each record, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text; never drop a record."""
        # Formatted once here; the handler's formatter then finds the text ready.
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info is not None and record.exc_text is None and record.exc_info[0] is not None:
            # A traceback may quote a request's text: format it now, redacted, and keep only that.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
