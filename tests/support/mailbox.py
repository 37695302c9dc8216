"""A local SMTP server for tests: every message it receives, kept in memory and awaited by recipient."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from infracalc.mail import MailSettings
from infracalc.stack.ports import free_port


@dataclass
class Mailbox:
    """Every message the local SMTP server received, by recipient."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for ``address`` so far, oldest first."""
        with self._arrived:
            return [m for m in self.messages if address.lower() in str(m.get("To", "")).lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until ``address`` received ``count`` messages; return them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [m for m in self.messages if address.lower() in str(m.get("To", "")).lower()]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{address} received {len(found)} messages, expected {count}")
                self._arrived.wait(left)


def text_of(message: EmailMessage) -> str:
    """The plain-text body of ``message``."""
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None, "a message without a body"
    return str(part.get_content())


@contextmanager
def running_mailbox() -> Iterator[Mailbox]:
    """A mailbox listening on a free loopback port, for the duration of the block."""
    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def keycloak_mail(box: Mailbox) -> MailSettings:
    """How the test realm's Keycloak sends its e-mails: to ``box``, plain SMTP."""
    return MailSettings(host=box.host, port=box.port, sender="keycloak@infracalc.test", starttls=False)
