"""Imports from the console against ``infracalc serve`` as a process: a stream in bounded memory, and the refusals.

The console's route takes the file as the raw body of one request, signed in by the session cookie
and guarded by the CSRF header; in-process test clients buffer bodies, so the stream goes to a
real server over a socket, and the server's memory is watched while it arrives. The file is larger
than the memory the service may grow by, so whole-file buffering fails the test; 1 GiB (the issue's
figure) was measured once the same way: 24.5 s, the service 42 MiB above idle (``bench/README.md``).
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import requests

from tests.fixtures.live_service import LiveService
from tests.fixtures.servers import S3Server
from tests.fixtures.service import People
from tests.integration.service.test_imports_live import make_project, store_of
from tests.support.console_session import open_console_session

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: What the service may grow by while a file streams through it: five 8 MiB part buffers and change.
MEMORY_BOUND = 160 * MIB
#: The streamed file: well above the bound, so that buffering it whole cannot pass, and quick to send.
STREAMED = 256 * MIB


class GeneratedFile:
    """``size`` bytes made as they are read (a text head, then one random MiB over and over), hashed on the way."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sha256 = hashlib.sha256()
        block = bytearray(random_block())
        block[:32] = b"INFRACALC generated test data\n\n"
        self._block = bytes(block)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while left:
            chunk = self._block[: min(left, len(self._block))]
            self.sha256.update(chunk)
            left -= len(chunk)
            yield chunk


def random_block() -> bytes:
    return hashlib.shake_256(b"infracalc").digest(MIB)


class PeakMemory:
    """The resident memory of a process, sampled every 50 ms in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def console(live: LiveService, people: People, who: str, *, lang: str = "fr") -> requests.Session:
    """A browser-like client of the console: ``who``'s session cookie, the CSRF cookie, a language."""
    browser = requests.Session()
    browser.cookies.set("infracalc_session", await open_console_session(live.database_url, people, who))
    browser.cookies.set("infracalc_lang", lang)
    assert browser.get(f"{live.url}/", timeout=30).status_code == 200  # sets the CSRF cookie
    return browser


def upload(browser: requests.Session, live: LiveService, project: str, name: str, body: Any) -> requests.Response:
    return browser.post(
        f"{live.url}/projects/{project}/imports",
        params={"name": name},
        data=body,
        headers={"Content-Type": "application/octet-stream", "X-CSRFToken": browser.cookies["infracalc_csrf"]},
        timeout=600,
    )


def audit(live: LiveService, people: People) -> list[dict[str, Any]]:
    answer = requests.get(f"{live.api}/audit", headers=people.headers("staff"), timeout=30)
    assert answer.status_code == 200, answer.text
    return [event for event in answer.json()["events"] if event["action"].startswith("import.")]


async def test_a_member_streams_a_large_file_through_the_console_in_bounded_memory(
    live_service: LiveService, people: People, s3: S3Server
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    browser = await console(live_service, people, "researcher")
    body = GeneratedFile(STREAMED)

    with PeakMemory(live_service.process.pid) as memory:
        answer = upload(browser, live_service, "cohort", "survey.bin", body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["state"] == "in_review"
    assert created["location"] == f"/projects/cohort?done=imported_in_review&subject=survey.bin#import-{created['id']}"
    assert created["message"] == "survey.bin est importé : il attend la relecture du personnel du CASD."
    grown = memory.peak - memory.start
    print(f"service memory: {memory.start / MIB:.0f} MiB, peak {memory.peak / MIB:.0f} MiB (+{grown / MIB:.0f} MiB)")
    assert grown < MEMORY_BOUND

    listed = requests.get(
        f"{live_service.api}/projects/cohort/imports", headers=people.headers("researcher"), timeout=30
    ).json()
    assert [(row["id"], row["size"], row["sha256"], row["uploaded_by"]) for row in listed] == [
        (created["id"], STREAMED, body.sha256.hexdigest(), people.username("researcher"))
    ]
    [event] = audit(live_service, people)
    assert (event["action"], event["actor"], event["details"]["size"]) == (
        "import.create",
        people.username("researcher"),
        STREAMED,
    )
    # The project page lists it with its state.
    page = browser.get(f"{live_service.url}{created['location']}", timeout=30)
    assert f'id="import-{created["id"]}"' in page.text
    assert "survey.bin est importé" in page.text
    # Rejecting it deletes the file again.
    rejected = requests.post(
        f"{live_service.api}/imports/{created['id']}/reject",
        json={"comment": "test data"},
        headers=people.headers("staff"),
        timeout=60,
    )
    assert rejected.status_code == 200, rejected.text
    assert await store_of(live_service, s3).keys("") == []


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    return buffer.getvalue()


async def test_console_uploads_are_refused_in_the_page_language_and_leave_nothing(
    live_service: LiveService, people: People, s3: S3Server
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    store = store_of(live_service, s3)
    french = await console(live_service, people, "researcher", lang="fr")

    # An archive: refused with the reason in French, audited once, nothing stored.
    answer = upload(french, live_service, "cohort", "data.zip", zip_bytes())
    assert answer.status_code == 415
    assert answer.json()["kind"] == "archive"
    assert answer.json()["message"].startswith("les archives ne sont pas acceptées : importez les fichiers eux-mêmes")
    [refusal] = audit(live_service, people)
    assert (refusal["action"], refusal["details"]["reason"]) == ("import.refuse", "archive")
    assert await store.keys("") == []
    assert await store.pending_uploads() == []

    # In English, the same check words it in English; a bad name is refused before the body is read.
    english = await console(live_service, people, "researcher", lang="en")
    answer = upload(english, live_service, "cohort", "../etc/passwd", b"x")
    assert answer.status_code == 422
    assert answer.json()["message"] == (
        "the file name '../etc/passwd' holds a path separator (/ or \\): give the file's name only"
    )

    # Without the CSRF header (another site's form or script): 403, nothing recorded.
    events = audit(live_service, people)
    forged = english.post(
        f"{live_service.url}/projects/cohort/imports",
        params={"name": "a.csv"},
        data=b"a,b\n",
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert forged.status_code == 403
    # Without a session: a JSON answer the page's script can show (no redirect to a login page it cannot follow).
    anonymous = requests.Session()
    anonymous.cookies.set("infracalc_csrf", english.cookies["infracalc_csrf"])
    answer = anonymous.post(
        f"{live_service.url}/projects/cohort/imports",
        params={"name": "a.csv"},
        data=b"a,b\n",
        headers={"Content-Type": "application/octet-stream", "X-CSRFToken": english.cookies["infracalc_csrf"]},
        timeout=30,
    )
    assert answer.status_code == 401
    assert answer.json()["message"].startswith("Votre session a pris fin")
    # Someone outside the project: the policy's reason, in French.
    outsider = await console(live_service, people, "outsider", lang="fr")
    answer = upload(outsider, live_service, "cohort", "a.csv", b"a,b\n")
    assert answer.status_code == 403
    assert answer.json()["message"] == (
        "seuls les membres du projet cohort et le personnel du CASD peuvent y importer des fichiers"
    )
    assert audit(live_service, people) == events
    assert await store.keys("") == []
