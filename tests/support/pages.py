"""Rendering the console's templates without the app, and the checks every page must pass."""

from __future__ import annotations

import re
from typing import Any

import jinja2

from infracalc.web.i18n import translator
from infracalc.web.pages import TEMPLATES
from infracalc.web.reasons import translate_reason

#: What the CSRF middleware puts in every form.
CSRF_INPUT = '<input type="hidden" name="_csrf_token" value="x">'


def render_page(template: str, language: str, **values: Any) -> str:
    """``template`` rendered in ``language`` as the app would, every undefined name an error."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template(template).render(
        lang=language,
        other_lang="en" if language == "fr" else "fr",
        t=translator(language),
        reason_text=lambda text: translate_reason(text, language),
        csrf_input=CSRF_INPUT,
        switch_url=f"/page?lang={'en' if language == 'fr' else 'fr'}",
        done_message=None,
        **values,
    )


def assert_forms_are_guarded_and_labelled(html: str) -> None:
    """Every POST form carries the CSRF token, and every visible field has a label."""
    for form in re.findall(r"<form[^>]*>.*?</form>", html, flags=re.S):
        if 'method="post"' in form:
            assert 'name="_csrf_token"' in form
    for field_id in re.findall(r'<(?:input|textarea|select)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{field_id}">' in html, field_id
