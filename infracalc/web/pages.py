"""How every page is rendered: the layout's values (language, translator), and the headers pages carry.

Pages are server-rendered Jinja templates (``templates/``, with ``base.html`` as the layout) and
one stylesheet (``static/``): no front-end build. Every form carries the CSRF token of Litestar's
CSRF middleware (``{{ csrf_input }}``), which refuses a form post without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.response import Template
from litestar.template import TemplateConfig

from infracalc.web.i18n import LANGUAGE_COOKIE, LANGUAGES, MESSAGES, pick_language, translator
from infracalc.web.reasons import translate_reason

HERE: Final = Path(__file__).resolve().parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

#: Pages hold single-use links and personal details: never cached, never framed, never named in a Referer.
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}

#: Paths the CSRF middleware leaves alone: the API authenticates with bearer tokens, not cookies.
CSRF_EXEMPT: Final = ["^/api/", "^/health$", "^/ready$", "^/schema", "^/auth/backchannel-logout$"]


def template_config() -> TemplateConfig[Any]:
    """Jinja2 templates from ``infracalc/web/templates`` (autoescaped)."""
    from litestar.plugins.jinja import JinjaTemplateEngine  # noqa: PLC0415 - imports jinja2 only when pages are served

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)


def csrf_config(secret: str, *, secure: bool) -> CSRFConfig:
    """CSRF protection of every form (a double-submit cookie signed with ``secret``); the API is exempt."""
    return CSRFConfig(
        secret=secret,
        cookie_name="infracalc_csrf",
        cookie_secure=secure,
        cookie_httponly=True,
        cookie_samesite="lax",
        exclude=CSRF_EXEMPT,
    )


def language(request: Request[Any, Any, Any]) -> str:
    """The language the page is shown in (see :func:`infracalc.web.i18n.pick_language`)."""
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE))


def reason(request: Request[Any, Any, Any], error: BaseException | str) -> str:
    """The policy's reason or the domain's message (an error's text) in the page's language."""
    return translate_reason(str(error), language(request))


#: The longest name a success message repeats from its URL (a host, a username, a file name).
MAX_SUBJECT: Final = 300


def done_message(request: Request[Any, Any, Any], lang: str) -> str | None:
    """The success message a page shows after a change: ``?done=<what>`` (and ``subject``) in the catalogue, else none.

    Forms send the browser back to a page with these (POST, redirect, GET), so that reloading the
    page or switching its language never posts again, and the message stays.
    """
    key = f"done.{request.query_params.get('done', '')}"
    catalogue = MESSAGES[lang]
    if key not in catalogue:
        return None
    subject = str(request.query_params.get("subject", ""))[:MAX_SUBJECT]
    return translator(lang)(key, subject=subject)


def language_switch(request: Request[Any, Any, Any], other: str, page: str | None = None) -> str:
    """The page itself in the other language: its path and query (filters, messages) kept, ``lang`` replaced.

    An answer to a form post names the page it stands for (``page``): the post's own address shows no page.
    """
    if page is not None:
        return f"{page}?{urlencode([('lang', other)])}"
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "lang"]
    return f"{request.url.path}?{urlencode([*query, ('lang', other)])}"


def render(
    request: Request[Any, Any, Any],
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    cookies: Sequence[Cookie] = (),
    page: str | None = None,
) -> Template:
    """``template`` with the layout's values, the page headers, and the language cookie when ``?lang=`` chose one.

    ``page``: the page an answer to a form post stands for, where the language switch leads (see
    :func:`language_switch`); a post answered with a page rather than a redirect must name one.
    """
    lang = language(request)
    other = next(code for code in LANGUAGES if code != lang)
    all_cookies = list(cookies)
    if request.query_params.get("lang") in LANGUAGES:
        all_cookies.append(
            Cookie(key=LANGUAGE_COOKIE, value=lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        )
    return Template(
        template_name=template,
        context={
            "lang": lang,
            "other_lang": other,
            "t": translator(lang),
            "reason_text": lambda text: translate_reason(str(text), lang),
            "switch_url": language_switch(request, other, page),
            "done_message": done_message(request, lang),
            **(values or {}),
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
        cookies=all_cookies,
    )


def message(
    request: Request[Any, Any, Any],
    heading_key: str,
    text_key: str,
    *,
    status_code: int,
    kind: str = "error",
    page: str | None = None,
) -> Template:
    """A page with a heading and one message (a refusal, an outage), both from the catalogue."""
    t = translator(language(request))
    return render(
        request,
        "message.html",
        {"heading": t(heading_key), "text": t(text_key), "kind": kind},
        status_code=status_code,
        page=page,
    )
