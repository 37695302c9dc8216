"""The whole door, every part real: Keycloak's forms, JupyterHub with its proxy, the service, OPA, the egress
proxy, and a bubble in its own network namespace running a kernel.

A researcher signs in with password and one-time code, starts the bubble of a project, and code in
the bubble's kernel calls an allowlisted test API (it answers), another one (the proxy refuses)
and a direct address (unreachable). CASD staff switch the project to CASD: the same call is
refused. The researcher stops the bubble; its session holds the hub's and the proxy's events, and
the audit log verifies. A sign-in without the second factor gets no hub session, and a member of a
CASD project without registered networks is refused with a page that says why.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.fixtures.hub import HubUnderTest
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People
from tests.support.hub_browser import HubApi, HubBrowser, run_code
from tests.support.netns import Lab, Namespace

pytestmark = pytest.mark.integration

JUSTIFICATION = "The weather API feeds the model's daily inputs."

CALLS = """
import json, socket, ssl, urllib.error, urllib.request
context = ssl.create_default_context(cafile={cafile!r})
def call(url):
    try:
        return urllib.request.urlopen(url, context=context, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code
    except Exception as error:
        return repr(error)
def direct():
    try:
        socket.create_connection(("10.231.200.2", 443), timeout=3).close()
        return "connected"
    except OSError as error:
        return repr(error)
print(json.dumps({{
    "allowed": call("https://api.allowed.test/anything/forecast"),
    "other": call("https://api.other.test/anything"),
    "direct": direct(),
}}))
"""


def call(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
    answer = requests.request(method, url, headers=headers, timeout=30, **kwargs)
    assert answer.status_code < 300, (method, url, answer.status_code, answer.text)
    return answer.json() if answer.content else None


def sign_in(hub: HubUnderTest, keycloak: KeycloakServer, people: People, who: str) -> HubBrowser:
    browser = HubBrowser(hub.url, keycloak.base_url)
    account = people.accounts[who]
    browser.login(account.username, account.password, people.fresh_code(who))
    return browser


def project(live_service: LiveService, people: People, governance: str) -> str:
    """A new project with the lead and the researcher as members."""
    api, staff = live_service.api, people.headers("staff")
    slug = f"hub-{secrets.token_hex(3)}"
    call("POST", f"{api}/projects", staff, json={"id": slug, "title": "Weather", "governance": governance})
    call("PUT", f"{api}/projects/{slug}/members/{people.username('lead')}", staff, json={"role": "lead"})
    call("PUT", f"{api}/projects/{slug}/members/{people.username('researcher')}", staff, json={"role": "member"})
    return slug


def approve_host(live_service: LiveService, people: People, slug: str, host: str) -> None:
    """The project's lead asks for ``host``; CASD staff approve it."""
    api = live_service.api
    # A tunnel rule: the bubble checks the lab's upstream certificate itself (inspection: proxy/ tests).
    body = {"host": host, "mode": "tunnel", "justification": JUSTIFICATION}
    asked = call("POST", f"{api}/projects/{slug}/egress-requests", people.headers("lead"), json=body)
    call("POST", f"{api}/egress-requests/{asked['id']}/approve", people.headers("staff"), json={"comment": "approved"})


def project_allowing(live_service: LiveService, people: People, host: str) -> str:
    """A new INFRACALC project (see :func:`project`) whose lead asked for ``host``, approved by CASD staff."""
    slug = project(live_service, people, "INFRACALC")
    approve_host(live_service, people, slug, host)
    return slug


def started_bubble(hub: HubUnderTest, keycloak: KeycloakServer, people: People, slug: str) -> tuple[HubApi, str, str]:
    """The researcher signs in and starts their bubble of ``slug``: the hub's API, their username and API token."""
    browser = sign_in(hub, keycloak, people, "researcher")
    username = people.username("researcher")
    token = browser.api_token(username)
    hub_api = HubApi(hub.url, token)
    assert hub_api.start(username, slug).status_code in (201, 202)
    hub_api.wait_ready(username, slug)
    return hub_api, username, token


def test_sign_in_start_a_bubble_call_out_switch_to_casd_and_stop(
    hub: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, lab: Lab, people: People
) -> None:
    api, staff = live_service.api, people.headers("staff")
    slug = project_allowing(live_service, people, "api.allowed.test")

    browser = sign_in(hub, keycloak, people, "researcher")
    assert browser.signed_in()
    username = people.username("researcher")
    spawn_page = browser.session.get(f"{hub.url}/hub/spawn/{username}/{slug}", timeout=30)
    assert spawn_page.status_code == 200
    assert slug in spawn_page.text
    assert "INFRACALC" in spawn_page.text  # each project shows its governance owner
    token = browser.api_token(username)
    hub_api = HubApi(hub.url, token)
    strangers = f"hub-{secrets.token_hex(3)}"
    call("POST", f"{api}/projects", staff, json={"id": strangers, "title": "Not theirs", "governance": "INFRACALC"})
    refused = hub_api.start(username, strangers)
    assert refused.status_code == 403, refused.text
    assert f"You are not a member of project {strangers}" in refused.json()["message"]
    started = hub_api.start(username, slug)
    assert started.status_code in (201, 202), started.text
    hub_api.wait_ready(username, slug)
    server = f"{hub.url}/user/{username}/{slug}"

    results = json.loads(run_code(server, token, CALLS.format(cafile=str(lab.ca_path))))
    assert results["allowed"] == 200, results
    assert "403" in str(results["other"]), results
    assert "unreachable" in str(results["direct"]).lower(), results

    call("PUT", f"{api}/projects/{slug}/governance", staff, json={"owner": "CASD", "reason": "sensitive data arrives"})
    time.sleep(0.5)  # the proxy re-reads the project's revision every 0.2 s
    after = json.loads(run_code(server, token, CALLS.format(cafile=str(lab.ca_path))))
    assert "403" in str(after["allowed"]), after

    assert hub_api.stop(username, slug).status_code in (202, 204)
    hub_api.wait_stopped(username, slug)

    created = call("GET", f"{api}/audit", staff, params={"project": slug, "action": "bubble.create"})
    bubble_id = created["events"][0]["details"]["bubble"]
    deadline = time.monotonic() + 10
    while True:
        session = call("GET", f"{api}/sessions/{bubble_id}", staff)
        kinds = [event["kind"] for event in session["events"]]
        if session["closed_at"] is not None and "egress.connection.deny" in kinds:
            break
        assert time.monotonic() < deadline, kinds
        time.sleep(0.3)
    assert kinds[0] == "session.open"
    assert {"hub.login", "hub.spawn", "hub.stop", "egress.connection.allow", "egress.connection.deny"} <= set(kinds)
    # The kernel's cells are in the session too (infracalc.bubble.ipython: batched, sent at the latest at kernel exit).
    assert sum("api.allowed.test" in e["details"].get("source", "") for e in session["events"]) == 2, kinds
    (login,) = [event for event in session["events"] if event["kind"] == "hub.login"]
    assert login["details"]["acr"] == "mfa"
    assert isinstance(login["details"]["auth_time"], int)
    assert call("GET", f"{api}/audit/verify", staff)["ok"] is True


def test_a_sign_in_without_the_second_factor_gets_no_hub_session(
    hub: HubUnderTest, keycloak: KeycloakServer, people: People
) -> None:
    browser = HubBrowser(hub.url, keycloak.base_url)
    account = people.accounts["outsider"]
    page = browser.login(account.username, account.password, otp=None)
    assert page.keycloak is not None
    assert page.keycloak.kind == "otp"
    assert not browser.signed_in()


def test_a_casd_project_member_without_registered_networks_is_refused_with_a_clear_page(
    hub: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, people: People
) -> None:
    project(live_service, people, "CASD")
    browser = HubBrowser(hub.url, keycloak.base_url)
    account = people.accounts["researcher"]
    page = browser.login(account.username, account.password, people.fresh_code("researcher"))
    assert page.status == 403, (page.url, page.status, page.text[:500])
    # No Accept-Language: French, the platform's default, with the way to the console's networks section.
    assert '<html lang="fr">' in page.text
    assert "enregistrez d&#x27;abord le réseau depuis lequel vous vous connectez" in page.text
    assert f'href="{live_service.url}/?lang=fr#networks-heading"' in page.text
    assert not browser.signed_in()


def test_without_isolation_a_bubble_is_a_plain_process_and_the_hub_says_egress_is_not_enforced(
    hub_without_isolation: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, people: People
) -> None:
    hub = hub_without_isolation
    slug = project(live_service, people, "INFRACALC")
    hub_api, username, token = started_bubble(hub, keycloak, people, slug)
    code = (
        "import os, socket; print(os.environ['INFRACALC_PROJECT'], 'HTTPS_PROXY' in os.environ, socket.gethostname())"
    )
    project_name, has_proxy, _ = run_code(f"{hub.url}/user/{username}/{slug}", token, code).split()
    assert (project_name, has_proxy) == (slug, "True")  # the proxy environment is still set
    assert "egress is NOT enforced" in hub.log_path.read_text()
    assert hub_api.stop(username, slug).status_code in (202, 204)


def test_an_idle_bubble_is_stopped_by_the_culler_and_its_session_closed(
    hub_culling_after_10s: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, people: People
) -> None:
    hub = hub_culling_after_10s
    slug = project(live_service, people, "INFRACALC")
    hub_api, username, _ = started_bubble(hub, keycloak, people, slug)
    hub_api.wait_stopped(username, slug, timeout=90)  # nobody uses it: culled after 10 s idle
    staff = people.headers("staff")
    created = call("GET", f"{live_service.api}/audit", staff, params={"project": slug, "action": "bubble.create"})
    bubble_id = created["events"][0]["details"]["bubble"]
    session = call("GET", f"{live_service.api}/sessions/{bubble_id}", staff)
    assert session["closed_at"] is not None
    assert "hub.stop" in [event["kind"] for event in session["events"]]


def test_removing_a_member_stops_their_running_bubble_and_closes_its_session_with_the_reason(
    hub: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, lab: Lab, people: People
) -> None:
    api, staff = live_service.api, people.headers("staff")
    slug = project(live_service, people, "INFRACALC")
    hub_api, username, _ = started_bubble(hub, keycloak, people, slug)
    created = call("GET", f"{api}/audit", staff, params={"project": slug, "action": "bubble.create"})
    bubble_id = created["events"][0]["details"]["bubble"]

    lead = people.username("lead")
    answer = requests.delete(f"{api}/projects/{slug}/members/{username}", headers=people.headers("lead"), timeout=30)
    assert answer.status_code == 204, answer.text
    # The service asks the hub to stop the server (its token may do that and nothing else).
    hub_api.wait_stopped(username, slug, timeout=30)
    session = call("GET", f"{api}/sessions/{bubble_id}", staff)
    assert session["closed_at"] is not None
    (closing,) = [event for event in session["events"] if event["kind"] == "session.close"]
    assert closing["details"] == {"reason": f"{username} was removed from project {slug} by {lead}"}
    # The person may not start it again: they are no longer a member.
    refused = hub_api.start(username, slug)
    assert refused.status_code == 403, refused.text
    stops = [
        line
        for line in hub.log_path.read_text().splitlines()
        if f"DELETE /hub/api/users/{username}/servers/{slug}" in line
    ]
    assert stops, "the hub was not asked to stop the server"
    assert all("infracalc" in line for line in stops), stops  # by the service, with its own token


def test_a_bubbles_credentials_open_nothing_outside_its_namespace(
    hub: HubUnderTest, keycloak: KeycloakServer, live_service: LiveService, lab: Lab, people: People
) -> None:
    api, staff = live_service.api, people.headers("staff")
    slug = project_allowing(live_service, people, "api.allowed.test")
    hub_api, username, token = started_bubble(hub, keycloak, people, slug)
    server = f"{hub.url}/user/{username}/{slug}"
    code = CALLS.format(cafile=str(lab.ca_path)).replace(
        "print(json.dumps({", "import os\nprint(json.dumps({'proxy': os.environ['HTTPS_PROXY'], "
    )
    inside = json.loads(run_code(server, token, code))
    assert inside["allowed"] == 200, inside

    # The hub bound the bubble to its namespace's address (10.233.x.2), given to the service before it ran.
    created = call("GET", f"{api}/audit", staff, params={"project": slug, "action": "bubble.address"})
    (bound,) = created["events"]
    assert bound["details"]["address"].startswith("10.233.")
    # The same credentials from the host, straight to the proxy: 407.
    credentials = urlsplit(inside["proxy"]).netloc.rsplit("@", 1)[0]
    from_host = Namespace.root().http_get(
        "https://api.allowed.test/anything",
        proxy=f"http://{credentials}@127.0.0.1:{hub.proxy.port}",
        cafile=lab.ca_path,
    )
    assert from_host.status == 407, from_host
    assert "work only from the bubble's own address" in from_host.text
    assert hub_api.stop(username, slug).status_code in (202, 204)
    hub_api.wait_stopped(username, slug)
