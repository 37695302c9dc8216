"""The hub's two sign-in handlers, in the person's language: to Keycloak with ``ui_locales``, and back.

- :class:`LanguageLoginHandler` (``/hub/oauth_login``) is oauthenticator's, adding ``ui_locales`` to
  the authorization request: Keycloak's pages open in the browser's language (French or English,
  French by default; see :func:`~infracalc.hub.refusals.person_language`).
- :class:`RefusalPageCallbackHandler` (``/hub/oauth_callback``) is oauthenticator's, rendering a
  refused sign-in (:class:`~infracalc.hub.refusals.LoginRefused`) as INFRACALC's own page: the reason
  in the person's language and, when they can fix it, a link to the place (JupyterHub's error page is
  English only and would show the operator's log sentence as its title).
"""

from __future__ import annotations

from typing import Any

from jupyterhub.utils import url_path_join
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler

from infracalc.hub.refusals import LoginRefused, person_language, refusal_page


class LanguageLoginHandler(OAuthLoginHandler):  # type: ignore[misc]
    """oauthenticator's login redirect, asking Keycloak for the person's language (``ui_locales``)."""

    def authorize_redirect(self, *args: Any, **kwargs: Any) -> None:
        """Redirect to Keycloak's authorization endpoint with ``ui_locales`` added to the parameters."""
        extra_params = dict(kwargs.pop("extra_params", None) or {})
        extra_params["ui_locales"] = person_language(self.request.headers.get("Accept-Language"))
        super().authorize_redirect(*args, extra_params=extra_params, **kwargs)


class RefusalPageCallbackHandler(OAuthCallbackHandler):  # type: ignore[misc]
    """oauthenticator's callback, with INFRACALC's refusal page for a refused sign-in."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A :class:`LoginRefused` gets the refusal page; any other error JupyterHub's page."""
        exc_info = kwargs.get("exc_info")
        refused = exc_info[1] if exc_info else None
        if not isinstance(refused, LoginRefused):
            super().write_error(status_code, **kwargs)
            return
        language = person_language(self.request.headers.get("Accept-Language"), refused.locale)
        page = refusal_page(
            refused.refusal,
            language,
            console_url=getattr(self.authenticator, "console_url", None) or None,
            retry_url=url_path_join(self.hub.base_url, "oauth_login"),
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Language", language)
        self.clear_header("Content-Length")
        self.finish(page)
