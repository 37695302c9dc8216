"""The person's side of ``infracalc login``: Keycloak's device verification pages, driven with ``requests``.

The verification URL with its code (``verification_uri_complete``) leads straight to the realm's
login form (the ``infracalc-cli`` client's browser flow: password, then one-time code), then to
Keycloak's consent page for the device ("grant access to INFRACALC CLI"), whose ``accept`` or
``cancel`` button ends at ``/device/status``. Redirects are followed by hand and Keycloak's
``Secure`` cookie flags cleared, as :mod:`tests.support.oidc_browser` does.

:class:`CliLogin` runs ``infracalc login`` as a process and reads the verification URL from its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.support.oidc_browser import KeycloakPage

_TIMEOUT = 30.0
_CONSENT_ACTION = re.compile(r'<form[^>]*action="([^"]*/login-actions/consent[^"]*)"')
_CODE_INPUT = re.compile(r'name="code" value="([^"]+)"')
_URL = re.compile(r"https?://\S+/device\?user_code=[A-Z]{4}-[A-Z]{4}")


@dataclass
class DevicePage:
    """Where the person's browser stopped: a Keycloak page (login, OTP, consent, status...)."""

    url: str
    status: int
    html: str
    keycloak: KeycloakPage

    @property
    def is_consent(self) -> bool:
        return _CONSENT_ACTION.search(self.html) is not None

    @property
    def is_done(self) -> bool:
        return "/device/status" in self.url


class DeviceBrowser:
    """One browser (one cookie jar) on Keycloak's device verification pages."""

    def __init__(self, accept_language: str | None = None) -> None:
        self.session = requests.Session()
        if accept_language is not None:
            self.session.headers["Accept-Language"] = accept_language

    def _follow(self, response: requests.Response) -> DevicePage:
        for _ in range(20):
            for cookie in self.session.cookies:  # Keycloak marks its cookies Secure even over http
                cookie.secure = False
            if not response.is_redirect:
                return DevicePage(response.url, response.status_code, response.text, KeycloakPage.parse(response))
            location = urljoin(response.url, response.headers["Location"])
            response = self.session.get(location, allow_redirects=False, timeout=_TIMEOUT)
        raise AssertionError(f"too many redirects, last at {response.url}")

    def open(self, url: str) -> DevicePage:
        """Open the verification URL (with its code): the login form, normally."""
        return self._follow(self.session.get(url, allow_redirects=False, timeout=_TIMEOUT))

    def submit(self, page: DevicePage, form_id: str, fields: Mapping[str, str]) -> DevicePage:
        """Post a Keycloak form of ``page`` (``kc-form-login``, ``kc-otp-login-form``...)."""
        form = page.keycloak.form(form_id)
        posted = self.session.post(
            urljoin(page.url, form.action), data={**form.inputs, **fields}, allow_redirects=False, timeout=_TIMEOUT
        )
        return self._follow(posted)

    def consent(self, page: DevicePage, *, accept: bool = True) -> DevicePage:
        """Answer Keycloak's consent page for the device: grant (``accept``) or refuse."""
        action, code = _CONSENT_ACTION.search(page.html), _CODE_INPUT.search(page.html)
        assert action is not None, f"not a consent page: {page.url}"
        assert code is not None, f"not a consent page: {page.url}"
        button = {"accept": "yes"} if accept else {"cancel": "no"}
        posted = self.session.post(
            urljoin(page.url, unescape(action.group(1))),
            data={"code": code.group(1), **button},
            allow_redirects=False,
            timeout=_TIMEOUT,
        )
        return self._follow(posted)

    def approve(self, url: str, username: str, password: str, otp: str) -> DevicePage:
        """The whole verification: password, one-time code, consent; the status page it ends on."""
        page = self.submit(self.open(url), "kc-form-login", {"username": username, "password": password})
        assert page.keycloak.kind == "otp", page.keycloak.describe()
        page = self.submit(page, "kc-otp-login-form", {"otp": otp})
        assert page.is_consent, page.keycloak.describe()
        done = self.consent(page)
        assert done.is_done, done.keycloak.describe()
        return done


@dataclass
class CliLogin:
    """``infracalc login`` running as a process, its output collected as it comes."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, keycloak_url: str, config_home: Path, *extra: str, env: Mapping[str, str] | None = None) -> CliLogin:
        """Start ``infracalc login --keycloak-url keycloak_url`` with ``XDG_CONFIG_HOME=config_home``."""
        process = subprocess.Popen(
            [sys.executable, "-m", "infracalc", "login", "--keycloak-url", keycloak_url, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": str(config_home), **(env or {})},
        )
        login = cls(process)
        login._reader = threading.Thread(target=login._read, daemon=True)
        login._reader.start()
        return login

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def verification_url(self, timeout: float = 60.0) -> str:
        """The verification URL (with its code) the command printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _URL.search(self.output)
            if match:
                return match.group(0)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no verification URL in the output: {self.output!r}")

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the command to end; its exit status."""
        status = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return status
