"""Why the model raised a risk: the features that pushed it up, as stable codes with parameters, in French and English.

An explanation is a list of ``{"code": "risk.small_count_cells", "params": {"cells": 4}}``: the
code never changes once published (pages and clients translate by code), the parameters are
counts, shares and margins from :class:`~infracalc.casd.risk_model.features.FeatureVector`'s facts
(never a cell value or label). :data:`TEMPLATES` holds each code's sentence in both languages;
:func:`render` fills one in. A page may carry its own catalogue and use only the codes.

Which features: those whose contribution to the model's log-odds, for this version, is above
the average version's by at least :data:`MIN_CONTRIBUTION`, largest first, at most
:data:`MOST_REASONS` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: The languages of the templates.
LANGUAGES: Final = ("fr", "en")
#: The least contribution (in log-odds above the average version) a feature needs to be named.
MIN_CONTRIBUTION: Final = 0.05
#: The most features named for one version.
MOST_REASONS: Final = 3

#: code -> language -> template; ``{name}`` fields come from the explanation's parameters.
TEMPLATES: Final[Mapping[str, Mapping[str, str]]] = {
    "risk.type_table": {
        "en": "it is a table ({kind})",
        "fr": "c'est un tableau ({kind})",
    },
    "risk.type_text": {"en": "it is a text ({kind})", "fr": "c'est un texte ({kind})"},
    "risk.type_image": {
        "en": "it is an image ({kind}), which no rule can read",
        "fr": "c'est une image ({kind}), qu'aucune règle ne sait lire",
    },
    "risk.type_document": {
        "en": "it is a PDF document, which no rule can read",
        "fr": "c'est un document PDF, qu'aucune règle ne sait lire",
    },
    "risk.type_markup": {
        "en": "it is a web page or drawing ({kind})",
        "fr": "c'est une page web ou un dessin ({kind})",
    },
    "risk.type_data": {"en": "it is structured data (JSON)", "fr": "ce sont des données structurées (JSON)"},
    "risk.log_size": {"en": "its size ({bytes} bytes)", "fr": "sa taille ({bytes} octets)"},
    "risk.log_rows": {"en": "its {rows} data rows", "fr": "ses {rows} lignes de données"},
    "risk.log_columns": {
        "en": "its {columns} data columns (a detailed cross-tabulation)",
        "fr": "ses {columns} colonnes de données (un croisement détaillé)",
    },
    "risk.log_cells": {"en": "its {cells} data cells", "fr": "ses {cells} cellules de données"},
    "risk.rules_score": {
        "en": "the rules' score ({score})",
        "fr": "le score des règles ({score})",
    },
    "risk.review_rules": {
        "en": "{rules} rule(s) ask for a review",
        "fr": "{rules} règle(s) demandent une relecture",
    },
    "risk.small_count_cells": {
        "en": "{cells} cell(s) hold small counts",
        "fr": "{cells} cellule(s) contiennent de petits effectifs",
    },
    "risk.zero_cells": {"en": "{cells} cell(s) hold zero counts", "fr": "{cells} cellule(s) contiennent des zéros"},
    "risk.few_contributor_cells": {
        "en": "{cells} cell(s) have too few contributors",
        "fr": "{cells} cellule(s) ont trop peu de contributeurs",
    },
    "risk.dominance_cells": {
        "en": "{cells} cell(s) are dominated by their largest contributors",
        "fr": "{cells} cellule(s) sont dominées par leurs plus gros contributeurs",
    },
    "risk.p_ratio_cells": {
        "en": "{cells} cell(s) fail the p-ratio rule",
        "fr": "{cells} cellule(s) ne respectent pas la règle du p-ratio",
    },
    "risk.smallest_count_margin": {
        "en": "its smallest count is {smallest}, well below the threshold of {threshold}",
        "fr": "son plus petit effectif est {smallest}, bien en dessous du seuil de {threshold}",
    },
    "risk.flagged_share": {
        "en": "{share} of its data cells are flagged",
        "fr": "{share} de ses cellules de données sont signalées",
    },
    "risk.has_contributors": {
        "en": "it reports magnitudes with contributors per cell",
        "fr": "il publie des montants avec leurs contributeurs par cellule",
    },
    "risk.dominance_margin": {
        "en": "its two largest contributors hold up to {share} of a cell",
        "fr": "ses deux plus gros contributeurs détiennent jusqu'à {share} d'une cellule",
    },
    "risk.p_ratio_margin": {
        "en": "a cell's other contributors weigh only {ratio} of its largest",
        "fr": "les autres contributeurs d'une cellule ne pèsent que {ratio} du plus gros",
    },
    "risk.name_mismatch": {
        "en": "its name says another type than its content",
        "fr": "son nom annonce un autre type que son contenu",
    },
    "risk.embedded_objects": {
        "en": "it holds pictures, charts or embedded files",
        "fr": "il contient des images, graphiques ou fichiers incorporés",
    },
    "risk.active_content": {
        "en": "scripts were found in it (and removed)",
        "fr": "des scripts y ont été trouvés (et retirés)",
    },
    "risk.justification_length": {
        "en": "its justification ({characters} characters)",
        "fr": "sa justification ({characters} caractères)",
    },
    "risk.resubmission": {
        "en": "it is a new version after {versions} earlier one(s)",
        "fr": "c'est une nouvelle version après {versions} précédente(s)",
    },
    "risk.project_reviews": {
        "en": "the project's {reviews} earlier reviewed output(s)",
        "fr": "les {reviews} sorties du projet déjà relues",
    },
    "risk.project_risky_share": {
        "en": "reviewers rejected or sent back {risky} of the project's {reviews} earlier outputs",
        "fr": "les relecteurs ont refusé ou renvoyé {risky} des {reviews} sorties précédentes du projet",
    },
}


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _count(value: float) -> int:
    return round(value)


def parameters(feature: str, facts: Mapping[str, float], kind: str) -> dict[str, Any]:
    """The parameters of the feature's explanation, from a vector's facts (plain numbers and short words)."""
    get = facts.get
    cells = _count(get(feature, 0.0))
    by_feature: dict[str, dict[str, Any]] = {
        "type_table": {"kind": kind},
        "type_text": {"kind": kind},
        "type_image": {"kind": kind},
        "type_markup": {"kind": kind},
        "log_size": {"bytes": _count(get("size", 0.0))},
        "log_rows": {"rows": _count(get("rows", 0.0))},
        "log_columns": {"columns": _count(get("columns", 0.0))},
        "log_cells": {"cells": _count(get("cells_checked", 0.0))},
        "rules_score": {"score": f"{get('rules_score', 0.0):.2f}"},
        "review_rules": {"rules": _count(get("review_rules", 0.0))},
        "smallest_count_margin": {
            "smallest": _count(get("smallest_count", 0.0)),
            "threshold": _count(get("threshold", 0.0)),
        },
        "flagged_share": {"share": _percent(get("flagged_share", 0.0))},
        "dominance_margin": {"share": _percent(get("largest_share", 0.0))},
        "p_ratio_margin": {"ratio": _percent(get("smallest_ratio", 0.0))},
        "justification_length": {"characters": _count(get("justification_length", 0.0))},
        "resubmission": {"versions": _count(get("resubmission", 0.0))},
        "project_reviews": {"reviews": _count(get("project_reviews", 0.0))},
        "project_risky_share": {
            "risky": _count(get("project_risky", 0.0)),
            "reviews": _count(get("project_reviews", 0.0)),
        },
    }
    if feature.endswith("_cells") and feature != "log_cells":
        return {"cells": cells}
    return by_feature.get(feature, {})


def render(reason: Mapping[str, Any], language: str) -> str:
    """One explanation ``{"code", "params"}`` as a sentence in ``language`` (``fr`` or ``en``).

    An unknown code is shown as itself, so that a newer model's reason is never lost.
    """
    templates = TEMPLATES.get(str(reason.get("code", "")))
    if templates is None:
        return str(reason.get("code", ""))
    params = reason.get("params")
    values = dict(params) if isinstance(params, Mapping) else {}
    try:
        return templates[language if language in LANGUAGES else "en"].format(**values)
    except (KeyError, IndexError, ValueError):
        return templates[language if language in LANGUAGES else "en"]
