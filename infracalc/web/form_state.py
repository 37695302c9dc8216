"""What a console form sends back: the page to show next, with a success message or what to correct.

Every form of the console answers with a redirect to a page (POST, redirect, GET), so that reloading
never posts again and the language switch, a link to the page itself, works everywhere:

- after a change, :func:`done` sends the browser to the page with ``?done=<what>&subject=<name>``,
  which the layout shows as a success message in the page's language (:func:`infracalc.web.pages.done_message`);
- after a refusal, :func:`send_back` keeps what was typed and why it was refused (:class:`FormState`)
  with the person's session (``web_sessions.form_state``), under a random token that the redirect
  names (``?form=<token>``); the page reads it back with :func:`sent_back` and shows every message
  next to its field and in a summary, in whatever language the page is shown in. Messages are
  kept as catalogue keys or as the domain's and the policy's English sentences (:class:`Said`),
  and translated when shown.

Only a session's last form is kept, and only the URL naming its token shows it: the same page
opened from the navigation is new. Nothing typed into a console form is a secret (the invitation
link, shown once, is never kept here).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Request
from litestar.response import Redirect

from infracalc.db import WebSession
from infracalc.service.context import ServiceContext
from infracalc.web.i18n import LANGUAGES, translator
from infracalc.web.pages import MAX_SUBJECT, PAGE_HEADERS
from infracalc.web.reasons import translate_reason
from infracalc.web.sessions import SESSION_COOKIE, digest

AnyRequest = Request[Any, Any, Any]

#: The query parameter naming a form's token.
FORM_PARAMETER: Final = "form"
_TOKEN_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class Said:
    """A message in no language yet: a catalogue key with its values, or a sentence of the domain or the policy."""

    key: str = ""
    values: Mapping[str, str | Said] = field(default_factory=dict)
    reason: str = ""

    def text(self, lang: str) -> str:
        """The message in ``lang``."""
        if not self.key:
            return translate_reason(self.reason, lang)
        values = {name: value.text(lang) if isinstance(value, Said) else value for name, value in self.values.items()}
        return translator(lang)(self.key, **values) if values else translator(lang)(self.key)

    def to_json(self) -> dict[str, Any]:
        """The message as the session keeps it."""
        values = {name: value.to_json() if isinstance(value, Said) else value for name, value in self.values.items()}
        return {"key": self.key, "values": values, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Said:
        """The message the session kept."""
        values = {
            str(name): cls.from_json(value) if isinstance(value, Mapping) else str(value)
            for name, value in dict(data.get("values") or {}).items()
        }
        return cls(key=str(data.get("key", "")), values=values, reason=str(data.get("reason", "")))


def sentence(text: str) -> str:
    """``text`` starting with a capital, as a message on its own (the domain's messages start in lower case)."""
    return text[:1].upper() + text[1:]


def said(key: str, /, **values: str | Said) -> Said:
    """The catalogue's message ``key`` with ``values``."""
    return Said(key=key, values=values)


def because(error: BaseException | str) -> Said:
    """The policy's reason or the domain's message (an error's text), translated when shown."""
    return Said(reason=str(error))


@dataclass(frozen=True, slots=True)
class FormState:
    """A refused form: which one, what was typed, each field's message, a message for the whole page."""

    form: str
    typed: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, Said] = field(default_factory=dict)
    notice: Said | None = None
    #: Values the page needs besides (JSON): the choice a preview shows, for instance.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def error_texts(self, lang: str) -> dict[str, str]:
        """Each field's message in ``lang``, in the form's order, as a sentence."""
        return {name: sentence(message.text(lang)) for name, message in self.errors.items()}

    def notice_text(self, lang: str) -> str | None:
        """The page's message in ``lang``, if any, as a sentence."""
        return None if self.notice is None else sentence(self.notice.text(lang))

    def to_json(self, token: str, page: str) -> dict[str, Any]:
        """The state as the session keeps it, with the token and the page that show it."""
        return {
            "token": token,
            "page": page,
            "form": self.form,
            "typed": dict(self.typed),
            "errors": {name: message.to_json() for name, message in self.errors.items()},
            "notice": None if self.notice is None else self.notice.to_json(),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FormState:
        """The state the session kept."""
        notice = data.get("notice")
        return cls(
            form=str(data.get("form", "")),
            typed={str(name): str(value) for name, value in dict(data.get("typed") or {}).items()},
            errors={str(name): Said.from_json(value) for name, value in dict(data.get("errors") or {}).items()},
            notice=Said.from_json(notice) if isinstance(notice, Mapping) else None,
            extra=dict(data.get("extra") or {}),
        )


def _page_url(page: str, query: Mapping[str, str], anchor: str) -> str:
    encoded = urlencode({name: value for name, value in query.items() if value})
    return f"{page}{'?' + encoded if encoded else ''}{'#' + anchor if anchor else ''}"


def _language(request: AnyRequest) -> dict[str, str]:
    """The ``lang`` a post named in its own address, carried to the page it leads to (else the cookie decides)."""
    chosen = str(request.query_params.get("lang", ""))
    return {"lang": chosen} if chosen in LANGUAGES else {}


def done(request: AnyRequest, page: str, what: str, subject: str = "", *, anchor: str = "", **query: str) -> Redirect:
    """Back to ``page`` after a change: the layout says ``done.<what>`` (naming ``subject``), ``query`` kept."""
    return Redirect(
        _page_url(page, {**query, **_language(request), "done": what, "subject": subject[:MAX_SUBJECT]}, anchor),
        status_code=303,
        headers=PAGE_HEADERS,
    )


async def send_back(
    request: AnyRequest,
    context: ServiceContext,
    page: str,
    state: FormState,
    *,
    anchor: str = "error-summary",
    **query: str,
) -> Redirect:
    """Keep ``state`` with the session and send the browser back to ``page`` (``?form=<token>``, ``query`` kept).

    Without a session (it ended meanwhile), the page opens as new: its own login redirect follows.
    """
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        async with context.sessions() as session, session.begin():
            row = await session.get(WebSession, digest(session_id))
            if row is not None:
                row.form_state = state.to_json(token, page)
    return Redirect(
        _page_url(page, {**query, **_language(request), FORM_PARAMETER: token}, anchor),
        status_code=303,
        headers=PAGE_HEADERS,
    )


async def sent_back(request: AnyRequest, context: ServiceContext) -> FormState | None:
    """The state a form sent back to this page, when the URL names its token; else ``None`` (a new page)."""
    token = str(request.query_params.get(FORM_PARAMETER, ""))
    session_id = request.cookies.get(SESSION_COOKIE)
    if not token or not session_id:
        return None
    async with context.read_sessions() as session:
        row = await session.get(WebSession, digest(session_id))
        kept = None if row is None else row.form_state
    # The token only picks the session's own state (no secret): plain equality will do.
    if not kept or str(kept.get("token", "")) != token:
        return None
    if kept.get("page") != request.url.path:
        return None
    return FormState.from_json(kept)


__all__ = ["FORM_PARAMETER", "FormState", "Said", "because", "done", "said", "send_back", "sent_back"]
