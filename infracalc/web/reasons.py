"""The domain's and the policy's reasons in the page's language: English as written, French from a catalogue.

OPA's reasons (``policies/infracalc/authz/authz.rego``, and ``egress/egress.rego`` for the URL
check) and the domain's messages (``infracalc/service/**``, the CASD modules, the host and network
validators) are English sentences, and the API keeps them so. A page in French shows them through
:func:`translate_reason`: each catalogue entry is an English sentence with named fields
(``"only CASD staff may {staff_what}"``) and its French sentence; the text is matched against the
English side, and the values found are put into the French side, themselves translated when they
are one of the policy's phrases (``"create projects"``), an action name (``project.create``) or a
state (``approved``). A text that matches no entry is shown as it is: a reason is never lost,
only left in English (a unit test parses the policy so that none of its reasons is).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: The language whose text is the domain's own.
SOURCE_LANGUAGE: Final = "en"

# -- the values a reason holds --------------------------------------------------------------------

#: What only CASD staff may do (``staff_actions`` of the policy), as the policy words it.
STAFF_WHAT: Final[Mapping[str, str]] = {
    "revoke bubbles": "révoquer des bulles",
    "create projects": "créer des projets",
    "read the audit log": "lire le journal d'audit",
    "verify the audit log": "vérifier le journal d'audit",
    "approve or deny egress requests": "approuver ou refuser les demandes d'accès externe",
    "read sessions": "lire les sessions",
    "see the imports waiting for review": "voir les imports en attente de relecture",
    "approve or reject imports": "publier ou refuser des imports",
    "re-tag a project's stored objects": "réétiqueter les objets stockés d'un projet",
    "search sessions": "rechercher des sessions",
    "invite people": "inviter des personnes",
    "list invitations": "lister les invitations",
    "resend invitations": "renvoyer des invitations",
    "revoke invitations": "révoquer des invitations",
    "list the exports awaiting review": "lister les exports en attente de relecture",
    "read exports under review": "lire les exports en relecture",
    "read the export risk models": "lire les modèles de risque des exports",
    "promote or retire export risk models": "promouvoir ou retirer des modèles de risque des exports",
    "set the export risk models' recall bar": "fixer le seuil de rappel des modèles de risque des exports",
}

#: What is done to one person's things (``user_actions`` of the policy); the French takes the person after "de".
USER_WHAT: Final[Mapping[str, str]] = {
    "list the projects of": "lister les projets de",
    "read the registered networks of": "lire les réseaux enregistrés de",
    "change the registered networks of": "modifier les réseaux enregistrés de",
}

#: What a bubble does to its project's exports (``bubble_export_actions`` of the policy).
BUBBLE_WHAT: Final[Mapping[str, str]] = {"submit": "soumettre", "read": "lire"}

#: The API's actions (``known_actions`` of the policy), as a French phrase.
ACTIONS: Final[Mapping[str, str]] = {
    "me.read": "lire son profil",
    "project.create": "créer un projet",
    "project.list": "lister les projets",
    "project.read": "lire un projet",
    "member.put": "ajouter ou modifier un membre",
    "member.delete": "retirer un membre",
    "governance.switch": "changer la gouvernance d'un projet",
    "governance.history": "lire l'historique de gouvernance",
    "governance.retag": "réétiqueter les objets d'un projet",
    "audit.read": "lire le journal d'audit",
    "audit.verify": "vérifier le journal d'audit",
    "bubble.create": "créer une bulle",
    "bubble.address": "enregistrer l'adresse d'une bulle",
    "bubble.delete": "révoquer une bulle",
    "egress.request": "demander un accès externe",
    "egress.list": "lister les accès externes",
    "egress.decide": "décider d'une demande d'accès externe",
    "egress.revoke": "révoquer un accès externe",
    "egress.check": "vérifier une URL",
    "egress.events.record": "enregistrer des événements de sortie",
    "session.read": "lire une session",
    "session.search": "rechercher des sessions",
    "session.record": "enregistrer des événements de session",
    "session.code.record": "enregistrer le code exécuté",
    "user.projects": "lister les projets d'une personne",
    "user.networks.read": "lire les réseaux d'une personne",
    "user.networks.set": "modifier les réseaux d'une personne",
    "user.offboard": "désactiver le compte d'une personne",
    "enrollment.create": "inviter une personne",
    "enrollment.list": "lister les invitations",
    "enrollment.resend": "renvoyer une invitation",
    "enrollment.revoke": "révoquer une invitation",
    "import.create": "importer un fichier",
    "import.list": "lister les imports",
    "import.read": "lire un import",
    "import.queue": "voir les imports à relire",
    "import.review": "relire un import",
    "export.submit": "soumettre un export",
    "export.list": "lister les exports",
    "export.read": "lire un export",
    "export.queue": "voir les exports à relire",
    "export.review": "relire un export",
    "export.download": "télécharger un export",
    "export.inspect": "lire un export en relecture",
    "risk.read": "lire les modèles de risque",
    "risk.promote": "promouvoir un modèle de risque",
    "risk.bar": "fixer le seuil de rappel",
}

#: States of an egress request or rule (a "demande", a "règle": feminine).
EGRESS_STATES: Final[Mapping[str, str]] = {
    "requested": "en attente",
    "approved": "approuvée",
    "denied": "refusée",
    "revoked": "révoquée",
}

#: States of an export or an import (masculine).
FILE_STATES: Final[Mapping[str, str]] = {
    "submitted": "soumis",
    "checked": "contrôlé",
    "in_review": "en relecture",
    "changes_requested": "en attente de modifications",
    "approved": "approuvé",
    "rejected": "refusé",
    "released": "publié",
}

#: States of an invitation (feminine).
INVITATION_STATES: Final[Mapping[str, str]] = {
    "invited": "envoyée",
    "confirmed": "confirmée",
    "completed": "terminée",
    "revoked": "révoquée",
}

#: Votes on an export.
VERDICTS: Final[Mapping[str, str]] = {"approve": "approuver", "reject": "refuser", "changes": "modifications demandées"}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The values a field may hold and their French; ``closed``: any other value means another sentence."""

    phrases: Mapping[str, str]
    closed: bool = False


#: Fields whose values are translated too; any other field is a value (a name, a number) kept as it is.
VOCABULARIES: Final[Mapping[str, Vocabulary]] = {
    "staff_what": Vocabulary(STAFF_WHAT, closed=True),
    "user_what": Vocabulary(USER_WHAT, closed=True),
    "bubble_what": Vocabulary(BUBBLE_WHAT, closed=True),
    "action": Vocabulary(ACTIONS),
    "egress_state": Vocabulary(EGRESS_STATES),
    "file_state": Vocabulary(FILE_STATES),
    "to_state": Vocabulary(FILE_STATES),
    "from_state": Vocabulary(FILE_STATES),
    "invitation_state": Vocabulary(INVITATION_STATES),
    "verdict": Vocabulary(VERDICTS),
}

# -- the sentences --------------------------------------------------------------------------------

#: The policy's reasons (``authz.rego``), its ``sprintf`` templates with named fields.
POLICY_REASONS: Final[Mapping[str, str]] = {
    "no rule allows this request": "aucune règle n'autorise cette demande",
    "unknown caller kind": "type d'appelant inconnu",
    "people must sign in with a second factor (acr is not mfa)": "les personnes doivent se connecter avec un "
    "second facteur (acr n'est pas mfa)",
    "the caller has no username": "l'appelant n'a pas d'identifiant",
    "any signed-in person may read their own profile": "toute personne connectée peut lire son propre profil",
    "any signed-in person may list the projects they can see": "toute personne connectée peut lister les projets "
    "qu'elle peut voir",
    "only the egress proxy may record egress events": "seul le proxy de sortie peut enregistrer les événements de "
    "sortie",
    "only the hub may record session events": "seul le hub peut enregistrer les événements de session",
    "only the hub may record where a bubble runs": "seul le hub peut enregistrer l'adresse d'une bulle",
    "only a bubble may record the code run in it": "seule une bulle peut enregistrer le code qui y est exécuté",
    "exports are submitted from a bubble of the project": "les exports se soumettent depuis une bulle du projet",
    "no rule allows {action}": "aucune règle n'autorise l'action « {action} »",
    "CASD staff may {staff_what}": "le personnel du CASD peut {staff_what}",
    "only CASD staff may {staff_what}": "seul le personnel du CASD peut {staff_what}",
    "only CASD staff may offboard people": "seul le personnel du CASD peut désactiver le compte d'une personne",
    "CASD staff may not offboard themselves": "un membre du personnel du CASD ne peut pas désactiver son propre compte",
    "CASD staff may offboard {user}": "le personnel du CASD peut désactiver le compte de {user}",
    "the request names no project": "la demande ne nomme aucun projet",
    "unknown project": "projet inconnu",
    "CASD staff may read every project": "le personnel du CASD peut lire tous les projets",
    "{user} is a member of project {project}": "{user} est membre du projet {project}",
    "{user} is not a member of project {project}": "{user} n'est pas membre du projet {project}",
    "CASD staff may manage the members of every project": "le personnel du CASD peut gérer les membres de tous "
    "les projets",
    "a lead may not give up the lead role as the project's last lead; make another member lead first": "le "
    "dernier responsable d'un projet ne peut pas quitter ce rôle ; nommez d'abord un autre membre responsable",
    "leads of project {project} may manage its members": "les responsables du projet {project} peuvent en gérer "
    "les membres",
    "only CASD staff or a lead of project {project} may manage its members": "seuls le personnel du CASD et les "
    "responsables du projet {project} peuvent en gérer les membres",
    "CASD staff may manage the egress rules of every project": "le personnel du CASD peut gérer les accès "
    "externes de tous les projets",
    "leads of project {project} may request and revoke its egress rules": "les responsables du projet {project} "
    "peuvent en demander et révoquer les accès externes",
    "only CASD staff or a lead of project {project} may request or revoke its egress rules": "seuls le personnel "
    "du CASD et les responsables du projet {project} peuvent en demander ou révoquer les accès externes",
    "the request names no user": "la demande ne nomme aucun utilisateur",
    "CASD staff may {user_what} anyone": "le personnel du CASD peut {user_what} n'importe qui",
    "only CASD staff or {user} themself may {user_what} {user}": "seuls le personnel du CASD et {user} "
    "en personne peuvent {user_what} {user}",
    "people may list their own projects": "chacun peut lister ses propres projets",
    "people may read their own registered networks": "chacun peut lire ses propres réseaux enregistrés",
    "people may change their own registered networks soon after signing in": "chacun peut modifier ses propres "
    "réseaux enregistrés peu après s'être connecté",
    "change your registered networks within 5 minutes of signing in": "modifiez vos réseaux enregistrés dans les "
    "5 minutes qui suivent votre connexion",
    "only CASD staff may review exports": "seul le personnel du CASD peut relire les exports",
    "the request names no requester of the export": "la demande ne nomme pas le demandeur de l'export",
    "the requester of an export may not review it": "le demandeur d'un export ne peut pas le relire",
    "CASD staff may review the exports of others": "le personnel du CASD peut relire les exports des autres",
    "only members of project {project} may download its exports": "seuls les membres du projet {project} peuvent "
    "en télécharger les exports",
    "CASD staff may import files into every project": "le personnel du CASD peut importer des fichiers dans tous "
    "les projets",
    "members of project {project} may import files into it": "les membres du projet {project} peuvent y importer "
    "des fichiers",
    "only members of project {project} and CASD staff may import files into it": "seuls les membres du projet "
    "{project} et le personnel du CASD peuvent y importer des fichiers",
    "CASD staff may switch a project's governance": "le personnel du CASD peut changer la gouvernance d'un projet",
    "only CASD staff may switch a project's governance, not its leads": "seul le personnel du CASD peut changer "
    "la gouvernance d'un projet, pas ses responsables",
    "only CASD staff may switch a project's governance": "seul le personnel du CASD peut changer la gouvernance "
    "d'un projet",
    "a bubble may read its own project": "une bulle peut lire son propre projet",
    "a bubble may read the imports of its own project": "une bulle peut lire les imports de son propre projet",
    "bubbles may only read their own project": "une bulle ne peut lire que son propre projet",
    "the request names no session": "la demande ne nomme aucune session",
    "a bubble may record the code run in it into its own session": "une bulle peut enregistrer le code qui y est "
    "exécuté dans sa propre session",
    "a bubble may record code into its own session only": "une bulle ne peut enregistrer du code que dans sa "
    "propre session",
    "a bubble may {bubble_what} exports of its own project": "une bulle peut {bubble_what} les exports de son "
    "propre projet",
    "a bubble may only submit and read exports of its own project": "une bulle ne peut que soumettre et lire les "
    "exports de son propre projet",
    "the hub may list projects": "le hub peut lister les projets",
    "the hub may read every project": "le hub peut lire tous les projets",
    "the hub may stop the bubbles it started": "le hub peut arrêter les bulles qu'il a démarrées",
    "the hub may record where the bubbles it starts run": "le hub peut enregistrer l'adresse des bulles qu'il démarre",
    "the hub may list the projects of any user": "le hub peut lister les projets de tout utilisateur",
    "the hub may record its events in sessions": "le hub peut enregistrer ses événements dans les sessions",
    "the hub may only read projects and users' projects, start or stop bubbles and record session events": "le hub "
    "ne peut que lire les projets et ceux des utilisateurs, démarrer ou arrêter des bulles et enregistrer des "
    "événements de session",
    "the egress proxy may record egress events": "le proxy de sortie peut enregistrer les événements de sortie",
    "the egress proxy may only record egress events": "le proxy de sortie ne peut qu'enregistrer les événements de "
    "sortie",
}

#: The egress policy's reasons (``egress.rego``), which the project page's URL check shows.
EGRESS_REASONS: Final[Mapping[str, str]] = {
    "no rule allows this connection": "aucune règle n'autorise cette connexion",
    "rule {rule} of project {project} allows {host}:{port}": "l'accès {rule} du projet {project} autorise "
    "{host}:{port}",
    "rule {rule} of project {project} inspects {host}:{port}": "l'accès {rule} du projet {project} inspecte "
    "{host}:{port} (chaque requête est décidée)",
    "unknown bubble, revoked bubble or wrong token": "bulle inconnue, bulle révoquée ou jeton erroné",
    "{user} is no longer a member of project {project}: the bubble's credentials are revoked": "{user} n'est plus "
    "membre du projet {project} : les identifiants de la bulle sont révoqués",
    "bubble {bubble} has no registered address yet: it may not connect": "la bulle {bubble} n'a pas encore "
    "d'adresse enregistrée : elle ne peut pas se connecter",
    "the credentials of bubble {bubble} work only from the bubble's own address": "les identifiants de la bulle "
    "{bubble} ne servent que depuis l'adresse de la bulle",
    "the request names no bubble (bubble.id)": "la demande ne nomme aucune bulle (bubble.id)",
    "the request names no project (bubble.project)": "la demande ne nomme aucun projet (bubble.project)",
    "project {project} is under CASD governance: no external API": "le projet {project} est sous gouvernance "
    "CASD : aucune API externe",
    "project {project} has no known governance owner: no external API": "le projet {project} n'a pas de "
    "gouvernance connue : aucune API externe",
    "the request names no host": "la demande ne nomme aucun hôte",
    "malformed host {host}": "hôte mal formé : {host}",
    "the port must be an integer from 1 to 65535": "le port doit être un entier de 1 à 65535",
    "the scheme must be connect, http or https": "le schéma doit être connect, http ou https",
    "a request must name its method": "une requête doit nommer sa méthode",
    "a request must name a path starting with /": "une requête doit nommer un chemin commençant par /",
    "a request must give body_bytes, request_bytes and sent_today (byte counts)": "une requête doit donner "
    "body_bytes, request_bytes et sent_today (des nombres d'octets)",
    "the request's body of {size} bytes is over rule {rule}'s cap of {cap} bytes per request": "le corps de la "
    "requête, de {size} octets, dépasse le plafond de l'accès {rule} : {cap} octets par requête",
    "rule {rule}'s budget of {budget} bytes a day to {host} for this bubble is spent: {sent} sent today, this "
    "request needs {needed}": "le budget de l'accès {rule}, {budget} octets par jour vers {host} pour cette bulle, "
    "est épuisé : {sent} envoyés aujourd'hui, cette requête en demande {needed}",
    "the path holds a dot segment or an encoded dot, which could escape a path prefix": "le chemin contient un "
    "segment « . » ou « .. », ou un point encodé, qui pourrait sortir d'un préfixe de chemin",
    "rule {rule} of project {project} would allow {host}:{port} but {lapse}": "l'accès {rule} du projet {project} "
    "autoriserait {host}:{port}, mais il {lapse}",
    "rule {rule} restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)": "l'accès {rule} "
    "restreint méthodes et chemins, ce qu'un tunnel TLS (CONNECT) ne permet pas d'appliquer",
    "no approved rule of project {project} allows {request} on {host}:{port}": "aucun accès approuvé du projet "
    "{project} n'autorise {request} sur {host}:{port}",
    "no approved rule of project {project} allows {host}:{port}": "aucun accès approuvé du projet {project} "
    "n'autorise {host}:{port}",
    # The same reasons once the page named the rule by its host (name_rules); the domain's too.
    "the request for {pattern} is already {egress_state} (by {who}); reload to see its current state": "la demande "
    "d'accès à {pattern} est déjà {egress_state} (par {who}) ; rechargez la page pour voir son état actuel",
    "the request for {pattern} expired at {when} before it was approved; the lead must ask again": "la demande "
    "d'accès à {pattern} a expiré le {when} avant d'être approuvée ; le responsable doit la renouveler",
    "the rule for {pattern} is {egress_state}: only an approved rule can be revoked": "l'accès à {pattern} est "
    "{egress_state} : seul un accès approuvé peut être révoqué",
    "the rule for {pattern} of project {project} allows {host}:{port}": "l'accès à {pattern} du projet {project} "
    "autorise {host}:{port}",
    "the rule for {pattern} of project {project} would allow {host}:{port} but {lapse}": "l'accès à {pattern} du "
    "projet {project} autoriserait {host}:{port}, mais il {lapse}",
    "the rule for {pattern} restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)": (
        "l'accès à {pattern} n'autorise que les appels HTTP en clair : il restreint méthodes et chemins, qu'un "
        "tunnel HTTPS (CONNECT) ne laisse pas voir"
    ),
    # Why a rule no longer applies ({lapse} above).
    "expired at {when}": "a expiré le {when}",
    "has no valid expiry": "n'a pas d'expiration valide",
}

#: The domain's messages that pages show (refusals, stale decisions, values refused next to a field).
DOMAIN_MESSAGES: Final[Mapping[str, str]] = {
    # what the service writes in a session's timeline (infracalc.casd.sessions, infracalc.casd.imports)
    "session opened for {username} on project {project} ({governance} governance)": "session ouverte pour "
    "{username} sur le projet {project} (gouvernance {governance})",
    "session closed": "session fermée",
    "import {import_id} ({name}, {size} bytes) released to the project": "import {import_id} ({name}, {size} "
    "octets) mis à disposition du projet",
    "read import {import_id} ({name}, {size} bytes)": "lecture de l'import {import_id} ({name}, {size} octets)",
    # not found
    "no project {project}": "aucun projet {project}",
    "no user {user} in the realm": "aucun utilisateur {user} dans le domaine d'identité",
    # offboarding
    "give a reason of at least {count} characters": "donnez une raison d'au moins {count} caractères",
    "no decision {verdict}": "aucune décision {verdict}",
    "no egress request {rule}": "aucune demande d'accès externe {rule}",
    "project {project} has no egress rule {rule}": "le projet {project} n'a pas d'accès externe {rule}",
    "no export {export}": "aucun export {export}",
    "project {project} has no export {export}": "le projet {project} n'a pas d'export {export}",
    "export {export} has no version {version}": "l'export {export} n'a pas de version {version}",
    "no import {item}": "aucun import {item}",
    "project {project} has no import {item}": "le projet {project} n'a pas d'import {item}",
    "no session {session}": "aucune session {session}",
    "no invitation {invitation}": "aucune invitation {invitation}",
    # already decided, changed meanwhile
    "project is already under {owner} governance": "le projet est déjà sous gouvernance {owner}",
    "egress request {rule} expired at {when} before it was approved; the lead must ask again": "la demande d'accès "
    "externe {rule} a expiré le {when} avant d'être approuvée ; le responsable doit la renouveler",
    "egress request {rule} is already {egress_state} (by {who}); reload to see its current state": "la demande "
    "d'accès externe {rule} est déjà {egress_state} (par {who}) ; rechargez la page pour voir son état actuel",
    "egress rule {rule} is {egress_state}: only an approved rule can be revoked": "l'accès externe {rule} est "
    "{egress_state} : seul un accès approuvé peut être révoqué",
    # a rule's mode (the request form)
    "a tunnel rule carries TLS unopened: the proxy never sees a method or a path, so it cannot restrict {what}; "
    "ask for an inspect rule, or leave them empty": "un accès en tunnel transporte le TLS sans l'ouvrir : le proxy "
    "ne voit ni méthode ni chemin et ne peut donc pas restreindre ces valeurs ({what}) ; demandez un accès "
    "inspecté, ou laissez-les vides",
    "this platform forbids tunnel rules (INFRACALC_EGRESS_TUNNEL_RULES=forbid): ask for an inspect rule": "cette "
    "plateforme interdit les accès en tunnel (INFRACALC_EGRESS_TUNNEL_RULES=forbid) : demandez un accès inspecté",
    "egress request {rule} asks for a tunnel rule, which this platform forbids (INFRACALC_EGRESS_TUNNEL_RULES=forbid):"
    " deny it, and the lead may ask for an inspect rule": "la demande d'accès externe {rule} porte sur un tunnel, "
    "que cette plateforme interdit (INFRACALC_EGRESS_TUNNEL_RULES=forbid) : refusez-la ; le responsable peut "
    "demander un accès inspecté",
    "the networks of {user} were changed meanwhile; read them and try again": "les réseaux de {user} ont été "
    "modifiés entre-temps ; relisez-les et réessayez",
    "import {item} is already {file_state} by {who}": "l'import {item} est déjà {file_state} par {who}",
    "import {item} is already {file_state}": "l'import {item} est déjà {file_state}",
    "import {item} was rejected: its file was deleted": "l'import {item} a été refusé : son fichier a été supprimé",
    "import {item} is in review: it is not released yet": "l'import {item} est en relecture : il n'est pas encore "
    "publié",
    "import {item} was decided while it was being read; try again": "l'import {item} a été traité pendant sa "
    "lecture ; réessayez",
    "export {export} is {file_state}: it cannot become {to_state} (from {from_state}: {allowed})": "l'export "
    "{export} est {file_state} : il ne peut pas devenir {to_state} (depuis {from_state} : {allowed})",
    "export {export} is {file_state}: only an export in review, or a sampled one after its release, can be reviewed": (
        "l'export {export} est {file_state} : seul un export en relecture, ou tiré au sort après sa publication, "
        "peut être relu"
    ),
    "export {export} was released already: a review after release approves or rejects it": "l'export {export} est "
    "déjà publié : une relecture après publication l'approuve ou le refuse",
    "{who} voted {verdict} on version {version} of export {export} already: one vote per reviewer and version": (
        "{who} a déjà voté « {verdict} » sur la version {version} de l'export {export} : un vote par relecteur et "
        "par version"
    ),
    "export {export} had its review after release already": "l'export {export} a déjà eu sa relecture après "
    "publication",
    "{who} requested export {export}: the requester never reviews their own export": "{who} a demandé l'export "
    "{export} : le demandeur ne relit jamais son propre export",
    "export {export} is {file_state}: it can be downloaded once released": "l'export {export} est {file_state} : il "
    "pourra être téléchargé une fois publié",
    "export {export} is {file_state}: a new version is accepted only after changes were requested": "l'export "
    "{export} est {file_state} : une nouvelle version n'est acceptée qu'après une demande de modifications",
    "a review needs a comment for the requester": "une relecture demande un commentaire pour le demandeur",
    "the comment is longer than {limit} characters": "le commentaire dépasse {limit} caractères",
    # invitations
    "an invitation for {email} is pending ({invitation}): resend it (POST /api/v1/enrollments/{invitation}/resend) or "
    "revoke it first": "une invitation pour {email} est en cours ({invitation}) : renvoyez-la ou révoquez-la d'abord",
    "{email} already has an account ({user}): add the membership instead with PUT "
    "/api/v1/projects/{project}/members/{name}": "{email} a déjà un compte ({user}) : ajoutez-le plutôt comme membre "
    "du projet {project}",
    "Keycloak has an account with the username {user} or the e-mail {email}": "Keycloak a déjà un compte avec "
    "l'identifiant {user} ou l'adresse {email}",
    "the username {user} is taken": "l'identifiant {user} est déjà pris",
    "invitation {invitation} is {invitation_state}: it cannot be sent again": "l'invitation {invitation} est "
    "{invitation_state} : elle ne peut pas être renvoyée",
    "invitation {invitation} is completed: remove the membership (DELETE "
    "/api/v1/projects/{project}/members/{user}) instead": "l'invitation {invitation} est terminée : retirez plutôt "
    "{user} des membres du projet {project}",
    "invitation {invitation} is already revoked": "l'invitation {invitation} est déjà révoquée",
    # imports (the console's upload shows them in the page's language)
    "the file name is empty": "le nom du fichier est vide",
    "{name} is not a file name": "{name} n'est pas un nom de fichier",
    "the file name {name} holds a path separator (/ or \\): give the file's name only": "le nom de fichier {name} "
    "contient un séparateur de chemin (/ ou \\) : donnez seulement le nom du fichier",
    "the file name {name} holds a control character (U+{code})": "le nom de fichier {name} contient un caractère de "
    "contrôle (U+{code})",
    "the file name {name} holds an invisible text-direction character (U+{code})": "le nom de fichier {name} "
    "contient un caractère invisible de sens d'écriture (U+{code})",
    "the file name {name} starts or ends with white space": "le nom de fichier {name} commence ou finit par une espace",
    "the file name is {size} bytes long in UTF-8; at most {limit} are accepted": "le nom du fichier fait {size} "
    "octets en UTF-8 ; {limit} au plus sont acceptés",
    "documents with macros ({extension}) are not accepted: save it without macros (.xlsx, .docx, .pptx)": "les "
    "documents à macros ({extension}) ne sont pas acceptés : enregistrez-le sans macros (.xlsx, .docx, .pptx)",
    "the file is larger than the limit of {limit} bytes": "le fichier dépasse la limite de {limit} octets",
    "the file is empty": "le fichier est vide",
    "the upload was interrupted before the end of the file; nothing was kept": "l'envoi a été interrompu avant la "
    "fin du fichier ; rien n'a été gardé",
    "send the file's bytes as application/octet-stream, not {media_type} (no form, no JSON: the body is the file)": (
        "envoyez le fichier tel quel (application/octet-stream), pas {media_type}"
    ),
    "the name says {extension} ({expected}) but the content is {found}: the extension must agree with the content": (
        "le nom dit {extension} ({expected}) mais le contenu est {found} : l'extension doit correspondre au contenu"
    ),
    "archives are not accepted: upload the files themselves (the content is {found}; office documents are accepted "
    "under their own extension: {extensions})": "les archives ne sont pas acceptées : importez les fichiers "
    "eux-mêmes (le contenu est {found} ; les documents bureautiques sont acceptés sous leur propre extension : "
    "{extensions})",
    "archives are not accepted: upload the files themselves (the content is {found})": "les archives ne sont pas "
    "acceptées : importez les fichiers eux-mêmes (le contenu est {found})",
    "an office document may be at most {limit} bytes (INFRACALC_OFFICE_MAX_EXPANDED_BYTES, also what its parts may "
    "expand to)": "un document bureautique fait au plus {limit} octets, et ses parties une fois décompressées aussi",
    "documents with macros are not accepted: the content is {found} holding macros ({listed}); save it without "
    "macros, as .{plain}": "les documents à macros ne sont pas acceptés : le contenu est {found} avec des macros "
    "({listed}) ; enregistrez-le sans macros, en .{plain}",
    "the file could not be stored: {detail}": "le fichier n'a pas pu être stocké : {detail}",
    # networks (the page drops the "networks[0]: " prefix)
    "register at least one network you will sign in from": "enregistrez au moins un réseau depuis lequel vous vous "
    "connecterez",
    "at most {limit} networks, got {count}": "au plus {limit} réseaux, {count} donnés",
    "{network} is not a network in CIDR form (an address, a slash and a prefix length: 203.0.113.0/24)": "{network} "
    "n'est pas un réseau au format CIDR (une adresse, une barre oblique et une longueur de préfixe : "
    "203.0.113.0/24)",
    "{network} is not a valid IPv4 or IPv6 network (check the address and the prefix length)": "{network} n'est pas "
    "un réseau IPv4 ou IPv6 valide (vérifiez l'adresse et la longueur du préfixe)",
    "{network} has host bits set (did you mean {suggestion}?)": "{network} a des bits d'hôte non nuls (vouliez-vous "
    "dire {suggestion} ?)",
    "{network} is every address: register the networks you sign in from": "{network} couvre toutes les adresses : "
    "enregistrez les réseaux depuis lesquels vous vous connectez",
    "{network} is too wide: IPv{version} networks may be /{prefix} at widest": "{network} est trop large : un réseau "
    "IPv{version} est au plus un /{prefix}",
    "{network} is IPv4-mapped: write it as IPv4 ({suggestion})": "{network} est une adresse IPv4 dans IPv6 : "
    "écrivez-la en IPv4 ({suggestion})",
    # hosts and URLs (the egress request form, the URL check)
    "not a valid URL: {detail}": "URL invalide : {detail}",
    "give an absolute http:// or https:// URL": "indiquez une URL absolue en http:// ou https://",
    "the URL names no host": "l'URL ne nomme aucun hôte",
    "the host name is empty": "le nom d'hôte est vide",
    "host name {host} contains whitespace": "le nom d'hôte {host} contient des espaces",
    "host name {host} is not a valid internationalised name: {detail}": "le nom d'hôte {host} n'est pas un nom "
    "internationalisé valide : {detail}",
    "host name {host} has no labels": "le nom d'hôte {host} n'a aucune étiquette",
    "host name {host} has an empty label": "le nom d'hôte {host} a une étiquette vide",
    "host name {host} is {length} octets long; the limit is {limit}": "le nom d'hôte {host} fait {length} octets ; "
    "la limite est {limit}",
    "host name {host} contains ':', '[' or ']': give the port separately; IP literals are not host names": "le nom "
    "d'hôte {host} contient « : », « [ » ou « ] » : indiquez le port à part ; une adresse IP n'est pas un nom d'hôte",
    "{host} is an IPv6 literal, not a host name": "{host} est une adresse IPv6, pas un nom d'hôte",
    "{host} is the IPv4 address {address} in another notation; IP literals are not host names": "{host} est "
    "l'adresse IPv4 {address} écrite autrement ; une adresse IP n'est pas un nom d'hôte",
    "host name {host} ends in a number, so clients would read it as an IPv4 address": "le nom d'hôte {host} finit "
    "par un nombre : les clients le liraient comme une adresse IPv4",
    "host name {host} contains an underscore, which host names may not": "le nom d'hôte {host} contient un tiret "
    "bas, interdit dans un nom d'hôte",
    "label {label} of {host} is not valid punycode: {detail}": "l'étiquette {label} de {host} n'est pas du punycode "
    "valide : {detail}",
    "label {label} of {host} has '--' in its third and fourth characters, which IDNA reserves for encoded labels "
    "(RFC 5890)": "l'étiquette {label} de {host} a « -- » en troisième et quatrième caractères, ce qu'IDNA réserve "
    "aux étiquettes encodées (RFC 5890)",
    "label {label} of {host} is not a valid internationalised label: {detail}": "l'étiquette {label} de {host} "
    "n'est pas une étiquette internationalisée valide : {detail}",
    "label {label} of {host} is {length} octets long; the limit is {limit}": "l'étiquette {label} de {host} fait "
    "{length} octets ; la limite est {limit}",
    "label {label} of {host} may hold only letters, digits and inner hyphens (it may not start or end with a "
    "hyphen)": "l'étiquette {label} de {host} ne peut contenir que des lettres, des chiffres et des traits d'union "
    "intérieurs (ni au début ni à la fin)",
    "a bare '*' would allow every host; name a host or use '*.example.org'": "un « * » seul autoriserait tous les "
    "hôtes ; nommez un hôte ou utilisez « *.example.org »",
    "host pattern {host}: '*' may only stand as the whole first label, as in '*.example.org'": "motif d'hôte "
    "{host} : « * » ne peut être que toute la première étiquette, comme dans « *.example.org »",
    "host pattern {host} would cover every name under the public suffix {suffix}, which anyone can register; put "
    "the wildcard over a registered domain, such as {example}": "le motif d'hôte {host} couvrirait tous les noms "
    "sous le suffixe public {suffix}, où chacun peut enregistrer un domaine ; placez le joker sur un domaine "
    "enregistré, comme {example}",
    "host pattern {host} is a single label; name the host in full (such as 'api.example.org')": "le motif d'hôte "
    "{host} n'a qu'une étiquette ; nommez l'hôte en entier (comme « api.example.org »)",
    # session search (the page drops the "q: " prefix)
    "at most {limit} characters, got {count}": "au plus {limit} caractères, {count} donnés",
    "give at least one word (letters or digits) to search for": "indiquez au moins un mot (lettres ou chiffres) à "
    "rechercher",
    "at most {limit} different words, got {count}": "au plus {limit} mots différents, {count} donnés",
    "cursor: not a cursor this service gave (take next_cursor from a previous page)": "curseur : ce service n'a "
    "pas donné ce curseur (reprenez la recherche depuis sa première page)",
    # msgspec's validation messages, shown next to a form's field
    "Expected `str` of length >= {limit}": "Au moins {limit} caractère(s).",
    "Expected `str` of length <= {limit}": "Au plus {limit} caractères.",
    "Expected `int` >= {limit}": "Un nombre supérieur ou égal à {limit}.",
    "Expected `int` <= {limit}": "Un nombre inférieur ou égal à {limit}.",
    "Expected `array` of length >= {limit}": "Au moins {limit} valeur(s).",
    "Expected `array` of length <= {limit}": "Au plus {limit} valeurs.",
    "Expected `str` matching regex {regex}": "Valeur refusée : elle doit correspondre à l'expression {regex}.",
    "Invalid enum value {value}": "Valeur inconnue : {value}.",
}

_FIELD: Final = re.compile(r"\{([a-z_]+)\}")
#: How the policy and the domain name a rule or a request (``rule 3fa4c2d19e8b7a60 of project ...``,
#: ``egress request 3fa4c2d19e8b7a60 is already ...``): by its id.
_RULE_BY_ID: Final = re.compile(r"\b(rule|egress rule|egress request) ([0-9a-f]{16})\b")
#: What a rule named by host is called, by what named it by id.
_NAMED: Final = {"rule": "the rule for", "egress rule": "the rule for", "egress request": "the request for"}


def name_rules(text: str, hosts: Mapping[str, str]) -> str:
    """``text`` with each rule the policy names by id named by its host instead, when ``hosts`` knows the id.

    People know a rule by the host it opens (``*.example.org``); the policy knows it by id, and its
    reasons keep the id for the record. Pages show ``the rule for <host>``, which the catalogue
    translates like the reason it replaces.
    """
    return _RULE_BY_ID.sub(
        lambda found: (
            f"{_NAMED[found.group(1)]} {hosts[found.group(2)]}" if found.group(2) in hosts else found.group(0)
        ),
        text,
    )


@dataclass(frozen=True, slots=True)
class Sentence:
    """One catalogue entry: the English sentence as a pattern, and the French one to fill."""

    english: str
    french: str
    pattern: re.Pattern[str]

    def translate(self, text: str) -> str | None:
        """The French of ``text`` if it is this sentence (with its values), else ``None``."""
        found = self.pattern.fullmatch(text)
        if found is None:
            return None
        values = {name: _french_value(name, value) for name, value in found.groupdict().items()}
        # A function as replacement: the values are put in as they are (no escapes, no fields read in them).
        return _FIELD.sub(lambda field: values[field.group(1)], self.french)


#: Fields that hold a sentence of the catalogue themselves (the egress policy's ``lapse``).
NESTED_FIELDS: Final = frozenset({"lapse"})


def _french_value(field: str, value: str) -> str:
    if field in NESTED_FIELDS:
        return translate_reason(value, "fr")
    vocabulary = VOCABULARIES.get(field)
    return vocabulary.phrases.get(value, value) if vocabulary is not None else value


def sentence(english: str, french: str) -> Sentence:
    """The entry for ``english``, whose ``{field}`` parts match any value (a vocabulary's phrases when closed).

    A field named twice must hold the same value both times. Every field of ``french`` must be one of ``english``.

    Raises:
        ValueError: ``french`` names a field ``english`` does not have.
    """
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for field in _FIELD.finditer(english):
        parts.append(re.escape(english[position : field.start()]))
        name = field.group(1)
        vocabulary = VOCABULARIES.get(name)
        if name in seen:
            parts.append(f"(?P={name})")
        elif vocabulary is not None and vocabulary.closed:
            choices = sorted(vocabulary.phrases, key=len, reverse=True)
            parts.append(f"(?P<{name}>{'|'.join(re.escape(choice) for choice in choices)})")
        else:
            parts.append(f"(?P<{name}>.+?)")
        seen.add(name)
        position = field.end()
    parts.append(re.escape(english[position:]))
    unknown = set(_FIELD.findall(french)) - seen
    if unknown:
        raise ValueError(f"the French of {english!r} names fields it does not have: {sorted(unknown)}")
    return Sentence(english, french, re.compile("".join(parts), re.DOTALL))


#: Every sentence, those without fields first (looked up as they are), then in catalogue order.
CATALOGUE: Final[tuple[Sentence, ...]] = tuple(
    sentence(english, french) for english, french in {**POLICY_REASONS, **EGRESS_REASONS, **DOMAIN_MESSAGES}.items()
)
_LITERALS: Final[Mapping[str, str]] = {
    entry.english: entry.french for entry in CATALOGUE if not _FIELD.search(entry.english)
}
_TEMPLATES: Final[tuple[Sentence, ...]] = tuple(entry for entry in CATALOGUE if _FIELD.search(entry.english))


def translate_reason(text: str, language: str) -> str:
    """``text`` (a reason of the policy or a message of the domain) in ``language``.

    English, or a text the catalogue does not know, comes back unchanged: never an error, never empty.
    """
    if language == SOURCE_LANGUAGE or not text:
        return text
    literal = _LITERALS.get(text)
    if literal is not None:
        return literal
    for entry in _TEMPLATES:
        french = entry.translate(text)
        if french is not None:
            return french
    return text


__all__ = [
    "ACTIONS",
    "BUBBLE_WHAT",
    "CATALOGUE",
    "DOMAIN_MESSAGES",
    "EGRESS_REASONS",
    "POLICY_REASONS",
    "STAFF_WHAT",
    "USER_WHAT",
    "Sentence",
    "Vocabulary",
    "name_rules",
    "sentence",
    "translate_reason",
]
