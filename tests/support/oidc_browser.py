"""A browser-flow login driver for Keycloak, with ``requests`` instead of a browser.

It walks the authorization-code flow the hub uses (PKCE S256, state, nonce, ``acr_values=mfa``):
authorization endpoint, ``kc-form-login`` (username and password), ``kc-otp-login-form`` (TOTP),
then the redirect to the client's redirect URI, whose code it exchanges at the token endpoint.

Two details make this work over plain HTTP:

- Keycloak marks its auth-session cookies ``Secure; SameSite=None`` even over http, and
  ``requests`` would then never send them back ("cookie not found"): the driver clears the
  ``secure`` flag of every cookie after each response.
- Redirects are followed by hand, so that the driver stops at the redirect to the client
  (nothing listens there) and can tell which Keycloak page it stopped on otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

LOGIN_FORM_ID = "kc-form-login"
OTP_FORM_ID = "kc-otp-login-form"
CONFIGURE_TOTP_FORM_ID = "kc-totp-settings-form"

PageKind = Literal["login", "otp", "configure-totp", "error", "other"]

_MAX_REDIRECTS = 20
_TIMEOUT = 30.0


@dataclass
class HtmlForm:
    """A form of a page: its id, where it posts, and its named inputs with their values."""

    form_id: str
    action: str
    inputs: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects the forms (id, action, named inputs) and the feedback messages of a Keycloak page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, HtmlForm] = {}
        self.messages: list[str] = []
        self.title_parts: list[str] = []
        self._form: HtmlForm | None = None
        self._message_depth = 0
        self._message_parts: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = HtmlForm(attributes.get("id", ""), attributes.get("action", ""))
            self.forms[self._form.form_id] = self._form
        elif tag == "input" and self._form is not None and attributes.get("name"):
            self._form.inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "title":
            self._in_title = True
        classes = attributes.get("class", "").split()
        element_id = attributes.get("id", "")
        if self._message_depth:
            self._message_depth += 1
        elif "kc-feedback-text" in classes or element_id.startswith("input-error") or element_id == "kc-error-message":
            self._message_depth = 1
            self._message_parts = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "title":
            self._in_title = False
        if self._message_depth:
            self._message_depth -= 1
            if self._message_depth == 0:
                text = " ".join(" ".join(self._message_parts).split())
                if text:
                    self.messages.append(text)

    def handle_data(self, data: str) -> None:
        if self._message_depth:
            self._message_parts.append(data)
        if self._in_title:
            self.title_parts.append(data)


@dataclass(frozen=True)
class KeycloakPage:
    """A page Keycloak showed instead of redirecting to the client."""

    url: str
    status: int
    html: str
    kind: PageKind
    messages: tuple[str, ...]
    forms: dict[str, HtmlForm] = field(repr=False)

    @classmethod
    def parse(cls, response: requests.Response) -> KeycloakPage:
        parser = _PageParser()
        parser.feed(response.text)
        forms = parser.forms
        kind: PageKind
        if LOGIN_FORM_ID in forms:
            kind = "login"
        elif OTP_FORM_ID in forms:
            kind = "otp"
        elif CONFIGURE_TOTP_FORM_ID in forms:
            kind = "configure-totp"
        elif response.status_code >= 400 or parser.messages:
            kind = "error"
        else:
            kind = "other"
        return cls(response.url, response.status_code, response.text, kind, tuple(parser.messages), forms)

    def form(self, form_id: str) -> HtmlForm:
        try:
            return self.forms[form_id]
        except KeyError:
            raise LoginIncomplete(self, f"expected the form {form_id!r}") from None

    def describe(self) -> str:
        return f"{self.kind} page (HTTP {self.status}) at {self.url}; messages: {list(self.messages)}"


@dataclass(frozen=True)
class ClientRedirect:
    """Keycloak's redirect back to the client: a code, or an OAuth error."""

    url: str
    params: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.params.get("code")


class LoginIncomplete(AssertionError):
    """The flow ended without an authorization code; ``page`` (or ``redirect``) says where it stopped."""

    def __init__(self, where: KeycloakPage | ClientRedirect, reason: str) -> None:
        self.page = where if isinstance(where, KeycloakPage) else None
        self.redirect = where if isinstance(where, ClientRedirect) else None
        detail = where.describe() if isinstance(where, KeycloakPage) else f"redirect {where.params}"
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class TokenResponse:
    """What the token endpoint answered to the code exchange."""

    access_token: str
    id_token: str
    refresh_token: str | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class LoginResult:
    """A completed browser-flow login: the authorization code and the tokens it was exchanged for."""

    code: str
    tokens: TokenResponse
    nonce: str


class OidcBrowser:
    """One browser (one cookie jar) logging in to one client of one realm."""

    def __init__(
        self,
        base_url: str,
        realm: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        acr_values: str | None = "mfa",
        scope: str = "openid",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.acr_values = acr_values
        self.scope = scope
        self.session = requests.Session()
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)
        self.code_verifier = secrets.token_urlsafe(48)

    @property
    def oidc_url(self) -> str:
        return f"{self.base_url}/realms/{self.realm}/protocol/openid-connect"

    # -- steps -------------------------------------------------------------------------------

    def start(self) -> KeycloakPage | ClientRedirect:
        """Open the authorization endpoint; return the page Keycloak shows (the login form, normally)."""
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.code_verifier.encode()).digest()).rstrip(b"=")
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
        if self.acr_values:
            params["acr_values"] = self.acr_values
        return self._follow(
            self.session.get(f"{self.oidc_url}/auth", params=params, allow_redirects=False, timeout=_TIMEOUT)
        )

    def submit_password(self, page: KeycloakPage, username: str, password: str) -> KeycloakPage | ClientRedirect:
        """Fill and post ``kc-form-login``."""
        return self.submit_form(page, LOGIN_FORM_ID, {"username": username, "password": password})

    def submit_otp(self, page: KeycloakPage, code: str) -> KeycloakPage | ClientRedirect:
        """Fill and post ``kc-otp-login-form``."""
        return self.submit_form(page, OTP_FORM_ID, {"otp": code})

    def exchange(self, code: str) -> TokenResponse:
        """Exchange ``code`` (with the PKCE verifier, and the client secret unless the client is public)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier,
        }
        if self.client_secret:
            auth: tuple[str, str] | None = (self.client_id, self.client_secret)
        else:  # a public client (Keycloak's account console) names itself in the form
            auth, form["client_id"] = None, self.client_id
        response = requests.post(f"{self.oidc_url}/token", data=form, auth=auth, timeout=_TIMEOUT)
        if response.status_code != 200:
            raise AssertionError(f"code exchange refused: HTTP {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return TokenResponse(body["access_token"], body["id_token"], body.get("refresh_token"), body)

    def login(self, username: str, password: str, otp: str | None) -> LoginResult:
        """The whole flow: password, then ``otp`` when Keycloak asks for it, then the code exchange.

        Raises:
            LoginIncomplete: Keycloak did not redirect to the client with a code; the exception holds the page
                it showed (login error, OTP form, lockout message, ...) or the error redirect.
        """
        where = self.start()
        if isinstance(where, ClientRedirect):
            raise LoginIncomplete(where, "redirected before any form")
        where = self.submit_password(where, username, password)
        if isinstance(where, KeycloakPage) and where.kind == "otp" and otp is not None:
            where = self.submit_otp(where, otp)
        return self.finish(where)

    def finish(self, where: KeycloakPage | ClientRedirect) -> LoginResult:
        """Turn the end of a flow into a :class:`LoginResult`, or raise :class:`LoginIncomplete`."""
        if isinstance(where, KeycloakPage):
            raise LoginIncomplete(where, "Keycloak did not redirect to the client")
        if where.params.get("state") != self.state:
            raise LoginIncomplete(where, "the redirect's state is not ours")
        code = where.code
        if code is None:
            raise LoginIncomplete(where, "the redirect carries no code")
        return LoginResult(code, self.exchange(code), self.nonce)

    # -- plumbing ----------------------------------------------------------------------------

    def visit(self, url: str, params: dict[str, str] | None = None) -> KeycloakPage | ClientRedirect:
        """GET ``url`` in this browser (its cookies), following Keycloak's redirects."""
        return self._follow(self.session.get(url, params=params, allow_redirects=False, timeout=_TIMEOUT))

    def submit_form(self, page: KeycloakPage, form_id: str, fields: dict[str, str]) -> KeycloakPage | ClientRedirect:
        """Post the form ``form_id`` of ``page`` with its hidden inputs and ``fields``; follow the redirects."""
        form = page.form(form_id)
        data = {**form.inputs, **fields}
        action = urljoin(page.url, form.action)
        return self._follow(self.session.post(action, data=data, allow_redirects=False, timeout=_TIMEOUT))

    def _follow(self, response: requests.Response) -> KeycloakPage | ClientRedirect:
        for _ in range(_MAX_REDIRECTS):
            self._clear_secure_flags()
            if not response.is_redirect:
                return KeycloakPage.parse(response)
            location = urljoin(response.url, response.headers["Location"])
            if self._is_client_redirect(location):
                query = parse_qs(urlsplit(location).query)
                return ClientRedirect(location, {key: values[0] for key, values in query.items()})
            response = self.session.get(location, allow_redirects=False, timeout=_TIMEOUT)
        raise AssertionError(f"more than {_MAX_REDIRECTS} redirects, last at {response.url}")

    def _is_client_redirect(self, location: str) -> bool:
        target, expected = urlsplit(location), urlsplit(self.redirect_uri)
        return (target.scheme, target.netloc, target.path) == (expected.scheme, expected.netloc, expected.path)

    def _clear_secure_flags(self) -> None:
        # Keycloak sets Secure even over http; requests would then withhold the cookies.
        for cookie in self.session.cookies:
            cookie.secure = False
