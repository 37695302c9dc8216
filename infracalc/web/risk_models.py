"""CASD staff's page of the export risk models (Colysée): in force, in shadow, measured, explained, promoted.

The page acts as the signed-in :class:`~infracalc.service.principals.Person` through
:mod:`infracalc.service.risk_models`: OPA decides (``risk.read``, ``risk.promote``, ``risk.bar``),
the registry enforces its rules (a shadow compared on enough exports, a verified file, a reason,
a bar between 0.5 and 1) and every change is audited. A form that cannot be accepted comes back
with the message next to its field and what was typed kept.

The page's words live here, by key, in French and English (:data:`MESSAGES`), and fall back to the
console's catalogue for the layout; the models' explanations are rendered from their codes
(:func:`infracalc.casd.risk_model.render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Response, Template

from infracalc.casd.risk_model import render as render_reason
from infracalc.casd.risk_model.features import FEATURES
from infracalc.service import risk_models
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Person
from infracalc.web.console import ConsolePages
from infracalc.web.i18n import Translate, translator
from infracalc.web.pages import PAGE_HEADERS, language, reason, render
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: The page's words (the layout's come from :mod:`infracalc.web.i18n`).
MESSAGES: Final[Mapping[str, Mapping[str, str]]] = {
    "fr": {
        "risk.title": "Modèles de risque des exports (Colysée)",
        "risk.help": "Le modèle apprend des décisions des relecteurs. Il ne rend jamais le routage plus faible que "
        "les règles : il peut relever un niveau, et ne l'abaisse (d'un niveau, sous gouvernance INFRACALC) que si "
        "son rappel mesuré atteint le seuil fixé ici. Un nouveau modèle tourne d'abord en observation.",
        "risk.bar_title": "Seuil de rappel",
        "risk.bar_off": "Aucun seuil : aucun modèle n'abaisse un niveau.",
        "risk.bar_on": "Un modèle peut abaisser un niveau si son rappel mesuré atteint {bar}.",
        "risk.bar_label": "Nouveau seuil (0,5 à 1, ou « off »)",
        "risk.bar_submit": "Enregistrer le seuil",
        "risk.bar_invalid": "Indiquez un nombre entre 0,5 et 1, ou « off ».",
        "risk.reason_label": "Raison (journalisée)",
        "risk.in_force": "Modèle en vigueur",
        "risk.shadow": "Modèle en observation",
        "risk.none_in_force": "Aucun modèle en vigueur : les règles décident seules.",
        "risk.none_shadow": "Aucun modèle en observation. Entraînez-en un : infracalc risk train.",
        "risk.model": "Modèle {id} (v{version}), entraîné le {when} par {who}",
        "risk.promoted": "En vigueur depuis le {when} (promu par {who}).",
        "risk.sha": "SHA-256 du fichier : {sha}",
        "risk.unreadable": "Fichier du modèle illisible ou altéré : {problem}",
        "risk.metrics": "Mesures sur les exports les plus récents (jamais vus à l'entraînement)",
        "risk.test": "{examples} versions testées, dont {risky} refusées ou renvoyées.",
        "risk.auc": "ROC AUC {auc} ; score de Brier {brier}",
        "risk.strategy": "Routage",
        "risk.load": "Charge de relecture",
        "risk.recall": "Rappel des sorties refusées ou renvoyées",
        "risk.m.rules": "Règles seules",
        "risk.m.combined": "Le plus élevé des deux niveaux",
        "risk.m.lowering": "Avec abaissement (chiffre comparé au seuil)",
        "risk.m.model_at_load": "Modèle seul, à la même charge",
        "risk.m.rules_fixed_rate": "Règles + échantillon fixe",
        "risk.m.combined_active": "Modèle + échantillon actif",
        "risk.may_lower_yes": "Ce modèle peut abaisser un niveau (rappel {recall}, seuil {bar}).",
        "risk.may_lower_no": "Ce modèle ne peut pas abaisser de niveau.",
        "risk.weights": "Poids des variables",
        "risk.feature": "Variable",
        "risk.weight": "Poids (log-cote par écart-type)",
        "risk.retire_title": "Retirer le modèle en vigueur",
        "risk.retire": "Retirer (les règles décident seules)",
        "risk.comparison": "Comparaison sur les mêmes exports",
        "risk.compared": "{decided} exports décidés en observation : {agreed} au même niveau, {higher} plus haut, "
        "{lower} plus bas que le routage.",
        "risk.compared_risky": "Parmi eux, {risky} ont depuis été refusés ou renvoyés : l'observation en aurait "
        "montré {shadow} à une personne, le routage {force}.",
        "risk.promote_title": "Promouvoir ce modèle",
        "risk.promote_wait": "Il faut au moins {needed} exports décidés en observation avant de promouvoir "
        "({decided} à ce jour).",
        "risk.promote": "Promouvoir en vigueur",
        "risk.recent": "Décisions récentes",
        "risk.export": "Export",
        "risk.role": "Rôle",
        "risk.role.in_force": "en vigueur",
        "risk.role.shadow": "observation",
        "risk.rules_level": "Règles",
        "risk.model_level": "Modèle",
        "risk.final_level": "Routage",
        "risk.probability": "Probabilité",
        "risk.why": "Ce qui a relevé le risque",
        "risk.no_decisions": "Aucune décision de modèle pour l'instant.",
        "risk.history": "Historique des modèles",
        "risk.version": "Version",
        "risk.status": "État",
        "risk.status.shadow": "observation",
        "risk.status.in_force": "en vigueur",
        "risk.status.retired": "retiré",
        "risk.trained": "Entraîné",
        "risk.level.low": "faible",
        "risk.level.medium": "moyen",
        "risk.level.high": "élevé",
        "risk.done.promoted": "Le modèle {id} est en vigueur.",
        "risk.done.retired": "Le modèle est retiré : les règles décident seules.",
        "risk.done.bar": "Seuil de rappel enregistré.",
    },
    "en": {
        "risk.title": "Export risk models (Colysée)",
        "risk.help": "The model learns from the reviewers' decisions. It never makes routing weaker than the rules: "
        "it may raise a level, and lowers one (by one level, under INFRACALC governance) only when its measured "
        "recall reaches the bar set here. A new model first runs in shadow.",
        "risk.bar_title": "Recall bar",
        "risk.bar_off": "No bar: no model lowers a level.",
        "risk.bar_on": "A model may lower a level when its measured recall reaches {bar}.",
        "risk.bar_label": "New bar (0.5 to 1, or “off”)",
        "risk.bar_submit": "Save the bar",
        "risk.bar_invalid": "Give a number between 0.5 and 1, or “off”.",
        "risk.reason_label": "Reason (audited)",
        "risk.in_force": "Model in force",
        "risk.shadow": "Model in shadow",
        "risk.none_in_force": "No model in force: the rules decide alone.",
        "risk.none_shadow": "No model in shadow. Train one: infracalc risk train.",
        "risk.model": "Model {id} (v{version}), trained on {when} by {who}",
        "risk.promoted": "In force since {when} (promoted by {who}).",
        "risk.sha": "SHA-256 of its file: {sha}",
        "risk.unreadable": "The model's file is unreadable or altered: {problem}",
        "risk.metrics": "Measured on the newest exports (never seen in training)",
        "risk.test": "{examples} versions tested, {risky} of them rejected or sent back.",
        "risk.auc": "ROC AUC {auc}; Brier score {brier}",
        "risk.strategy": "Routing",
        "risk.load": "Review load",
        "risk.recall": "Recall of rejected or sent-back outputs",
        "risk.m.rules": "Rules alone",
        "risk.m.combined": "Higher of both levels",
        "risk.m.lowering": "With lowering (the figure compared with the bar)",
        "risk.m.model_at_load": "Model alone, at the same load",
        "risk.m.rules_fixed_rate": "Rules + fixed sample",
        "risk.m.combined_active": "Model + active sample",
        "risk.may_lower_yes": "This model may lower a level (recall {recall}, bar {bar}).",
        "risk.may_lower_no": "This model may not lower a level.",
        "risk.weights": "Feature weights",
        "risk.feature": "Feature",
        "risk.weight": "Weight (log-odds per standard deviation)",
        "risk.retire_title": "Retire the model in force",
        "risk.retire": "Retire (the rules decide alone)",
        "risk.comparison": "Comparison on the same exports",
        "risk.compared": "{decided} exports decided in shadow: {agreed} at the same level, {higher} higher, "
        "{lower} lower than routing.",
        "risk.compared_risky": "Of those, {risky} were since rejected or sent back: the shadow would have shown "
        "{shadow} to a person, routing {force}.",
        "risk.promote_title": "Promote this model",
        "risk.promote_wait": "A model must decide at least {needed} exports in shadow before it is promoted "
        "({decided} so far).",
        "risk.promote": "Put it in force",
        "risk.recent": "Recent decisions",
        "risk.export": "Export",
        "risk.role": "Role",
        "risk.role.in_force": "in force",
        "risk.role.shadow": "shadow",
        "risk.rules_level": "Rules",
        "risk.model_level": "Model",
        "risk.final_level": "Routing",
        "risk.probability": "Probability",
        "risk.why": "What raised the risk",
        "risk.no_decisions": "No model decision yet.",
        "risk.history": "Models' history",
        "risk.version": "Version",
        "risk.status": "Status",
        "risk.status.shadow": "shadow",
        "risk.status.in_force": "in force",
        "risk.status.retired": "retired",
        "risk.trained": "Trained",
        "risk.level.low": "low",
        "risk.level.medium": "medium",
        "risk.level.high": "high",
        "risk.done.promoted": "Model {id} is in force.",
        "risk.done.retired": "The model is retired: the rules decide alone.",
        "risk.done.bar": "Recall bar saved.",
    },
}

#: The rows of the metrics table: (key in the metrics, nested key or None).
METRIC_ROWS: Final = (
    ("rules", None),
    ("combined", None),
    ("lowering", None),
    ("model_at_load", None),
    ("sampled", "rules_fixed_rate"),
    ("sampled", "combined_active"),
)


def page_translator(lang: str) -> Translate:
    """``t(key, **values)``: this page's words, else the console's (the layout's)."""
    console = translator(lang)
    own = MESSAGES[lang]

    def translate(key: str, /, **values: Any) -> str:
        if key in own:
            return own[key].format(**values) if values else own[key]
        return console(key, **values)

    return translate


def metric(metrics: Mapping[str, Any], name: str, nested: str | None) -> Mapping[str, Any]:
    """One ``{"load", "recall"}`` pair of a model's metrics (empty when absent)."""
    found = metrics.get(name)
    if nested is not None and isinstance(found, Mapping):
        found = found.get(nested)
    return found if isinstance(found, Mapping) else {}


def parse_bar(text: str) -> float | None:
    """The bar typed in the form: ``off`` (no bar) or a number (a comma taken as a decimal point).

    Raises:
        ValueError: neither.
    """
    cleaned = text.strip().lower()
    if cleaned == "off":
        return None
    return float(cleaned.replace(",", "."))


class RiskModelPages(Controller):
    """The risk models' page for CASD staff, and its three forms (bar, promotion, retirement)."""

    path = "/staff/risk"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    @get("/", name="staff-risk")
    async def overview(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """The models in force and in shadow, how they measured, their weights, recent decisions, the history."""
        notice = request.query_params.get("done")
        return await self._page(request, context, person, notice=notice)

    async def _page(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        typed: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Template:
        found = await risk_models.overview(context, person)
        lang = language(request)
        t = page_translator(lang)
        return render(
            request,
            "console/staff_risk.html",
            {
                "person": person,
                "staff": True,
                "t": t,
                "overview": found,
                "features": FEATURES,
                "metric_rows": METRIC_ROWS,
                "metric": metric,
                "explain": lambda item: render_reason(item, lang),
                "typed": {"bar": "", "bar_reason": "", "promote_reason": "", "retire_reason": "", **(typed or {})},
                "errors": dict(errors or {}),
                "notice": _notice(t, notice, found),
            },
            status_code=status_code,
        )

    @post("/bar", name="staff-risk-bar")
    async def set_bar(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Set or clear the recall bar."""
        form = await request.form()
        typed = {"bar": str(form.get("bar", "")), "bar_reason": str(form.get("bar_reason", ""))}
        try:
            bar = parse_bar(typed["bar"])
        except ValueError:
            t = page_translator(language(request))
            return await self._page(
                request, context, person, typed=typed, errors={"bar": t("risk.bar_invalid")}, status_code=422
            )
        try:
            await risk_models.set_bar(context, person, bar, typed["bar_reason"])
        except InvalidInput as error:
            errors = {"bar" if error.field == "recall_bar" else "bar_reason": reason(request, error)}
            return await self._page(request, context, person, typed=typed, errors=errors, status_code=422)
        return Redirect("/staff/risk?done=bar", headers=PAGE_HEADERS)

    @post("/promote", name="staff-risk-promote")
    async def promote(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Put the shadow model in force."""
        form = await request.form()
        model_id, text = str(form.get("model", "")), str(form.get("promote_reason", ""))
        try:
            await risk_models.promote(context, person, model_id, text)
        except (InvalidInput, Conflict, NotFound) as error:
            errors = {"promote_reason": reason(request, error)}
            status = 422 if isinstance(error, InvalidInput) else 409
            typed = {"promote_reason": text}
            return await self._page(request, context, person, typed=typed, errors=errors, status_code=status)
        return Redirect("/staff/risk?done=promoted", headers=PAGE_HEADERS)

    @post("/retire", name="staff-risk-retire")
    async def retire(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Take the model in force out of routing."""
        form = await request.form()
        text = str(form.get("retire_reason", ""))
        try:
            await risk_models.retire(context, person, text)
        except (InvalidInput, Conflict) as error:
            errors = {"retire_reason": reason(request, error)}
            status = 422 if isinstance(error, InvalidInput) else 409
            return await self._page(
                request, context, person, typed={"retire_reason": text}, errors=errors, status_code=status
            )
        return Redirect("/staff/risk?done=retired", headers=PAGE_HEADERS)


#: The notices a redirect after a change may ask for.
_DONE: Final = frozenset({"promoted", "retired", "bar"})


def _notice(t: Translate, done: str | None, found: risk_models.Overview) -> str | None:
    """What the page says after a change (the model named is the one the page reads in force, not the URL's)."""
    if done not in _DONE:
        return None
    in_force = "" if found.in_force is None else found.in_force.record.id
    return t(f"risk.done.{done}", id=in_force)


__all__ = ["MESSAGES", "RiskModelPages", "page_translator"]
