"""What a person reads when the hub refuses a sign-in: in French or English, with where to put it right.

A refusal is a code and its parameters (:class:`Refusal`), never an English sentence to translate
afterwards: the login policy's decisions carry a ``code`` (``source_not_registered``,
``network_required``...) and the authenticator's own refusals have theirs. :func:`refusal_page`
renders the page in the person's language (:func:`person_language`) and, when the person can fix the
cause themselves, links to the place: the networks section of the console's home page (in the same
language) for an address outside the registered networks, or no network registered yet.

The language, first that applies: the ``locale`` claim of the verified ID token (what the person chose
on Keycloak's pages; Keycloak keeps it on the account), then the browser's ``Accept-Language`` (French
or English, by quality), then French, the platform's default.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode

from tornado import web

#: The languages of the pages, the first being the default.
LANGUAGES: Final = ("fr", "en")
DEFAULT_LANGUAGE: Final = LANGUAGES[0]
#: Where a person registers their networks: an anchor of the console's home page.
NETWORKS_ANCHOR: Final = "networks-heading"

#: The texts, by language and code; ``{source_ip}`` and ``{reason}`` are filled in (escaped).
TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "fr": {
        "title": "Connexion refusée",
        "heading": "Connexion à INFRACALC refusée",
        "second_factor_missing": "INFRACALC exige une connexion à deux facteurs : votre mot de passe et le code à"
        " usage unique de votre application d'authentification.",
        "unverified": "INFRACALC exige une connexion à deux facteurs (mot de passe et code à usage unique), et cette"
        " connexion n'a pas pu être vérifiée. Connectez-vous à nouveau.",
        "keys_unavailable": "INFRACALC n'a pas pu vérifier votre connexion pour le moment. Réessayez dans une minute.",
        "source_unknown": "INFRACALC n'a pas pu déterminer l'adresse depuis laquelle vous vous connectez.",
        "policy_unavailable": "INFRACALC n'a pas pu consulter ses règles de connexion pour le moment. Réessayez dans"
        " une minute.",
        "source_not_registered": "Vous vous connectez depuis l'adresse {source_ip}, qui n'appartient à aucun des"
        " réseaux que vous avez enregistrés.",
        "network_required": "Vous êtes membre d'un projet sous gouvernance CASD : enregistrez d'abord le réseau"
        " depuis lequel vous vous connectez (votre adresse actuelle est {source_ip}).",
        "other": "Connexion refusée : {reason}.",
        "fix_networks": "Enregistrer un réseau dans la console INFRACALC",
        "fix_networks_help": "La console accepte une connexion depuis n'importe quelle adresse ; ajoutez-y votre"
        " réseau, puis reconnectez-vous ici.",
        "retry": "Se connecter à nouveau",
    },
    "en": {
        "title": "Sign-in refused",
        "heading": "Sign-in to INFRACALC refused",
        "second_factor_missing": "INFRACALC requires two-factor sign-in: your password and the one-time code of your"
        " authenticator app.",
        "unverified": "INFRACALC requires two-factor sign-in (password and one-time code), and this sign-in could"
        " not be verified. Please sign in again.",
        "keys_unavailable": "INFRACALC could not verify your sign-in just now. Please try again in a minute.",
        "source_unknown": "INFRACALC could not determine the address you are connecting from.",
        "policy_unavailable": "INFRACALC could not check its sign-in rules just now. Please try again in a minute.",
        "source_not_registered": "You are connecting from {source_ip}, which is in none of the networks you"
        " registered.",
        "network_required": "You are a member of a project under CASD governance: register the network you connect"
        " from first (your address now is {source_ip}).",
        "other": "Sign-in refused: {reason}.",
        "fix_networks": "Register a network in the INFRACALC console",
        "fix_networks_help": "The console accepts a sign-in from any address; add your network there, then sign in"
        " here again.",
        "retry": "Sign in again",
    },
}

#: The codes whose cause the person fixes by registering a network.
NETWORK_CODES: Final = frozenset({"source_not_registered", "network_required"})
_KNOWN_CODES: Final = frozenset(TEXTS[DEFAULT_LANGUAGE]) - {"title", "heading", "fix_networks", "fix_networks_help"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a sign-in was refused, as a code and its parameters (``source_ip``, ``reason``)."""

    code: str
    params: Mapping[str, str] = field(default_factory=dict)

    def text(self, language: str) -> str:
        """The sentence the person reads, in ``language`` (French when it is not one of :data:`LANGUAGES`)."""
        texts = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
        code = self.code if self.code in _KNOWN_CODES else "other"
        values = {"source_ip": "?", "reason": self.code, **self.params}
        return texts[code].format(**values)


class LoginRefused(web.HTTPError):
    """A sign-in (or refresh) refused: 403, a reason for the log, a :class:`Refusal` for the person.

    The hub's callback shows :func:`refusal_page` (see :mod:`infracalc.hub.login_pages`); JupyterHub's
    own error page, should another handler render it, shows ``jupyterhub_message`` (the English text).
    tornado logs the reason. None of them ever holds a token.
    """

    def __init__(self, reason: str, refusal: Refusal, *, locale: str | None = None) -> None:
        super().__init__(403, "%s", reason)
        self.refusal = refusal
        #: The ``locale`` claim of the verified ID token, when the refusal came after its verification.
        self.locale = locale
        #: What JupyterHub's own error page would show.
        self.jupyterhub_message = refusal.text("en")


def _accepted(header: str) -> list[tuple[float, int, str]]:
    """``Accept-Language``'s languages as (quality, position, primary subtag), best first."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)


def person_language(accept_language: str | None, locale: str | None = None) -> str:
    """The language of a person's pages: the ``locale`` claim, else ``Accept-Language``, else French."""
    if locale:
        primary = locale.split("-")[0].split("_")[0].lower()
        if primary in LANGUAGES:
            return primary
    for _, _, primary in _accepted(accept_language or ""):
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            break
    return DEFAULT_LANGUAGE


def networks_url(console_url: str, language: str) -> str:
    """The console's networks section, opened in ``language``."""
    return f"{console_url.rstrip('/')}/?{urlencode({'lang': language})}#{NETWORKS_ANCHOR}"


def refusal_page(refusal: Refusal, language: str, *, console_url: str | None, retry_url: str) -> str:
    """The whole HTML page of a refused sign-in (escaped; no script), with a link to the fix when there is one."""
    texts = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
    escape = html.escape
    fix = ""
    if refusal.code in NETWORK_CODES and console_url:
        fix = (
            f'<p id="fix"><a id="fix-link" href="{escape(networks_url(console_url, language))}">'
            f"{escape(texts['fix_networks'])}</a></p>\n"
            f'<p class="help">{escape(texts["fix_networks_help"])}</p>\n'
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(texts['title'])} — INFRACALC</title>\n"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
        "line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}a{color:#0b4f9c}.help{color:#4a4a4a}</style>\n"
        "</head>\n<body>\n<main>\n"
        f'<h1 id="refusal-title">{escape(texts["heading"])}</h1>\n'
        f'<p id="refusal-message">{escape(refusal.text(language))}</p>\n'
        f"{fix}"
        f'<p><a id="retry" href="{escape(retry_url)}">{escape(texts["retry"])}</a></p>\n'
        "</main>\n</body>\n</html>\n"
    )


__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "NETWORKS_ANCHOR",
    "LoginRefused",
    "Refusal",
    "networks_url",
    "person_language",
    "refusal_page",
]
