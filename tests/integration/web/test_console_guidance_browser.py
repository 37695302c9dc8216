"""The console guiding people, in Chromium at 1280 and 390 pixels wide, in French and English.

Each story opens console sessions in the service's database (the login itself is tested in
``test_console_browser``) and checks what a person sees: every refused field at once with the focus
on the summary, sentences rather than patterns, the language switch after a form, the one rule of
methods and paths shown to the lead, the approver and in the rules in force, rules named by host,
confirmations, success messages, refusals when a page opens, the audit log's details, HTML error
pages, the networks rule and its warning, and no page wider than a phone. Screenshots go to
``test-artifacts/screenshots/console-guide-*.png``.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.service.test_exports import high_risk_csv
from tests.integration.web.test_console_browser import contexts, shot
from tests.integration.web.test_console_upload_browser import NARROW, WIDE, fits, signed_in
from tests.integration.web.test_enroll_browser import browser
from tests.integration.web.test_oversight_browser import start_session
from tests.integration.web.test_review_browser import setup as files_setup

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures, shared with the other browser tests

PROJECT = "cohort"


def setup_project(service: LiveEnrollService, people: People) -> None:
    """Project ``cohort`` (INFRACALC) with its lead and a researcher, made through the API."""
    staff = people.headers("staff")
    created = requests.post(
        f"{service.api}/projects",
        json={"id": PROJECT, "title": "Birth cohort", "governance": "INFRACALC"},
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    for who, role in (("lead", "lead"), ("researcher", "member")):
        added = requests.put(
            f"{service.api}/projects/{PROJECT}/members/{people.username(who)}",
            json={"role": role},
            headers=staff,
            timeout=30,
        )
        assert added.status_code in {200, 201}, added.text


def approved_rule(service: LiveEnrollService, people: People, host: str) -> str:
    """A rule for ``host`` asked by the lead and approved by staff, through the API; its id."""
    asked = requests.post(
        f"{service.api}/projects/{PROJECT}/egress-requests",
        json={"host": host, "justification": "Geocoding of the cohort's addresses, " * 6},
        headers=people.headers("lead"),
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    rule_id = str(asked.json()["id"])
    approved = requests.post(
        f"{service.api}/egress-requests/{rule_id}/approve",
        json={"comment": "public geocoder"},
        headers=people.headers("staff"),
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    return rule_id


def summary_in_view(page: Page) -> None:
    """The error summary has the focus and shows in the window (no scrolling to find it)."""
    assert page.evaluate("document.activeElement.id") == "error-summary"
    top = page.evaluate("document.getElementById('error-summary').getBoundingClientRect().top")
    height = page.evaluate("window.innerHeight")
    assert -1 <= top < height, (top, height)  # subpixel layout: a fraction above the edge is at the edge


def field_errors(page: Page) -> list[str]:
    return sorted(page.locator(".field-error").evaluate_all("nodes => nodes.map(node => node.id)"))


def test_a_lead_and_staff_are_guided_through_a_request_in_chromium(  # noqa: PLR0915 - one story, in order
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    setup_project(service, people)

    # French, 1280 px: a request with several mistakes comes back with all of them, the summary in view.
    lead = signed_in(browser, contexts, service, people, "lead")
    lead.goto(f"{service.url}/projects/{PROJECT}")
    lead.fill("#host", "*")
    lead.fill("#ports", "0, 443")
    lead.fill("#expires_in_days", "400")
    lead.fill("#justification", "trop court")
    lead.click("#request")
    lead.wait_for_selector("#error-summary")
    assert field_errors(lead) == [
        "expires_in_days-error",
        "host-error",
        "justification-error",
        "ports-error",
    ]
    assert lead.locator("#error-summary p").inner_text() == "À corriger (4) :"
    assert lead.locator("#ports-error").inner_text() == (
        "Indiquez de 1 à 32 numéros de port, de 1 à 65535, séparés par des virgules."
    )
    summary_in_view(lead)
    assert lead.locator("#ports").input_value() == "0, 443"
    shot(lead, "guide-request-errors-fr")

    # The language switch after the post: the same page, the same messages in English, nothing lost.
    lead.click("#language-switch")
    lead.wait_for_selector("html[lang=en]")
    assert lead.locator("#error-summary p").inner_text() == "To correct (4):"
    assert lead.locator("#justification").input_value() == "trop court"
    assert "Give a duration from 1 to 365 days." in lead.locator("#expires_in_days-error").inner_text()

    # Methods and paths through an opaque tunnel: refused at the field, with why; an inspect rule takes them.
    lead.fill("#host", "data.example.org")
    lead.fill("#ports", "80")
    lead.select_option("#mode", "tunnel")
    lead.fill("#expires_in_days", "30")
    lead.fill("#justification", "Open data of the cohort's region")
    lead.fill("#methods", "get")
    lead.fill("#path_prefixes", "/v1/")
    lead.click("#request")
    lead.wait_for_selector("#methods-error")
    assert field_errors(lead) == ["methods-error"]
    assert "so it cannot restrict methods" in lead.locator("#methods-error").inner_text()
    assert "Tunnel: the proxy sees only host and port" in lead.locator("#mode-help").inner_text()
    shot(lead, "guide-request-tunnel-restricted-refused-en")
    lead.select_option("#mode", "inspect")
    lead.click("#request")
    lead.wait_for_selector("#done")
    assert lead.locator("#done").inner_text() == "Your request for data.example.org is sent: CASD staff will review it."
    assert "inspected (each request decided)" in lead.locator("#requests").inner_text()

    # Staff, French, 390 px: the menu folds, the page fits, the approver sees what the rule allows.
    staff = signed_in(browser, contexts, service, people, "staff", viewport=NARROW)
    staff.goto(f"{service.url}/staff/egress-requests")
    fits(staff, NARROW["width"])
    assert not staff.locator("#menu").evaluate("menu => menu.open")
    assert staff.locator("h1").bounding_box()["y"] < 200  # the first screen is the page, not the navigation
    pending = staff.locator("section.pending", has_text="data.example.org")
    assert "inspecté (chaque requête décidée)" in pending.locator("ul.terms").inner_text()
    assert "Méthodes HTTP : GET" in pending.inner_text()
    assert "Préfixes de chemin : /v1/" in pending.inner_text()
    assert pending.locator("dt", has_text="Justification").count() == 1
    assert pending.locator("dd.justification").inner_text() == "Open data of the cohort's region"
    shot(staff, "guide-staff-queue-fr-390")
    pending.locator("textarea").fill("Données ouvertes, en HTTP seulement")
    pending.locator("button.approve").click()
    staff.wait_for_selector("#done")
    assert staff.locator("#done").inner_text() == (
        "L'accès à data.example.org est approuvé : il s'applique dès maintenant."
    )
    fits(staff, NARROW["width"])

    # The rules in force show the rule's terms, and the URL check names the rule by its host, never by its id.
    lead.goto(f"{service.url}/projects/{PROJECT}?url=http://data.example.org/v2/x")
    rules = lead.locator("#rules").inner_text()
    assert "HTTP methods : GET" in rules
    assert "Path prefixes : /v1/" in rules
    result = lead.locator("#check-result").inner_text()
    assert result.startswith(f"Denied — no approved rule of project {PROJECT} allows GET /v2/x on data.example.org:80")
    assert not re.search(r"\b[0-9a-f]{16}\b", result)
    lead.goto(f"{service.url}/projects/{PROJECT}?url=http://data.example.org/v1/items")
    assert (
        lead.locator("#check-result")
        .inner_text()
        .startswith(f"Allowed — the rule for data.example.org of project {PROJECT} allows data.example.org:80")
    )
    # At 1280 px, the requests' table breaks no host or status in the middle of a word.
    lines = "cell => { const range = document.createRange(); range.selectNodeContents(cell.firstChild); "
    lines += "return range.getClientRects().length; }"
    row = lead.locator("#requests tbody tr").first
    assert (row.locator("td").first.evaluate(lines), row.locator("td.status").evaluate(lines)) == (1, 1)
    shot(lead, "guide-rules-in-force-en")


def test_staff_confirm_switches_and_removals_and_read_the_audit_log_in_chromium(  # noqa: PLR0915 - one story
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    setup_project(service, people)
    approved_rule(service, people, "api.geo.example.org")
    staff = signed_in(browser, contexts, service, people, "staff", locale="en-GB")

    # A switch to CASD, then back: each shows its consequences and waits for a confirmation.
    staff.goto(f"{service.url}/projects/{PROJECT}/governance?lang=en")
    staff.fill("#reason", "Health data joins the cohort")
    staff.click("#preview-switch")
    staff.wait_for_selector("#consequences")
    assert "api.geo.example.org" in staff.locator("#rules-stopping").inner_text()
    assert staff.evaluate("document.activeElement.id") == "consequences"
    staff.click("#confirm-switch")
    staff.wait_for_selector("#done")
    assert staff.locator("#done").inner_text() == "The project is now under CASD governance."
    staff.goto(f"{service.url}/projects/{PROJECT}/governance")
    staff.fill("#reason", "The health data left the cohort")
    staff.click("#preview-switch")
    staff.wait_for_selector("#rules-resuming")
    assert (
        staff.locator("#rules-resuming").inner_text() == "1 external access rule(s) apply again: api.geo.example.org."
    )
    shot(staff, "guide-governance-back-en")
    staff.click("#confirm-switch")
    staff.wait_for_selector("#done")
    assert staff.locator("#governance").inner_text().startswith("Governance: INFRACALC.")

    # Removing a member asks first; cancelling changes nothing; confirming says it is done.
    researcher = people.username("researcher")
    staff.click(f"#member-{researcher} a")
    staff.wait_for_selector("#confirm-remove")
    assert staff.locator("h1").inner_text() == f"Remove {researcher} from the project?"
    shot(staff, "guide-member-remove-en")
    staff.click("#cancel-remove")
    staff.wait_for_selector(f"#member-{researcher}")
    staff.click(f"#member-{researcher} a")
    staff.click("#confirm-remove")
    staff.wait_for_selector("#done")
    assert staff.locator("#done").inner_text() == f"{researcher} is no longer part of the project."
    assert staff.locator(f"#member-{researcher}").count() == 0

    # A project id refused with a sentence, not a pattern.
    staff.goto(f"{service.url}/staff/projects")
    staff.fill("#id", "Not A Slug")
    staff.fill("#title", "")
    staff.click("#create-submit")
    staff.wait_for_selector("#error-summary")
    summary_in_view(staff)
    assert staff.locator("#id-error").inner_text().startswith("3 to 64 characters: lowercase letters")
    assert "regex" not in staff.content()
    assert field_errors(staff) == ["id-error", "title-error"]

    # The audit log: filtered, details as labelled values, the filters kept by the language switch and the check.
    staff.goto(f"{service.url}/staff/audit?action=governance.switch")
    events = staff.locator("#events li.event")
    assert events.count() == 2
    first = events.first
    assert first.locator("dt").all_inner_texts()[:3] == ["From", "Imports re-tagged", "Reason"]
    assert "The health data left the cohort" in first.inner_text()
    staff.click("#language-switch")
    staff.wait_for_selector("html[lang=fr]")
    assert "action=governance.switch" in staff.url
    assert staff.locator("#events li.event").count() == 2
    assert "Raison" in staff.locator("#events li.event dt").all_inner_texts()
    staff.click("#verify")
    staff.wait_for_selector("#verification-result")
    assert staff.locator("#verification-result").inner_text().startswith("Journal intact")
    assert "action=governance.switch" in staff.url
    assert staff.locator("#events li.event").count() == 2
    staff.click("#language-switch")
    staff.wait_for_selector("html[lang=en]")
    assert staff.locator("#verification-result").inner_text().startswith("Log intact")
    shot(staff, "guide-audit-filtered-en")

    # The whole log: at most 20 events a page, none cut off at 1,280 px, a long value folded.
    staff.goto(f"{service.url}/staff/audit")
    assert 10 <= staff.locator("#events li.event").count() <= 20
    labels = staff.locator("#events dt").all_inner_texts()
    assert not [label for label in labels if "_" in label], labels  # every detail labelled, no raw key
    expires = staff.locator("#events li.event", has_text="egress.approve").locator("dd").all_inner_texts()
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", text) for text in expires), expires
    fits(staff, WIDE["width"])
    assert staff.evaluate("document.documentElement.scrollHeight") < 9000
    folded = staff.locator("#events details").first
    assert folded.count() == 1
    assert not folded.evaluate("details => details.open")
    shot(staff, "guide-audit-en")
    staff.set_viewport_size(NARROW)
    fits(staff, NARROW["width"])
    shot(staff, "guide-audit-en-390")


def test_every_page_fits_a_phone_and_errors_and_refusals_are_pages_in_chromium(  # noqa: PLR0915 - one tour
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    setup_project(service, people)
    approved_rule(service, people, "api.geo.example.org")
    session_id = start_session(service, people, PROJECT)
    export_id, import_id = files_setup(service, people, high_risk_csv())  # project "births", under CASD
    invited = requests.post(
        f"{service.api}/enrollments",
        json={
            "email": "grace.phone@example.org",
            "first_name": "Grace",
            "last_name": "Hopper",
            "project": PROJECT,
            "role": "member",
        },
        headers=people.headers("staff"),
        timeout=60,
    )
    assert invited.status_code == 201, invited.text
    lead = people.username("lead")
    pages = [
        "/",
        f"/projects/{PROJECT}",
        f"/projects/{PROJECT}?url=https://api.geo.example.org/v1/search",
        f"/projects/{PROJECT}/governance",
        f"/projects/{PROJECT}/members/{lead}/remove",
        "/staff/egress-requests",
        "/staff/projects",
        "/staff/exports",
        "/staff/imports",
        f"/staff/imports/{import_id}",
        f"/staff/exports/{export_id}",
        "/projects/births",
        "/staff/audit",
        "/staff/sessions",
        f"/staff/sessions/{session_id}",
        "/staff/enrollments",
        "/no/such/page",
    ]
    for locale, lang in (("fr-FR", "fr"), ("en-GB", "en")):
        phone = signed_in(browser, contexts, service, people, "staff", locale=locale, viewport=NARROW)
        for path in pages:
            phone.goto(f"{service.url}{path}{'&' if '?' in path else '?'}lang={lang}")
            assert phone.evaluate("document.documentElement.scrollWidth") <= NARROW["width"], path
            assert phone.locator("h1").count() == 1, path
            if path == f"/staff/sessions/{session_id}":  # the timeline's own sentences in the page's language
                opened = {"fr": "session ouverte pour", "en": "session opened for"}[lang]
                assert opened in phone.locator("#timeline").inner_text(), lang
            shot(phone, f"guide-390-{lang}-{re.sub(r'[^a-z0-9]+', '-', path.split('?')[0]).strip('-') or 'home'}")
    # The enrollment page, on a phone too.
    link = invited.json()["link"]
    invitee = browser.new_context(locale="fr-FR", viewport=NARROW)
    contexts.append(invitee)
    enrolling = invitee.new_page()
    enrolling.goto(link)
    fits(enrolling, NARROW["width"])
    assert "au plus /16 en IPv4 et /48 en IPv6" in enrolling.locator("#networks-help").inner_text()
    # Networks that leave out where the invitee is: a warning first, the confirmation only when asked again.
    enrolling.fill("#networks", "203.0.113.0/24")
    enrolling.check("#accept")
    enrolling.click("#confirm")
    enrolling.wait_for_selector("#confirm-outside")
    assert "(127.0.0.1/32)" in enrolling.locator("#confirm-outside").inner_text()
    fits(enrolling, NARROW["width"])
    shot(enrolling, "guide-enroll-outside-fr-390")
    enrolling.click("#save-outside")
    enrolling.wait_for_selector("#finish-form")

    # Errors are pages for a browser, JSON for the API.
    phone = signed_in(browser, contexts, service, people, "researcher", locale="fr-FR", viewport=NARROW)
    answer = phone.goto(f"{service.url}/no/such/page")
    assert answer is not None
    assert answer.status == 404
    assert phone.locator("h1").inner_text() == "Page introuvable"
    assert phone.locator("#home-link").get_attribute("href") == "/"
    shot(phone, "guide-404-fr-390")
    answer = phone.goto(f"{service.url}/projects/{PROJECT}/egress-requests")
    assert answer is not None
    assert answer.status == 405
    assert phone.locator("h1").inner_text() == "Page à rouvrir"
    api = phone.request.get(f"{service.url}/api/v1/no-such-route", headers={"Accept": "text/html"})
    assert api.status == 404
    assert api.json()["error"] == "not_found"

    # A refusal shows when the page opens: a researcher asking for the governance form.
    answer = phone.goto(f"{service.url}/projects/{PROJECT}/governance")
    assert answer is not None
    assert answer.status == 403
    assert "seul le personnel du CASD peut changer la gouvernance" in phone.locator("#message").inner_text()

    # The networks: one rule, said; too wide refused by it; leaving out where one is asks first.
    phone.goto(f"{service.url}/")
    assert "au plus /16 en IPv4 et /48 en IPv6" in phone.locator("#network-rule").inner_text()
    phone.fill("#network", "10.0.0.0/8")
    phone.click("#add-network")
    phone.wait_for_selector("#network-error")
    assert phone.locator("#network-error").inner_text() == (
        "'10.0.0.0/8' est trop large : un réseau IPv4 est au plus un /16"
    )
    phone.fill("#network", "203.0.113.0/24")
    phone.click("#add-network")
    phone.wait_for_selector("#confirm-outside")
    assert "(127.0.0.1/32)" in phone.locator("#confirm-outside").inner_text()
    assert phone.evaluate("document.activeElement.id") == "confirm-outside"
    assert phone.locator("#networks").count() == 0  # nothing saved yet
    shot(phone, "guide-networks-outside-fr-390")
    phone.click("#save-outside")
    phone.wait_for_selector("#done")
    assert phone.locator("#done").inner_text() == "Le réseau 203.0.113.0/24 est enregistré."
    assert "n'est dans aucun de vos réseaux" in phone.locator("#current-address").inner_text()
    fits(phone, NARROW["width"])
    shot(phone, "guide-networks-fr-390")
