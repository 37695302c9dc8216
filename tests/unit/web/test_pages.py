"""The pages' catalogue and templates: both languages complete, every template renders in each, values escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2
import pytest

from infracalc.db import EnrollmentState
from infracalc.service.enrollments.service import Invitation
from infracalc.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, MESSAGES, pick_language, translator
from infracalc.web.pages import TEMPLATES

INVITATION = Invitation(
    id="e1",
    email="ada@example.org",
    first_name="<Ada>",
    username="ada",
    project="cohort",
    project_title="Birth <cohort>",
    role="member",
    state=EnrollmentState.INVITED,
    expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    networks=("203.0.113.0/24",),
)


def test_every_language_has_every_message() -> None:
    keys = {language: set(MESSAGES[language]) for language in LANGUAGES}
    assert keys["fr"] == keys["en"]


@pytest.mark.parametrize(
    ("query", "cookie", "expected"),
    [(None, None, "fr"), ("en", None, "en"), (None, "en", "en"), ("fr", "en", "fr"), ("de", "xx", "fr")],
)
def test_the_language_is_the_query_then_the_cookie_then_french(
    query: str | None, cookie: str | None, expected: str
) -> None:
    assert pick_language(query, cookie) == expected
    assert DEFAULT_LANGUAGE == "fr"


def test_messages_are_filled_after_lookup() -> None:
    assert translator("en")("enroll.hello", name="Ada") == "Hello Ada,"
    with pytest.raises(KeyError):
        translator("fr")("no.such.key")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("template", "values"),
    [
        (
            "enroll/confirm.html",
            {
                "expires": "2026-12-01 00:00 UTC",
                "action": "/enroll/t",
                "networks": "<b>",
                "address": "127.0.0.1/32",
                "network_rule": "<b>",
                "errors": {"networks": "bad <network>", "accept": "tick"},
                "accepted": False,
                "warn_outside": True,
            },
        ),
        ("enroll/mailbox.html", {"action": "/enroll/t", "done_action": "/enroll/t/done"}),
        ("enroll/done.html", {}),
        ("message.html", {"heading": "H", "text": "T", "kind": "error"}),
    ],
)
def test_every_template_renders_in_every_language_and_escapes_values(
    language: str, template: str, values: dict[str, object]
) -> None:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = environment.get_template(template).render(
        lang=language,
        other_lang="en" if language == "fr" else "fr",
        t=translator(language),
        csrf_input='<input type="hidden" name="_csrf_token" value="x">',
        switch_url="/enroll/t?lang=en",
        done_message=None,
        invitation=INVITATION,
        **values,
    )
    assert f'<html lang="{language}">' in html
    assert "<Ada>" not in html
    assert "<cohort>" not in html
    assert "<b>" not in html
    assert "<network>" not in html
    if "form" in html:
        assert 'name="_csrf_token"' in html
    # Every form field has a label.
    for field in ("networks", "accept"):
        if f'id="{field}"' in html:
            assert f'<label for="{field}">' in html
