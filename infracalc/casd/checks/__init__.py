"""Output checks: what may leave a bubble, checked before anyone reviews it.

:func:`check_output` reads one exported file in bounded memory and time and reports, check by
check, PASS, REVIEW or FAIL with a reason in plain language, and a disclosure-risk score that
the exports module uses to route the file to review. The rules follow ACRO (AI-SDC)'s statistical
disclosure control: small counts, zeros, dominance (N-K) and p-ratio. One concept per module:

- :mod:`infracalc.casd.filetypes` (shared with imports): the type from the content (the name is a hint);
- :mod:`~infracalc.casd.checks.tables`: CSV/TSV and XLSX read row by row within limits;
- :mod:`~infracalc.casd.checks.disclosure`: which cells are counts, and the rules;
- :mod:`~infracalc.casd.checks.markup`: active content in HTML/SVG, found and stripped;
- :mod:`~infracalc.casd.checks.risk`: the score and its formula;
- :mod:`~infracalc.casd.checks.findings`, :mod:`~infracalc.casd.checks.report`: what is returned;
- :mod:`~infracalc.casd.checks.settings`: limits and rule parameters from ``INFRACALC_EXPORT_*``;
- :mod:`~infracalc.casd.checks.check`: :func:`check_output` itself.
"""

from __future__ import annotations

from infracalc.casd.checks.check import DEFAULT_SETTINGS, check_output
from infracalc.casd.checks.errors import CheckError, ParseRefused
from infracalc.casd.checks.findings import Finding, Outcome
from infracalc.casd.checks.markup import strip_active_content
from infracalc.casd.checks.report import CheckReport
from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.checks.settings import CheckSettings
from infracalc.casd.filetypes import ALLOWED_TYPES

__all__ = [
    "ALLOWED_TYPES",
    "DEFAULT_SETTINGS",
    "CheckError",
    "CheckReport",
    "CheckSettings",
    "Finding",
    "Outcome",
    "ParseRefused",
    "RiskLevel",
    "check_output",
    "strip_active_content",
]
