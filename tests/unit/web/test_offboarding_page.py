"""The offboarding page's template: its three states render in both languages, label their fields, escape values."""

from __future__ import annotations

from typing import Any

import pytest

from infracalc.db import MemberRole
from infracalc.service.principals import Person
from infracalc.service.users.offboarding import OffboardingPreview
from infracalc.service.users.schemas import MembershipRemoved, OffboardOut
from infracalc.web.i18n import LANGUAGES
from tests.support.pages import assert_forms_are_guarded_and_labelled, render_page

PERSON = Person(username="<sam>", roles=frozenset({"casd-staff"}), acr="mfa", subject="s")
MEMBERSHIPS = [MembershipRemoved("<cohort>", MemberRole.LEAD), MembershipRemoved("weather", MemberRole.MEMBER)]
STATES: list[dict[str, Any]] = [
    {"typed": {"username": "<typed>", "reason": "<why>"}, "errors": {"username": "no <user>", "reason": "too <short>"}},
    {
        "typed": {"username": "<mo>", "reason": "<why>"},
        "errors": {},
        "preview": OffboardingPreview("<mo>", True, MEMBERSHIPS, ["b1", "b2"], ["e1"]),
    },
    {
        "typed": {"username": "", "reason": ""},
        "errors": {},
        "done": OffboardOut("<mo>", True, False, MEMBERSHIPS, ["b1"], [], 1),
        "notice": "<notice>",
    },
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("values", STATES)
def test_the_offboarding_page_renders_labels_its_fields_and_escapes(language: str, values: dict[str, Any]) -> None:
    html = render_page(
        "console/staff_offboarding.html",
        language,
        person=PERSON,
        staff=True,
        min_reason=10,
        **{"preview": None, "done": None, "notice": None, **values},
    )
    assert f'<html lang="{language}">' in html
    assert 'id="nav-staff-offboarding"' in html
    for raw in ("<sam>", "<typed>", "<why>", "<user>", "<short>", "<mo>", "<cohort>", "<notice>"):
        assert raw not in html, f"{raw} unescaped"
    assert_forms_are_guarded_and_labelled(html)
    if "preview" in values:
        assert 'name="confirm" value="yes"' in html
        assert "&lt;cohort&gt;, weather" in html
    else:
        assert 'name="confirm"' not in html
