"""The local stack's mailbox: an SMTP server that delivers nothing and keeps every message for reading.

On a workstation there is no mail relay, yet enrollment sends two e-mails: the service's
invitation and Keycloak's link to its required actions (password, then TOTP). ``infracalc up``
therefore runs this mailbox and points both senders at it, so a person trying the platform reads
those e-mails at ``http://<host>:<INFRACALC_MAILBOX_PORT>/`` and follows their links, exactly as
they would from a real inbox. Production sends through a real relay (``INFRACALC_SMTP_*``).

Each message is written to ``<directory>/<received>-<n>.eml`` (mode 0600: an enrollment link is a
credential until it is used), so messages survive a restart of the mailbox. The web page lists
them newest first and shows one as plain text; it is bound to loopback like the rest of the stack.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import itertools
import os
import re
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

#: The largest message kept (enrollment mails are a few kilobytes).
MAX_MESSAGE_BYTES = 1024 * 1024
#: Messages listed on the page, newest first.
LISTED = 200
#: The name :meth:`Mailbox.deliver` gives a message (so no other file, and no path, can be read).
_MESSAGE_NAME = re.compile(r"\d{8}T\d{12}Z-\d+\.eml")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of the mailbox, as read back from its file."""

    #: The file's name, which is also the message's address on the page.
    name: str
    #: The parsed message.
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body (or the HTML one, tags and all, when there is no plain text)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())


class Mailbox:
    """The messages of one directory: delivery by the SMTP handler, reading by the page."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._numbers = itertools.count(1)

    def deliver(self, content: bytes) -> Path:
        """Keep ``content`` (a whole RFC 5322 message) in a new file readable by its owner only."""
        received = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{received}-{next(self._numbers)}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        return path

    def names(self) -> list[str]:
        """The stored messages' names, newest first."""
        return sorted((path.name for path in self.directory.glob("*.eml")), reverse=True)

    def read(self, name: str) -> StoredMessage | None:
        """The message called ``name``, or ``None`` when there is none (or the name is not one of ours)."""
        path = self.directory / name
        if not _MESSAGE_NAME.fullmatch(name) or not path.is_file():
            return None
        content = path.read_bytes()
        message = email.message_from_bytes(content, policy=email.policy.default)
        if not isinstance(message, EmailMessage):  # the default policy always builds EmailMessage
            return None
        return StoredMessage(name, message)


class _Delivery:
    """aiosmtpd's handler: accept any recipient, keep the message."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if len(content) > MAX_MESSAGE_BYTES:
            return "552 message too large for the local mailbox"
        self.mailbox.deliver(content)
        return "250 kept in the local mailbox"


def _page(title: str, body: str) -> web.Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>"
    )
    return web.Response(text=document, content_type="text/html", headers={"Cache-Control": "no-store"})


def web_app(mailbox: Mailbox) -> web.Application:
    """The page: ``/`` lists the messages, ``/messages/<name>`` shows one, ``/health`` answers 200."""

    async def index(_: web.Request) -> web.Response:
        rows = []
        for name in mailbox.names()[:LISTED]:
            stored = mailbox.read(name)
            if stored is None:
                continue
            message = stored.message
            subject = html.escape(str(message["Subject"] or "(no subject)"))
            rows.append(
                f'<li><a href="/messages/{html.escape(name)}">{subject}</a>'
                f" — to {html.escape(str(message['To'] or ''))}, {html.escape(str(message['Date'] or ''))}</li>"
            )
        listing = "<ul>" + "".join(rows) + "</ul>" if rows else "<p>No message yet.</p>"
        return _page("INFRACALC local mailbox", f"<h1>Local mailbox</h1>{listing}")

    async def show(request: web.Request) -> web.Response:
        stored = mailbox.read(request.match_info["name"])
        if stored is None:
            raise web.HTTPNotFound(text="no such message")
        message = stored.message
        headers = "".join(
            f"<dt>{field}</dt><dd>{html.escape(str(message[field] or ''))}</dd>"
            for field in ("From", "To", "Subject", "Date")
        )
        return _page(
            str(message["Subject"] or "message"),
            f'<p><a href="/">All messages</a></p><dl>{headers}</dl><pre>{html.escape(stored.text)}</pre>',
        )

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/messages/{name}", show), web.get("/health", health)])
    return app


async def serve(directory: Path, *, host: str, smtp_port: int, web_port: int) -> None:
    """Run the SMTP server and the page until SIGTERM or SIGINT."""
    mailbox = Mailbox(directory)
    smtp = Controller(_Delivery(mailbox), hostname=host, port=smtp_port, data_size_limit=MAX_MESSAGE_BYTES)
    smtp.start()
    runner = web.AppRunner(web_app(mailbox), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, web_port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        smtp.stop()
