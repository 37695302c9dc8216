"""Outgoing e-mail: the settings of the SMTP relay, and sending one message without blocking the event loop.

The service mails invitations (remote enrollment) when ``INFRACALC_SMTP_HOST`` is set; without it,
staff hand the link over themselves. Sending uses the standard library's :mod:`smtplib` in a
worker thread: one message at a time is all invitations need. Passwords are never logged.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from infracalc.config import SettingError
from infracalc.errors import InfracalcError


class MailError(InfracalcError):
    """The SMTP relay could not be reached, or refused the message."""


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Where and how the service sends e-mail (``INFRACALC_SMTP_*``)."""

    #: ``INFRACALC_SMTP_HOST``: the relay's name or address.
    host: str
    #: ``INFRACALC_SMTP_PORT``: its port (default 587 with STARTTLS, else 25).
    port: int
    #: ``INFRACALC_SMTP_FROM``: the sender's address.
    sender: str
    #: ``INFRACALC_SMTP_STARTTLS``: upgrade the connection with STARTTLS (default true).
    starttls: bool = True
    #: ``INFRACALC_SMTP_USERNAME``: log in to the relay as this user (unset: no login).
    username: str | None = None
    #: ``INFRACALC_SMTP_PASSWORD``: the relay password.
    password: str | None = field(default=None, repr=False)
    #: ``INFRACALC_SMTP_TIMEOUT``: seconds to wait for the relay (default 10).
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MailSettings | None:
        """The settings in ``env``, or ``None`` when ``INFRACALC_SMTP_HOST`` is unset (no e-mail is sent).

        Raises:
            SettingError: a value is not usable.
        """
        host = env.get("INFRACALC_SMTP_HOST", "").strip()
        if not host:
            return None
        starttls_text = env.get("INFRACALC_SMTP_STARTTLS", "true").strip().lower()
        if starttls_text not in {"true", "false", "1", "0", "yes", "no"}:
            raise SettingError(f"INFRACALC_SMTP_STARTTLS must be true or false, not {starttls_text!r}")
        starttls = starttls_text in {"true", "1", "yes"}
        try:
            port = int(env.get("INFRACALC_SMTP_PORT", "587" if starttls else "25"))
            timeout = float(env.get("INFRACALC_SMTP_TIMEOUT", "10"))
        except ValueError as error:
            raise SettingError(f"INFRACALC_SMTP_PORT and INFRACALC_SMTP_TIMEOUT must be numbers: {error}") from None
        sender = env.get("INFRACALC_SMTP_FROM", "").strip()
        if "@" not in sender:
            raise SettingError(
                "INFRACALC_SMTP_FROM must be the sender's e-mail address when INFRACALC_SMTP_HOST is set"
            )
        return cls(
            host=host,
            port=port,
            sender=sender,
            starttls=starttls,
            username=env.get("INFRACALC_SMTP_USERNAME") or None,
            password=env.get("INFRACALC_SMTP_PASSWORD") or None,
            timeout=timeout,
        )


def send_now(settings: MailSettings, message: EmailMessage) -> None:
    """Send ``message`` through the relay (blocking); ``From`` is set from the settings when missing.

    Raises:
        MailError: the relay could not be reached or refused the message.
    """
    if "From" not in message:
        message["From"] = settings.sender
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username is not None:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise MailError(f"the SMTP relay {settings.host}:{settings.port} did not take the message: {error}") from error


async def send(settings: MailSettings, message: EmailMessage) -> None:
    """:func:`send_now` in a worker thread."""
    await asyncio.to_thread(send_now, settings, message)
