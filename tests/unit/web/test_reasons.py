"""The policy's and the domain's reasons in French: every reason of ``authz.rego`` has one, values are kept.

The policy is parsed, not copied: a reason added to ``authz.rego`` without a French sentence in
:mod:`infracalc.web.reasons` fails here.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from infracalc.egress.hosts import InvalidHost, parse_host_pattern
from infracalc.service.egress_rules.service import proxy_input
from infracalc.service.errors import InvalidInput
from infracalc.service.users.networks import normalise_networks
from infracalc.web.reasons import (
    ACTIONS,
    BUBBLE_WHAT,
    CATALOGUE,
    STAFF_WHAT,
    USER_WHAT,
    VOCABULARIES,
    sentence,
    translate_reason,
)

POLICIES = Path(__file__).resolve().parents[3] / "policies" / "infracalc"
POLICY = (POLICIES / "authz" / "authz.rego").read_text()
#: The egress policy: its reasons reach the project page through the "would this URL be allowed?" check.
EGRESS_POLICY = (POLICIES / "egress" / "egress.rego").read_text()
_STRING = r'"((?:[^"\\]|\\.)*)"'
#: Values with regex metacharacters, ``%`` and braces: they must come out exactly as they went in.
ODD_VALUES = ("a.b*c+(d)", "50%_%s_%v", "x{project}y", r"back\1slash$&", "[é]|^")


def _map(name: str) -> dict[str, str]:
    """A ``name := {"key": "value", ...}`` object of the policy."""
    block = re.search(rf"^{name} := \{{(.*?)^\}}", POLICY, re.DOTALL | re.MULTILINE) or re.search(
        rf"^{name} := \{{(.*?)\}}$", POLICY, re.MULTILINE
    )
    assert block is not None, name
    return dict(re.findall(rf"{_STRING}:\s*{_STRING}", block.group(1)))


def _set(name: str) -> set[str]:
    block = re.search(rf"^{name} := \{{(.*?)^\}}", POLICY, re.DOTALL | re.MULTILINE)
    assert block is not None, name
    return set(re.findall(_STRING, block.group(1)))


def _literal_reasons() -> set[str]:
    """Every reason the policy writes as a string, directly or through a named string (``hub_refusal``)."""
    found = set(re.findall(rf'"reason":\s*{_STRING}', POLICY))
    for name in re.findall(r'"reason":\s*([a-z_]+)\b(?!\()', POLICY):
        found.update(re.findall(rf"^{name} := {_STRING}", POLICY, re.MULTILINE))
    return found


def _templates(policy: str = POLICY) -> list[tuple[str, list[str]]]:
    """Every ``sprintf`` of ``policy`` that says something: its format and its arguments' expressions."""
    return [
        (template, [argument.strip() for argument in arguments.split(",")])
        for template, arguments in re.findall(
            rf"sprintf\(\s*{_STRING},\s*\[([^\]]*(?:\[[^\]]*\][^\]]*)*)\],?\s*\)", policy
        )
        if re.search("[a-z]", re.sub("%[svq]", "", template))  # not "%s %s", which only joins values
    ]


def _egress_reasons() -> set[str]:
    """The egress policy's reasons written as strings: its decisions', refusals' and denials' (``else := "..."``)."""
    found = set(re.findall(rf'"reason":\s*{_STRING}', EGRESS_POLICY))
    found.update(re.findall(rf"^(?:refusal|denial|expiry_text\(ns\)) := {_STRING}", EGRESS_POLICY, re.MULTILINE))
    found.update(re.findall(rf"^\}} else := {_STRING}", EGRESS_POLICY, re.MULTILINE))
    return found


#: The policy's phrase tables, by the argument expression that reads them in a ``sprintf``.
PHRASES = {
    "what": "staff_actions",  # staff_only(_, staff_actions[input.action])
    "user_actions[input.action]": "user_actions",
    "bubble_export_actions[input.action]": "bubble_export_actions",
}


def _fillings(arguments: list[str]) -> list[list[str]]:
    """The values to try in a template: each phrase of a table it reads, an odd value for anything else."""
    # The same expression twice (``user_name``) is the same value twice.
    odd = {argument: ODD_VALUES[index % len(ODD_VALUES)] for index, argument in enumerate(dict.fromkeys(arguments))}
    tables = [argument for argument in dict.fromkeys(arguments) if argument in PHRASES]
    fillings = []
    for phrases in itertools.product(*(_map(PHRASES[argument]).values() for argument in tables)):
        chosen = {**odd, **dict(zip(tables, phrases, strict=True))}
        fillings.append([chosen[argument] for argument in arguments])
    return fillings


def _format(template: str, values: list[str]) -> str:
    pieces = re.split(r"%[svq]", template)
    assert len(pieces) == len(values) + 1, template
    return pieces[0] + "".join(value + piece for value, piece in zip(values, pieces[1:], strict=True))


def _english_left(text: str) -> bool:
    """Whether ``text`` still holds English words of the policy (a sign the sentence was not translated)."""
    for value in ODD_VALUES:
        text = text.replace(value, " ")
    text = re.sub(r"\S+\.\S+", " ", text)  # names such as bubble.project are the API's, in every language
    return bool(re.search(r"\b(may|only|the|project|staff|rule|allows?)\b", text))


def test_the_policy_is_parsed() -> None:
    assert len(_literal_reasons()) > 40
    assert "the hub may only read projects and users' projects, start or stop bubbles and record session events" in (
        _literal_reasons()
    )
    assert len(_templates()) > 15
    assert _map("staff_actions")["project.create"] == "create projects"


@pytest.mark.parametrize("reason", sorted(_literal_reasons()))
def test_every_literal_reason_of_the_policy_has_a_french_sentence(reason: str) -> None:
    french = translate_reason(reason, "fr")
    assert french != reason
    assert french.strip()
    assert not _english_left(french), french


@pytest.mark.parametrize(("template", "arguments"), _templates())
def test_every_sprintf_of_the_policy_has_a_french_sentence_with_its_values(template: str, arguments: list[str]) -> None:
    for values in _fillings(arguments):
        english = _format(template, values)
        french = translate_reason(english, "fr")
        assert french != english, english
        assert not _english_left(french), french
        for value, argument in zip(values, arguments, strict=True):
            if argument not in PHRASES:
                assert value in french, (english, french)


def test_the_egress_policy_is_parsed() -> None:
    assert {"unknown project", "has no valid expiry", "the scheme must be connect, http or https"} <= _egress_reasons()
    assert len(_egress_reasons()) >= 12
    assert len(_templates(EGRESS_POLICY)) >= 7


@pytest.mark.parametrize("reason", sorted(_egress_reasons()))
def test_every_literal_reason_of_the_egress_policy_has_a_french_sentence(reason: str) -> None:
    french = translate_reason(reason, "fr")
    assert french != reason
    assert not _english_left(french), french


@pytest.mark.parametrize(("template", "arguments"), _templates(EGRESS_POLICY))
def test_every_sprintf_of_the_egress_policy_has_a_french_sentence_with_its_values(
    template: str, arguments: list[str]
) -> None:
    english = _format(template, [ODD_VALUES[index % len(ODD_VALUES)] for index in range(len(arguments))])
    french = translate_reason(english, "fr")
    assert french != english, english
    assert not _english_left(french), french


def test_an_egress_denial_says_why_in_french_with_the_lapse_translated() -> None:
    english = "rule r1 of project p.1 would allow api.example.org:443 but expired at 2026-11-29T10:00:00Z"
    assert translate_reason(english, "fr") == (
        "l'accès r1 du projet p.1 autoriserait api.example.org:443, mais il a expiré le 2026-11-29T10:00:00Z"
    )


@pytest.mark.parametrize("table", sorted(set(PHRASES.values())))
def test_every_phrase_of_the_policy_has_a_french_phrase(table: str) -> None:
    ours = {"staff_actions": STAFF_WHAT, "user_actions": USER_WHAT, "bubble_export_actions": BUBBLE_WHAT}[table]
    assert set(_map(table).values()) <= set(ours)


def test_every_action_of_the_policy_has_a_french_phrase() -> None:
    actions = _set("known_actions")
    assert "export.inspect" in actions
    assert actions <= set(ACTIONS)
    assert (
        translate_reason("no rule allows project.create", "fr")
        == "aucune règle n'autorise l'action « créer un projet »"
    )
    # An action without a phrase (the only kind this reason names) is kept as it is.
    assert translate_reason("no rule allows thing.%s", "fr") == "aucune règle n'autorise l'action « thing.%s »"


@pytest.mark.parametrize("value", ODD_VALUES)
def test_values_are_kept_exactly_whatever_they_hold(value: str) -> None:
    english = f"{value} is not a member of project {value}-2"
    assert translate_reason(english, "fr") == f"{value} n'est pas membre du projet {value}-2"
    # A field named twice must hold the same value twice.
    same = f"only CASD staff or {value} themself may read the registered networks of {value}"
    assert translate_reason(same, "fr") == (
        f"seuls le personnel du CASD et {value} en personne peuvent lire les réseaux enregistrés de {value}"
    )
    differs = f"only CASD staff or {value} themself may read the registered networks of someone-else"
    assert translate_reason(differs, "fr") == differs


def test_phrases_and_states_inside_a_reason_are_translated() -> None:
    assert (
        translate_reason("only CASD staff may create projects", "fr")
        == "seul le personnel du CASD peut créer des projets"
    )
    assert (
        translate_reason("only CASD staff may review exports", "fr")
        == "seul le personnel du CASD peut relire les exports"
    )
    assert (
        translate_reason("egress request r1 is already denied (by ana); reload to see its current state", "fr")
        == "la demande d'accès externe r1 est déjà refusée (par ana) ; rechargez la page pour voir son état actuel"
    )
    assert translate_reason("import i1 is already released by ana", "fr") == "l'import i1 est déjà publié par ana"
    # A state the catalogue does not know is kept as it is, in a French sentence.
    assert translate_reason("import i1 is already frozen", "fr") == "l'import i1 est déjà frozen"


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.english[:40])
def test_english_comes_back_unchanged_and_every_entry_matches_its_own_sentence(entry: object) -> None:
    def sample(field: re.Match[str]) -> str:
        vocabulary = VOCABULARIES.get(field.group(1))
        return next(iter(vocabulary.phrases)) if vocabulary is not None and vocabulary.closed else "v1"

    english = re.sub(r"\{([a-z_]+)\}", sample, entry.english)  # type: ignore[attr-defined]
    assert translate_reason(english, "en") == english
    french = translate_reason(english, "fr")
    assert french != english
    assert "{" not in french or "{" in english


@pytest.mark.parametrize("text", ["", "something the domain never says", "only CASD staff may fly", "% {x} \\1"])
def test_unknown_text_is_shown_as_it_is(text: str) -> None:
    assert translate_reason(text, "fr") == text
    assert translate_reason(text, "en") == text


def test_a_french_sentence_naming_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="names fields"):
        sentence("no project {project}", "aucun projet {projet}")


def _refusal(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except (InvalidInput, InvalidHost) as error:
        return str(error)
    raise AssertionError("not refused")


@pytest.mark.parametrize(
    "network",
    ["not-a-network", "10.0.0.1/33", "203.0.113.7/24", "0.0.0.0/0", "10.0.0.0/7", "::ffff:203.0.113.0/120"],
)
def test_the_network_messages_the_pages_show_are_translated(network: str) -> None:
    # As the pages show them: without the "networks[0]: " prefix.
    shown = _refusal(lambda: normalise_networks([network])).split(": ", 1)[-1]
    french = translate_reason(shown, "fr")
    assert french != shown
    assert repr(network) in french


@pytest.mark.parametrize("host", ["", "a b.org", "*", "a.*.org", "*.com", "localhost", "a_b.org", "1.2.3.4", "-a.org"])
def test_the_host_messages_of_the_request_form_are_translated(host: str) -> None:
    shown = _refusal(lambda: parse_host_pattern(host))
    french = translate_reason(shown, "fr")
    assert french != shown, shown


@pytest.mark.parametrize("url", ["ftp://a.example/", "https:///x", "http://a b/", "https://a.example:99999/"])
def test_the_url_check_messages_are_translated(url: str) -> None:
    shown = _refusal(lambda: proxy_input("p", url))
    assert translate_reason(shown, "fr") != shown, shown


@pytest.mark.parametrize(
    ("english", "french"),
    [
        ("no project 'survey'", "aucun projet 'survey'"),
        (
            "an invitation for a@b.org is pending (e1): resend it (POST /api/v1/enrollments/e1/resend)"
            " or revoke it first",
            "une invitation pour a@b.org est en cours (e1) : renvoyez-la ou révoquez-la d'abord",
        ),
        ("egress rule r1 is revoked: only an approved rule can be revoked", None),
        (
            "a tunnel rule carries TLS unopened: the proxy never sees a method or a path, so it cannot restrict "
            "path prefixes; ask for an inspect rule, or leave them empty",
            "un accès en tunnel transporte le TLS sans l'ouvrir : le proxy ne voit ni méthode ni chemin et ne peut "
            "donc pas restreindre ces valeurs (path prefixes) ; demandez un accès inspecté, ou laissez-les vides",
        ),
        ("this platform forbids tunnel rules (INFRACALC_EGRESS_TUNNEL_RULES=forbid): ask for an inspect rule", None),
        (
            "egress request r1 asks for a tunnel rule, which this platform forbids "
            "(INFRACALC_EGRESS_TUNNEL_RULES=forbid): deny it, and the lead may ask for an inspect rule",
            None,
        ),
        ("export x1 is in_review: it can be downloaded once released", None),
        ("ana voted reject on version 2 of export x1 already: one vote per reviewer and version", None),
        (
            "session opened for ana on project cohort (INFRACALC governance)",
            "session ouverte pour ana sur le projet cohort (gouvernance INFRACALC)",
        ),
        ("session closed", "session fermée"),
        (
            "import i1 (notes, v2.csv, 12 bytes) released to the project",
            "import i1 (notes, v2.csv, 12 octets) mis à disposition du projet",
        ),
        ("read import i1 (a.csv, 12 bytes)", "lecture de l'import i1 (a.csv, 12 octets)"),
    ],
)
def test_the_domains_messages_are_translated(english: str, french: str | None) -> None:
    translated = translate_reason(english, "fr")
    assert translated != english
    if french is not None:
        assert translated == french
    assert not _english_left(translated), translated
