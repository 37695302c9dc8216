"""The egress chain with every part real: people in Keycloak, the service, OPA, the proxy, a bubble namespace.

A lead asks for a host, CASD staff approve it, the hub registers a bubble, and the bubble's call
goes through the proxy; then revocation and a switch to CASD governance cut a tunnel that is open,
and stopping the bubble shuts its credentials out. The service records every decision in the audit
log and in the bubble's session, and the log still verifies.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.egress import BubbleLogin, EgressProxyProcess, start_egress_proxy
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People
from tests.support.netns import Bubble, Lab

pytestmark = pytest.mark.integration

JUSTIFICATION = "The weather API feeds the model's daily inputs."


@pytest.fixture
def proxy(live_service: LiveService, lab: Lab, tmp_path: Any) -> Iterator[EgressProxyProcess]:
    """The egress proxy reporting to the live service."""
    running = start_egress_proxy(
        opa_url=live_service.env["INFRACALC_OPA_URL"],
        service_url=live_service.url,
        secret=live_service.proxy_secret,
        workdir=tmp_path,
    )
    yield running
    assert running.stop() == 0


def call(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
    answer = requests.request(method, url, headers=headers, timeout=30, **kwargs)
    assert answer.status_code < 300, (method, url, answer.status_code, answer.text)
    return answer.json() if answer.content else None


def approved_rule(live_service: LiveService, people: People, slug: str, host: str) -> str:
    """A lead asks for ``host``:443 and CASD staff approve; returns the rule id."""
    asked = call(
        "POST",
        f"{live_service.api}/projects/{slug}/egress-requests",
        people.headers("lead"),
        # A tunnel: what these tests follow is the cut of open tunnels (inspection has its own lab tests).
        json={"host": host, "mode": "tunnel", "justification": JUSTIFICATION},
    )
    call(
        "POST",
        f"{live_service.api}/egress-requests/{asked['id']}/approve",
        people.headers("staff"),
        json={"comment": "approved for the project's duration"},
    )
    return str(asked["id"])


def member_with_bubble(
    live_service: LiveService, people: People, username: str, bubble: Bubble
) -> tuple[str, BubbleLogin]:
    """A new project allowing api.allowed.test, ``username`` a member with a bubble registered at ``bubble``."""
    api, staff = live_service.api, people.headers("staff")
    slug = f"members-{secrets.token_hex(3)}"
    call("POST", f"{api}/projects", staff, json={"id": slug, "title": "Members", "governance": "INFRACALC"})
    call("PUT", f"{api}/projects/{slug}/members/{people.username('lead')}", staff, json={"role": "lead"})
    call("PUT", f"{api}/projects/{slug}/members/{username}", staff, json={"role": "member"})
    approved_rule(live_service, people, slug, "api.allowed.test")
    registered = call(
        "POST",
        f"{api}/bubbles",
        people.hub_headers(),
        json={"username": username, "project": slug, "address": bubble.address},
    )
    return slug, BubbleLogin(registered["id"], registered["token"])


def audit_events_once_recorded(live_service: LiveService, people: People, slug: str) -> list[dict[str, Any]]:
    """The project's audit events, once the proxy's batches (sent in the background) have arrived."""
    deadline = time.monotonic() + 10
    while True:
        audit = call(
            "GET", f"{live_service.api}/audit", people.headers("staff"), params={"project": slug, "limit": 500}
        )
        actions = [event["action"] for event in audit["events"]]
        if actions.count("egress.connection.deny") >= 2 and "egress.connection.close" in actions:
            return list(audit["events"])
        assert time.monotonic() < deadline, actions
        time.sleep(0.2)


def test_request_approve_call_then_revoke_switch_and_stop(
    live_service: LiveService, proxy: EgressProxyProcess, lab: Lab, people: People
) -> None:
    api, staff = live_service.api, people.headers("staff")
    slug = f"weather-{secrets.token_hex(3)}"
    call("POST", f"{api}/projects", staff, json={"id": slug, "title": "Weather", "governance": "INFRACALC"})
    call("PUT", f"{api}/projects/{slug}/members/{people.username('lead')}", staff, json={"role": "lead"})
    call("PUT", f"{api}/projects/{slug}/members/{people.username('researcher')}", staff, json={"role": "member"})
    rule = approved_rule(live_service, people, slug, "api.allowed.test")
    registered = call(
        "POST",
        f"{api}/bubbles",
        people.hub_headers(),
        json={"username": people.username("researcher"), "project": slug, "address": lab.bubbles[0].address},
    )
    login = BubbleLogin(registered["id"], registered["token"])
    bubble = lab.bubbles[0]
    namespace, via = bubble.namespace, proxy.url(login, bubble)

    # A direct connection fails; through the proxy the approved host answers and another is refused.
    assert "unreachable" in (namespace.http_get("https://api.allowed.test/", connect_to="10.231.200.2").error or "")
    allowed = namespace.http_get("https://api.allowed.test/anything/forecast", proxy=via, cafile=lab.ca_path)
    assert (allowed.status, allowed.json()["server"]) == (200, "upstream-a")
    refused = namespace.http_get("https://api.other.test/anything", proxy=via, cafile=lab.ca_path)
    assert refused.status == 403
    assert f"no approved rule of project {slug} allows api.other.test:443" in refused.text

    # The lead revokes the rule: the open tunnel is cut within a second.
    with namespace.open_tunnel(via, "api.allowed.test:443", tls=True, cafile=lab.ca_path, interval=0.05) as tunnel:
        tunnel.wait_for("ok", timeout=10)
        call("DELETE", f"{api}/projects/{slug}/egress-rules/{rule}", people.headers("lead"))
        revoked_at = time.monotonic()
        tunnel.wait_for("closed", timeout=5)
        assert time.monotonic() - revoked_at < 1.0

    # Approved again; CASD staff move the project to CASD: the open tunnel is cut, new calls refused.
    approved_rule(live_service, people, slug, "api.allowed.test")
    with namespace.open_tunnel(via, "api.allowed.test:443", tls=True, cafile=lab.ca_path, interval=0.05) as tunnel:
        tunnel.wait_for("ok", timeout=10)
        call(
            "PUT",
            f"{api}/projects/{slug}/governance",
            staff,
            json={"owner": "CASD", "reason": "sensitive data arrives"},
        )
        switched_at = time.monotonic()
        tunnel.wait_for("closed", timeout=5)
        assert time.monotonic() - switched_at < 1.0
    casd = namespace.http_get("https://api.allowed.test/anything", proxy=via, cafile=lab.ca_path)
    assert casd.status == 403
    assert "under CASD governance" in casd.text

    # The hub stops the bubble: its credentials no longer open anything.
    # A decision may be reused for up to a second (the proxy's cache), so the 407 comes within one.
    call("DELETE", f"{api}/bubbles/{login.bubble_id}", people.hub_headers())
    stopped_at = time.monotonic()
    while namespace.http_get("https://api.allowed.test/anything", proxy=via, cafile=lab.ca_path).status != 407:
        assert time.monotonic() - stopped_at < 1.0, "a stopped bubble's credentials still open connections"
        time.sleep(0.05)

    # Every decision is in the audit log and in the bubble's session; the log verifies.
    events = audit_events_once_recorded(live_service, people, slug)
    actions = [event["action"] for event in events]
    assert actions.count("egress.connection.allow") >= 3  # the call and the two tunnels
    bubble_events = [event for event in events if event["actor"] == f"bubble:{login.bubble_id}"]
    assert bubble_events
    session = call("GET", f"{api}/sessions/{login.bubble_id}", staff)
    kinds = [event["kind"] for event in session["events"]]
    assert kinds[0] == "session.open"
    assert {"egress.connection.allow", "egress.connection.deny", "egress.connection.close"} <= set(kinds)
    assert session["closed_at"] is not None
    assert call("GET", f"{api}/audit/verify", staff)["ok"] is True


def test_removing_a_member_cuts_their_bubbles_tunnels_and_refuses_their_token(
    live_service: LiveService, proxy: EgressProxyProcess, lab: Lab, people: People
) -> None:
    api, staff = live_service.api, people.headers("staff")
    researcher = people.username("researcher")
    bubble = lab.bubbles[1]
    slug, login = member_with_bubble(live_service, people, researcher, bubble)
    namespace, via = bubble.namespace, proxy.url(login, bubble)
    token = {"Authorization": f"Bearer {login.token}"}

    with namespace.open_tunnel(via, "api.allowed.test:443", tls=True, cafile=lab.ca_path, interval=0.05) as tunnel:
        tunnel.wait_for("ok", timeout=10)
        assert requests.get(f"{api}/projects/{slug}", headers=token, timeout=30).status_code == 200
        requests.delete(
            f"{api}/projects/{slug}/members/{researcher}", headers=people.headers("lead"), timeout=30
        ).raise_for_status()
        removed_at = time.monotonic()
        # The service refuses the token at once; the proxy cuts the open tunnel within a second.
        assert requests.get(f"{api}/projects/{slug}", headers=token, timeout=30).status_code == 401
        tunnel.wait_for("closed", timeout=5)
        assert time.monotonic() - removed_at < 1.0
    again = namespace.http_get("https://api.allowed.test/anything", proxy=via, cafile=lab.ca_path)
    assert again.status == 407, again
    session = call("GET", f"{api}/sessions/{login.bubble_id}", staff)
    assert session["closed_at"] is not None
    assert session["events"][-1]["kind"] != "session.open"
    closing = [event for event in session["events"] if event["kind"] == "session.close"]
    assert closing[0]["details"] == {
        "reason": f"{researcher} was removed from project {slug} by {people.username('lead')}"
    }


def test_offboarding_a_person_cuts_their_bubbles_tunnels_and_refuses_their_token(
    live_service: LiveService, proxy: EgressProxyProcess, lab: Lab, people: People, keycloak: KeycloakServer
) -> None:
    api, staff = live_service.api, people.headers("staff")
    leaver = keycloak.add_account("leaver").username  # the shared cast must stay enabled
    bubble = lab.bubbles[2]
    slug, login = member_with_bubble(live_service, people, leaver, bubble)
    namespace, via = bubble.namespace, proxy.url(login, bubble)
    token = {"Authorization": f"Bearer {login.token}"}

    with namespace.open_tunnel(via, "api.allowed.test:443", tls=True, cafile=lab.ca_path, interval=0.05) as tunnel:
        tunnel.wait_for("ok", timeout=10)
        reason = "left CASD at the end of the contract"
        outcome = call("POST", f"{api}/users/{leaver}/offboard", staff, json={"reason": reason})
        offboarded_at = time.monotonic()
        assert outcome["bubbles_revoked"] == [login.bubble_id]
        # The service refuses the token at once; the proxy cuts the open tunnel within a second.
        assert requests.get(f"{api}/projects/{slug}", headers=token, timeout=30).status_code == 401
        tunnel.wait_for("closed", timeout=5)
        assert time.monotonic() - offboarded_at < 1.0
    again = namespace.http_get("https://api.allowed.test/anything", proxy=via, cafile=lab.ca_path)
    assert again.status == 407, again
    session = call("GET", f"{api}/sessions/{login.bubble_id}", staff)
    assert session["closed_at"] is not None
    (closing,) = [event for event in session["events"] if event["kind"] == "session.close"]
    assert reason in closing["details"]["reason"], closing
    audit = call("GET", f"{api}/audit", staff, params={"project": slug, "action": "bubble.revoke"})
    assert [event["details"]["bubble"] for event in audit["events"]] == [login.bubble_id]
