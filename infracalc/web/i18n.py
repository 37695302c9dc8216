"""The pages' words in French (the default) and English, and how a request picks its language.

A page asks for a message by key (``t("enroll.title")``), with named values filled in after the
lookup (``t("enroll.invited", project=...)``); Jinja escapes the result like any other value. The
language comes from ``?lang=`` (which the layout's switch sets, and which is remembered in a
cookie), then from that cookie, then French.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

#: The languages of the pages, the first being the default.
LANGUAGES: Final = ("fr", "en")
DEFAULT_LANGUAGE: Final = LANGUAGES[0]
#: The cookie that remembers the language chosen with the switch.
LANGUAGE_COOKIE: Final = "infracalc_lang"

Translate = Callable[..., str]

MESSAGES: Final[Mapping[str, Mapping[str, str]]] = {
    "fr": {
        "site.name": "INFRACALC",
        "site.tagline": "Bulles de calcul sécurisées du CASD",
        "site.skip": "Aller au contenu",
        "site.language": "Langue",
        "site.other_language": "English",
        "role.lead": "responsable du projet",
        "role.member": "membre du projet",
        "enroll.title": "Inscription à INFRACALC",
        "enroll.hello": "Bonjour {name},",
        "enroll.invited": "Le CASD vous invite à rejoindre le projet « {title} » ({project}) en tant que {role}.",
        "enroll.account": "Votre identifiant sera {username} ; l'adresse de l'invitation est {email}.",
        "enroll.expires": "Ce lien est valable jusqu'au {when} et ne sert qu'une fois.",
        "enroll.steps": "Ce qui va se passer",
        "enroll.step1": "Vous confirmez ici et indiquez le ou les réseaux depuis lesquels vous vous connecterez.",
        "enroll.step2": "Keycloak, le service d'identité, vous envoie un e-mail : ouvrez son lien dans ce navigateur.",
        "enroll.step3": "Vous y choisissez votre mot de passe, puis vous enregistrez une application TOTP "
        "(FreeOTP, Google Authenticator…) en scannant un QR code.",
        "enroll.step4": "Vous revenez ici : votre accès au projet est alors ouvert.",
        "enroll.networks": "Vos réseaux (un par ligne)",
        "enroll.networks_help": "Une adresse ou un réseau au format CIDR : au plus /24 en IPv4, /56 en IPv6. "
        "Votre adresse actuelle vue par INFRACALC est proposée ({address}).",
        "enroll.networks_help_unknown": "Une adresse ou un réseau au format CIDR : au plus /24 en IPv4, /56 en IPv6.",
        "enroll.accept": "J'accepte cette invitation et les conditions d'usage du projet.",
        "enroll.accept_required": "Cochez la case pour accepter l'invitation.",
        "enroll.submit": "Confirmer et recevoir le lien de Keycloak",
        "enroll.error_summary": "Le formulaire contient une erreur :",
        "mailbox.title": "Consultez votre messagerie",
        "mailbox.sent": "Keycloak vient d'envoyer un e-mail à {email}. Ouvrez son lien dans ce navigateur : "
        "vous choisirez votre mot de passe puis configurerez votre code à usage unique (TOTP).",
        "mailbox.networks": "Réseaux enregistrés à la fin de l'inscription :",
        "mailbox.finish": "J'ai terminé dans Keycloak",
        "mailbox.again": "Renvoyer l'e-mail de Keycloak",
        "done.title": "Inscription terminée",
        "done.text": "Votre compte {username} est prêt : vous êtes {role} du projet « {title} ». "
        "Connectez-vous avec votre mot de passe et le code de votre application TOTP, depuis un des réseaux "
        "enregistrés.",
        "refused.title": "Ce lien ne peut pas être utilisé",
        "refused.unknown": "Ce lien d'inscription est inconnu (un lien plus récent l'a peut-être remplacé).",
        "refused.expired": "Ce lien d'inscription a expiré : demandez au CASD de vous en envoyer un nouveau.",
        "refused.completed": "Ce lien a déjà servi : connectez-vous avec votre mot de passe et votre code.",
        "refused.revoked": "Cette invitation a été retirée par le CASD.",
        "refused.other_browser": "Cette invitation a été confirmée dans un autre navigateur : poursuivez dans "
        "celui-là, ou demandez au CASD un nouveau lien.",
        "refused.not_finished": "Keycloak n'a pas encore votre mot de passe et votre application TOTP : suivez le "
        "lien de son e-mail, puis revenez.",
        "unavailable.title": "Service momentanément indisponible",
        "unavailable.text": "Le service d'identité ne répond pas. Réessayez dans quelques minutes.",
        "unavailable.mail": "Votre confirmation est enregistrée, mais Keycloak n'a pas pu envoyer son e-mail. "
        "Rouvrez votre lien d'invitation dans ce navigateur dans quelques minutes pour le renvoyer, ou prévenez "
        "le CASD.",
        "csrf.title": "Formulaire expiré",
    },
    "en": {
        "site.name": "INFRACALC",
        "site.tagline": "CASD's secure computing bubbles",
        "site.skip": "Skip to content",
        "site.language": "Language",
        "site.other_language": "Français",
        "role.lead": "project lead",
        "role.member": "project member",
        "enroll.title": "Enrolling in INFRACALC",
        "enroll.hello": "Hello {name},",
        "enroll.invited": "CASD invites you to join the project “{title}” ({project}) as {role}.",
        "enroll.account": "Your username will be {username}; the invitation's address is {email}.",
        "enroll.expires": "This link is valid until {when} and works once.",
        "enroll.steps": "What will happen",
        "enroll.step1": "You confirm here and give the network or networks you will sign in from.",
        "enroll.step2": "Keycloak, the identity service, e-mails you: open its link in this browser.",
        "enroll.step3": "There you choose your password, then register a TOTP app (FreeOTP, Google "
        "Authenticator…) by scanning a QR code.",
        "enroll.step4": "You come back here: your access to the project is then open.",
        "enroll.networks": "Your networks (one per line)",
        "enroll.networks_help": "An address or a network in CIDR form: /24 at widest in IPv4, /56 in IPv6. "
        "Your current address as INFRACALC sees it is proposed ({address}).",
        "enroll.networks_help_unknown": "An address or a network in CIDR form: /24 at widest in IPv4, /56 in IPv6.",
        "enroll.accept": "I accept this invitation and the project's terms of use.",
        "enroll.accept_required": "Tick the box to accept the invitation.",
        "enroll.submit": "Confirm and get Keycloak's link",
        "enroll.error_summary": "The form has an error:",
        "mailbox.title": "Check your mailbox",
        "mailbox.sent": "Keycloak just sent an e-mail to {email}. Open its link in this browser: you will choose "
        "your password, then set up your one-time code (TOTP).",
        "mailbox.networks": "Networks registered when enrollment completes:",
        "mailbox.finish": "I am done in Keycloak",
        "mailbox.again": "Send Keycloak's e-mail again",
        "done.title": "Enrollment complete",
        "done.text": "Your account {username} is ready: you are {role} of the project “{title}”. Sign in with your "
        "password and the code of your TOTP app, from one of your registered networks.",
        "refused.title": "This link cannot be used",
        "refused.unknown": "This enrollment link is unknown (a newer one may have replaced it).",
        "refused.expired": "This enrollment link has expired: ask CASD to send you a new one.",
        "refused.completed": "This link was used already: sign in with your password and code.",
        "refused.revoked": "This invitation was withdrawn by CASD.",
        "refused.other_browser": "This invitation was confirmed in another browser: continue in that one, or ask "
        "CASD for a new link.",
        "refused.not_finished": "Keycloak does not hold your password and TOTP app yet: follow the link of its "
        "e-mail, then come back.",
        "unavailable.title": "Service temporarily unavailable",
        "unavailable.text": "The identity service does not answer. Try again in a few minutes.",
        "unavailable.mail": "Your confirmation is recorded, but Keycloak could not send its e-mail. Open your "
        "invitation link again in this browser in a few minutes to send it again, or tell CASD.",
        "csrf.title": "Form expired",
    },
}


def pick_language(query: str | None, cookie: str | None) -> str:
    """The language of a request: ``?lang=``, else the remembered one, else French; unknown values are ignored."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def translator(language: str) -> Translate:
    """``t(key, **values)`` for ``language``: the message with ``{name}`` fields filled in.

    A key missing from the catalogue raises ``KeyError``: a test renders every page in both languages.
    """
    catalogue = MESSAGES[language]

    def translate(key: str, /, **values: Any) -> str:
        text = catalogue[key]
        return text.format(**values) if values else text

    return translate
