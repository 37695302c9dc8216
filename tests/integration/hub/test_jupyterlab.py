"""A researcher's day in the bubble, in a real browser: Debian's Chromium driven by Playwright.

Every part is real: Keycloak's forms, JupyterHub with its proxy, the service, OPA, the egress proxy,
the bubble in its own network namespace running JupyterLab, and the namespace lab's upstream servers
standing for the internet. The researcher signs in (password, one-time code), starts the bubble of a
project from the hub's spawn page and JupyterLab loads; the welcome notebook runs whole; a new
notebook calls an approved host through the egress proxy (it answers) and a host the project was not
approved for (403, with the proxy's reason); the cells are in the session's timeline; after the
project moves to CASD governance, ``infracalc export`` typed in a JupyterLab terminal puts the
notebook's CSV in CASD staff's review queue. A screenshot of the page is kept under
test-artifacts/screenshots/ (always for the terminal; for every page when the test fails).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.fixtures.hub import HubUnderTest
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People
from tests.integration.hub.test_hub_end_to_end import approve_host, call, project
from tests.support import jupyterlab
from tests.support.doc_screenshots import doc_screenshot_one_language
from tests.support.netns import Lab
from tests.support.one_time_codes import one_time_code

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"

APPROVED_CALL = """import ssl, httpx
context = ssl.create_default_context(cafile={cafile!r})
answer = httpx.get("https://api.allowed.test/anything/forecast", verify=context, timeout=20)
print("ANSWER", answer.status_code, answer.json()["server"], answer.json()["path"])
"""

REFUSED_CALL = """from infracalc.bubble.egress import ask_proxy
try:
    httpx.get("https://api.other.test/anything", verify=context, timeout=20)
except httpx.ProxyError as error:
    print("REFUSED", error, "|", ask_proxy("https://api.other.test/anything"))
"""

#: The guides' pictures this test takes (JupyterLab is in English only: the same picture in both languages).
PICTURES = ("jupyterlab-welcome", "jupyterlab-egress", "jupyterlab-export")

EXPORT = 'infracalc export summary.csv --justification "Mean income by region, for the project report."'


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Page]:
    reason = jupyterlab.chromium_missing()
    if reason is not None:
        pytest.skip(reason)
    with jupyterlab.chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        opened = context.new_page()
        yield opened
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        context.close()


def wait_for(what: str, probe: Any, timeout: float = 30.0) -> Any:
    """``probe()``'s first true answer, polled every 0.5 s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)


def test_a_researcher_works_in_jupyterlab_calls_out_through_the_proxy_and_exports_from_a_terminal(
    hub: HubUnderTest, live_service: LiveService, lab: Lab, people: People, page: Page
) -> None:
    api, staff = live_service.api, people.headers("staff")
    slug = project(live_service, people, "INFRACALC")
    approve_host(live_service, people, slug, "api.allowed.test")
    account = people.accounts["researcher"]
    username = people.username("researcher")

    jupyterlab.sign_in(page, hub.url, account.username, account.password, one_time_code(people, "researcher"))
    jupyterlab.start_bubble(page, hub.url, username, slug)
    assert page.url.startswith(f"{hub.url}/user/{username}/{slug}/lab")
    server = f"{hub.url}/user/{username}/{slug}"
    # JupyterLab fetches nothing from the internet: no news feed, no update check.
    assert page.request.get(f"{server}/lab/api/news").json() == {"news": []}
    assert page.request.get(f"{server}/lab/api/update").json()["notification"] is None

    # The welcome notebook is in the bubble's folder, and every one of its cells works.
    welcome = jupyterlab.open_notebook(page, server, "Welcome.ipynb")
    outputs = jupyterlab.run_all_cells(page, welcome)
    assert f"project: {slug}" in outputs[0]
    assert "egress proxy set: True" in outputs[0]
    assert "api.example.org:443 refused (403)" in outputs[1], outputs[1]
    assert "0 imports" in outputs[2]
    assert "No released CSV import yet." in outputs[3]
    assert "households" in outputs[4]
    assert "mean_income" in outputs[4]
    doc_screenshot_one_language(page, "jupyterlab-welcome")

    # A new notebook: an approved host answers through the proxy; another is refused, with the reason.
    notebook = jupyterlab.new_notebook(page)
    answered = jupyterlab.run_cell(page, notebook, APPROVED_CALL.format(cafile=str(lab.ca_path)), "ANSWER")
    assert "ANSWER 200 upstream-a /anything/forecast" in answered
    refused = jupyterlab.run_cell(page, notebook, REFUSED_CALL, "REFUSED")
    checked = call("GET", f"{api}/projects/{slug}/egress/check", staff, params={"url": "https://api.other.test/"})
    assert checked["allow"] is False
    assert "403" in refused
    assert f"api.other.test:443 refused (403): {checked['reason']}" in refused
    doc_screenshot_one_language(page, "jupyterlab-egress")

    # The cells are in the session's timeline, the welcome notebook's and the new notebook's.
    created = call("GET", f"{api}/audit", staff, params={"project": slug, "action": "bubble.create"})
    bubble_id = created["events"][0]["details"]["bubble"]

    def recorded() -> list[str]:
        session = call("GET", f"{api}/sessions/{bubble_id}", staff)
        sources = [event["details"].get("source", "") for event in session["events"] if event["kind"] == "code.cell"]
        wanted = ("api.allowed.test", "api.other.test", 'os.environ["INFRACALC_PROJECT"]')
        return sources if all(any(word in source for source in sources) for word in wanted) else []

    wait_for("the cells in the session", recorded)

    # Under CASD governance every export waits for staff: the terminal's export lands in their queue.
    call("PUT", f"{api}/projects/{slug}/governance", staff, json={"owner": "CASD", "reason": "sensitive data arrives"})
    terminal = jupyterlab.type_in_terminal(page, EXPORT)

    def queued() -> list[dict[str, Any]]:
        queue = call("GET", f"{api}/exports", staff)
        return [export for export in queue if export["project"] == slug]

    (export,) = wait_for("the export in the review queue", queued)
    assert (export["name"], export["state"], export["session"]) == ("summary.csv", "in_review", bubble_id)
    assert export["requested_by"] == username
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    terminal.screenshot(path=str(SCREENSHOTS / "jupyterlab-terminal-export.png"))
    doc_screenshot_one_language(page, "jupyterlab-export")

    log = hub.log_path.read_text()
    assert "Found no extension with a default URL" not in log
