"""The hub's refusal pages: the person's language, the reason as a code, a link to where to fix it.

The pages as a browser shows them, after a real sign-in refused by the real policy, are tested in
``tests/integration/hub/test_refusal_pages_browser.py``.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from infracalc.hub.refusals import LANGUAGES, TEXTS, Refusal, networks_url, person_language, refusal_page

CONSOLE = "https://infracalc.example.org"


@pytest.mark.parametrize(
    ("accept_language", "locale", "expected"),
    [
        (None, None, "fr"),
        ("", None, "fr"),
        ("en-GB,en;q=0.9", None, "en"),
        ("de-DE,de;q=0.9,en;q=0.8,fr;q=0.7", None, "en"),
        ("de-DE,fr-CH;q=0.5,en;q=0.4", None, "fr"),
        ("en;q=0.2, fr;q=0.9", None, "fr"),
        ("en;q=0, de", None, "fr"),  # q=0 means "not English"
        ("en;q=zero", None, "fr"),
        ("*", None, "fr"),
        ("EN-us", None, "en"),
        # The language chosen on Keycloak's pages (the ID token's locale) comes first.
        ("en-GB", "fr", "fr"),
        ("fr-FR", "en", "en"),
        ("fr-FR", "de", "fr"),
        (None, "en_GB", "en"),
    ],
)
def test_the_persons_language(accept_language: str | None, locale: str | None, expected: str) -> None:
    assert person_language(accept_language, locale) == expected


def test_every_text_exists_in_both_languages_with_the_same_parameters() -> None:
    assert LANGUAGES == ("fr", "en")
    assert set(TEXTS["fr"]) == set(TEXTS["en"])
    for key, french in TEXTS["fr"].items():
        for name in ("{source_ip}", "{reason}"):
            assert (name in french) == (name in TEXTS["en"][key]), key


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.links: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.scripts = 0
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = attributes.get("lang", "")
        if tag == "script":
            self.scripts += 1
        if "id" in attributes:
            self._current = attributes["id"]
            self.texts[self._current] = ""
            if tag == "a":
                self.links[attributes["id"]] = attributes.get("href", "")

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.texts[self._current] += data

    def handle_endtag(self, tag: str) -> None:
        self._current = None


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_an_address_outside_the_networks_links_to_the_consoles_networks_in_the_same_language() -> None:
    refusal = Refusal("source_not_registered", {"source_ip": "198.51.100.7", "reason": "policy words"})

    french = parse(refusal_page(refusal, "fr", console_url=CONSOLE + "/", retry_url="/hub/oauth_login"))
    english = parse(refusal_page(refusal, "en", console_url=CONSOLE, retry_url="/hub/oauth_login"))

    assert french.lang == "fr"
    assert french.texts["refusal-title"] == "Connexion à INFRACALC refusée"
    assert french.texts["refusal-message"] == (
        "Vous vous connectez depuis l'adresse 198.51.100.7, qui n'appartient à aucun des réseaux que vous avez"
        " enregistrés."
    )
    assert french.links["fix-link"] == f"{CONSOLE}/?lang=fr#networks-heading"
    assert french.texts["fix-link"] == "Enregistrer un réseau dans la console INFRACALC"
    assert french.links["retry"] == "/hub/oauth_login"
    assert english.lang == "en"
    assert english.texts["refusal-message"] == (
        "You are connecting from 198.51.100.7, which is in none of the networks you registered."
    )
    assert english.links["fix-link"] == f"{CONSOLE}/?lang=en#networks-heading"
    assert french.scripts == english.scripts == 0


def test_no_link_without_a_console_or_for_what_the_person_cannot_fix_there() -> None:
    network = Refusal("network_required", {"source_ip": "198.51.100.7"})
    assert "fix-link" not in parse(refusal_page(network, "en", console_url=None, retry_url="/r")).links
    for code in ("second_factor_missing", "unverified", "keys_unavailable", "source_unknown", "policy_unavailable"):
        page = parse(refusal_page(Refusal(code), "fr", console_url=CONSOLE, retry_url="/r"))
        assert "fix-link" not in page.links, code
        assert page.texts["refusal-message"] == TEXTS["fr"][code]


def test_a_policy_code_without_a_translation_shows_the_policys_reason() -> None:
    refusal = Refusal("new_rule", {"reason": "a rule added later"})
    assert refusal.text("fr") == "Connexion refusée : a rule added later."
    assert refusal.text("en") == "Sign-in refused: a rule added later."
    assert refusal.text("de") == refusal.text("fr")


def test_everything_shown_is_escaped() -> None:
    hostile = Refusal("source_not_registered", {"source_ip": "<script>alert(1)</script>"})
    page = refusal_page(hostile, "en", console_url='https://x.example/"><script>', retry_url="/r?a=1&b=2")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="/r?a=1&amp;b=2"' in page
    assert parse(page).scripts == 0


def test_the_networks_link_keeps_the_consoles_path() -> None:
    assert (
        networks_url("https://example.org/infracalc/", "en")
        == "https://example.org/infracalc/?lang=en#networks-heading"
    )
