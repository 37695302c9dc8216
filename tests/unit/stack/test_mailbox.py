"""The local stack's mailbox: a real SMTP exchange in, the page out, the files private."""

from __future__ import annotations

import asyncio
import smtplib
import stat
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest

from infracalc.stack.mailbox import Mailbox, serve
from infracalc.stack.ports import free_port
from infracalc.stack.process import http_ok

LINK = "http://127.0.0.1:8001/enroll/tok_abc"


def send(port: int, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "infracalc@infracalc.localhost"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[int, str, Path]]:
    smtp_port, web_port = free_port(), free_port()
    directory = tmp_path / "mailbox"
    task = asyncio.create_task(serve(directory, host="127.0.0.1", smtp_port=smtp_port, web_port=web_port))
    url = f"http://127.0.0.1:{web_port}"
    for _ in range(100):
        if await asyncio.to_thread(http_ok, f"{url}/health"):
            break
        await asyncio.sleep(0.05)
    yield smtp_port, url, directory
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_message_sent_is_kept_privately_and_shown(running: tuple[int, str, Path]) -> None:
    smtp_port, url, directory = running
    await asyncio.to_thread(send, smtp_port, "ada@example.org", "Invitation <INFRACALC>", f"Open {LINK}\n")
    (stored,) = directory.glob("*.eml")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/") as index:
            listing = await index.text()
        assert "Invitation &lt;INFRACALC&gt;" in listing  # escaped, not markup
        assert "ada@example.org" in listing
        async with http.get(f"{url}/messages/{stored.name}") as shown:
            assert shown.status == 200
            assert LINK in await shown.text()
        async with http.get(f"{url}/messages/..%2Fsecrets.json") as outside:
            assert outside.status == 404


async def test_messages_are_listed_newest_first_and_survive_a_restart(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path / "box")
    first = mailbox.deliver(b"Subject: one\r\nTo: a@example.org\r\n\r\nfirst\r\n")
    second = mailbox.deliver(b"Subject: two\r\nTo: a@example.org\r\n\r\nsecond\r\n")
    again = Mailbox(tmp_path / "box")
    assert again.names() == [second.name, first.name]
    message = again.read(first.name)
    assert message is not None
    assert message.text.strip() == "first"
    assert again.read("nope.eml") is None
