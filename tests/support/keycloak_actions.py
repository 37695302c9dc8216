"""Following Keycloak's required-action pages with ``requests``, as an invited person's browser would.

Keycloak's execute-actions e-mail holds an action-token link. Opening it leads through the
required actions the service asked for: ``kc-passwd-update-form`` (``password-new``,
``password-confirm``), then ``kc-totp-settings-form``, whose hidden ``totpSecret`` is the secret
the QR code carries (the app is given its base32 form; a code is computed with pyotp). After the
last action Keycloak sends the browser to the redirect URI, or shows an info page with a link
back to it: :meth:`RequiredActions.run` stops there and returns that URL.

Redirects are followed by hand and the ``secure`` flag of Keycloak's cookies cleared, like
:mod:`tests.support.oidc_browser` does.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from html import unescape
from urllib.parse import urljoin

import pyotp
import requests

from tests.support.oidc_browser import KeycloakPage

PASSWORD_FORM_ID = "kc-passwd-update-form"
TOTP_FORM_ID = "kc-totp-settings-form"
_TIMEOUT = 30.0
_LINK = re.compile(r"https?://\S+/login-actions/action-token\?\S+")
_HREF = re.compile(r'href="([^"]+)"')


def action_link(text: str) -> str:
    """The action-token link of a Keycloak e-mail's body."""
    match = _LINK.search(text)
    assert match is not None, f"no action-token link in: {text[:500]}"
    return unescape(match.group(0)).rstrip(".>)\"'")


def totp_for(secret: str) -> pyotp.TOTP:
    """The TOTP of Keycloak's raw ``totpSecret`` (the HMAC key is its UTF-8 bytes; apps get them in base32)."""
    return pyotp.TOTP(base64.b32encode(secret.encode("utf-8")).decode("ascii"))


@dataclass
class Enrolled:
    """What the person set in Keycloak, and where Keycloak sent them afterwards."""

    password: str
    totp: pyotp.TOTP
    back_to: str
    #: The 30-second step whose code configured the authenticator (codes are single-use).
    used_step: int
    #: The required-action forms in the order Keycloak showed them (``password``, ``totp``).
    order: tuple[str, ...]


class RequiredActions:
    """One browser (one cookie jar) following an action-token link through Keycloak's required actions."""

    def __init__(self, back_to_prefix: str) -> None:
        """``back_to_prefix``: the service's URL; the walk stops at the first redirect or link there."""
        self.back_to_prefix = back_to_prefix.rstrip("/")
        self.session = requests.Session()
        self.pages: list[KeycloakPage] = []

    def _follow(self, response: requests.Response) -> KeycloakPage | str:
        for _ in range(20):
            for cookie in self.session.cookies:
                cookie.secure = False
            if not response.is_redirect:
                page = KeycloakPage.parse(response)
                self.pages.append(page)
                return page
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(self.back_to_prefix):
                return location
            response = self.session.get(location, allow_redirects=False, timeout=_TIMEOUT)
        raise AssertionError(f"too many redirects, last at {response.url}")

    def open(self, link: str) -> KeycloakPage | str:
        """Open the e-mail's link."""
        return self._follow(self.session.get(link, allow_redirects=False, timeout=_TIMEOUT))

    def submit(self, page: KeycloakPage, form_id: str, fields: dict[str, str]) -> KeycloakPage | str:
        """Post ``form_id`` of ``page`` with its hidden inputs and ``fields``."""
        form = page.form(form_id)
        action = urljoin(page.url, form.action)
        posted = self.session.post(action, data={**form.inputs, **fields}, allow_redirects=False, timeout=_TIMEOUT)
        return self._follow(posted)

    def _proceed(self, page: KeycloakPage) -> KeycloakPage | str:
        """An info page ("perform the following actions", "account updated"): follow its one useful link."""
        links = [unescape(href) for href in _HREF.findall(page.html)]
        back = [href for href in links if href.startswith(self.back_to_prefix)]
        if back:
            return back[0]
        onward = [href for href in links if "login-actions" in href]
        assert onward, f"stuck on {page.describe()}"
        return self._follow(self.session.get(urljoin(page.url, onward[0]), allow_redirects=False, timeout=_TIMEOUT))

    def run(self, link: str, password: str) -> Enrolled:
        """Set ``password``, then a TOTP authenticator; return them and the URL Keycloak sends the browser back to."""
        where = self.open(link)
        totp: pyotp.TOTP | None = None
        step = 0
        order: list[str] = []
        for _ in range(8):
            if isinstance(where, str):
                assert totp is not None, f"sent back to {where} before TOTP was configured"
                return Enrolled(password, totp, where, step, tuple(order))
            if PASSWORD_FORM_ID in where.forms:
                order.append("password")
                where = self.submit(where, PASSWORD_FORM_ID, {"password-new": password, "password-confirm": password})
            elif TOTP_FORM_ID in where.forms:
                order.append("totp")
                totp = totp_for(where.forms[TOTP_FORM_ID].inputs["totpSecret"])
                step = int(time.time() // 30)
                where = self.submit(where, TOTP_FORM_ID, {"totp": totp.now(), "userLabel": "test phone"})
            else:
                where = self._proceed(where)
        raise AssertionError(f"Keycloak's required actions did not end: {self.pages[-1].describe()}")
