"""``check_output``: every check on one output file, and the report a reviewer reads.

The order is the cheap-first order a reviewer would follow: can the file be read at all, is it
within the size cap, what is it (from its content, the name being a hint), is that type allowed;
then the rules for its type: tables cell by cell, HTML/SVG for active content, images, PDF and
JSON flagged for a person; then the contributor rules when contributions are given; last the
risk score. Bad content never raises: it becomes a FAIL finding with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from infracalc.casd.checks.disclosure import CountRules, contributor_findings
from infracalc.casd.checks.errors import ParseRefused
from infracalc.casd.checks.findings import Finding, Outcome
from infracalc.casd.checks.markup import MARKUP_TYPES, find_active_content
from infracalc.casd.checks.report import CheckReport
from infracalc.casd.checks.risk import MANUAL_REVIEW, risk_level, risk_score
from infracalc.casd.checks.settings import CheckSettings
from infracalc.casd.checks.tables import check_workbook_archive, csv_rows, workbook_sheets
from infracalc.casd.filetypes import ALLOWED_TYPES, Detection, detect_type

_log = logging.getLogger(__name__)

#: The default settings (ACRO's rule parameters, the documented limits).
DEFAULT_SETTINGS = CheckSettings()

#: Binary formats: a name saying one of them must be borne out by the content.
_BINARY_TYPES = frozenset({"xlsx", "pdf", "png", "jpeg"})

_UNCHECKED = {
    "png": "an image",
    "jpeg": "an image",
    "svg": "a drawing",
    "pdf": "a PDF document",
    "html": "a web page",
    "json": "structured data",
}


def _report(detected_type: str, findings: list[Finding]) -> CheckReport:
    score = risk_score(detected_type, findings)
    return CheckReport(detected_type, tuple(findings), score, risk_level(score))


def _type_findings(detection: Detection, name: str) -> list[Finding]:
    findings: list[Finding] = []
    kind = detection.detected_type
    if detection.problem is not None:
        findings.append(Finding("parse", Outcome.FAIL, detection.problem))
    elif not detection.allowed:
        shown = "of an unknown kind (binary content)" if kind == "unknown" else kind
        findings.append(
            Finding(
                "file_type",
                Outcome.FAIL,
                f"type {shown} is not allowed for export; allowed: {', '.join(ALLOWED_TYPES)}",
                {"detected": kind, "allowed": list(ALLOWED_TYPES)},
            )
        )
    else:
        findings.append(
            Finding("file_type", Outcome.PASS, f"the content is {kind}, which may be exported", {"detected": kind})
        )
    if detection.hinted_type in _BINARY_TYPES and kind not in _BINARY_TYPES and detection.problem is None:
        # A workbook, PDF or image that is not one is a broken file, not a text to read instead.
        findings.append(
            Finding(
                "parse",
                Outcome.FAIL,
                f"the name {name!r} says {detection.hinted_type} but the content is not a readable "
                f"{detection.hinted_type} file (it reads as {kind})",
                {"named": detection.hinted_type, "detected": kind},
            )
        )
    elif not detection.agrees_with_name:
        findings.append(
            Finding(
                "extension",
                Outcome.REVIEW,
                f"the name {name!r} says {detection.hinted_type} but the content is {kind}; it was checked as {kind}",
                {"named": detection.hinted_type, "detected": kind},
            )
        )
    return findings


def _table_findings(path: Path, detection: Detection, settings: CheckSettings) -> list[Finding]:
    rules = CountRules(settings)
    findings: list[Finding] = []
    try:
        if detection.detected_type == "xlsx":
            parts = check_workbook_archive(path, settings)
            try:
                for sheet, rows in workbook_sheets(path, settings):
                    rules.value_rows(rows, sheet)
            except ParseRefused:
                raise
            except Exception as error:  # noqa: BLE001 - openpyxl raises many kinds on a malformed workbook
                raise ParseRefused(f"the workbook cannot be read: {type(error).__name__}: {str(error)[:200]}") from None
            if parts.embedded:
                findings.append(
                    Finding(
                        "embedded",
                        Outcome.REVIEW,
                        f"the workbook holds {len(parts.embedded)} picture(s), chart(s), embedded file(s) or external "
                        "link(s), which no rule can check: a reviewer must look at them",
                        {"parts": list(parts.embedded)},
                    )
                )
        else:
            delimiter = detection.delimiter or ","
            rules.text_rows(
                csv_rows(path, delimiter=delimiter, encoding=detection.encoding or "utf-8", settings=settings)
            )
    except ParseRefused as error:
        return [Finding("parse", Outcome.FAIL, f"the file cannot be checked: {error}")]
    except (OSError, UnicodeError) as error:
        return [Finding("parse", Outcome.FAIL, f"the file cannot be read: {error}")]
    return rules.findings() + findings


def _markup_findings(path: Path, kind: str) -> list[Finding]:
    try:
        found = find_active_content(path, kind)
    except (OSError, UnicodeError, ParseRefused) as error:
        return [Finding("parse", Outcome.FAIL, f"the {kind.upper()} cannot be parsed to remove scripts: {error}")]
    if found.removed:
        listed = ", ".join(f"{count} {what}" for what, count in sorted(found.kinds.items()))
        reason = f"active content found ({listed}); it is removed before the file is stored"
    else:
        reason = "no script, event handler or embedded object found"
    return [Finding("scripts", Outcome.PASS, reason, {"removed": found.removed, "kinds": found.kinds})]


def check_output(
    path: Path,
    *,
    name: str,
    settings: CheckSettings = DEFAULT_SETTINGS,
    contributors: Mapping[str, Sequence[float]] | None = None,
) -> CheckReport:
    """Run every output check on the file at ``path``, submitted as ``name``.

    Args:
        path: the file, spooled to disk by the caller.
        name: the file name as submitted; its extension is only a hint, the type comes from the content.
        settings: limits and rule parameters.
        contributors: optional contributions per cell, keyed ``"<row label>|<column name>"``, for
            the few-contributors, dominance and p-ratio rules.

    Returns:
        The report; malformed, oversized or unparseable files give a FAIL finding, never an exception.
    """
    try:
        return _check(path, name, settings, contributors)
    except Exception as error:  # noqa: BLE001 - the contract: a file the checks trip on fails, it never raises
        _log.exception("output checks failed on %s", name)
        reason = f"the checks could not complete ({type(error).__name__}); the file cannot be exported as it is"
        return _report("unknown", [Finding("internal", Outcome.FAIL, reason)])


def _check(
    path: Path,
    name: str,
    settings: CheckSettings,
    contributors: Mapping[str, Sequence[float]] | None,
) -> CheckReport:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise IsADirectoryError(f"{path.name} is not a regular file")
    except OSError as error:
        return _report("unknown", [Finding("file", Outcome.FAIL, f"the file cannot be read: {error}")])
    if size == 0:
        return _report("unknown", [Finding("size", Outcome.FAIL, "the file is empty")])
    try:
        detection = detect_type(path, name)
    except OSError as error:
        return _report("unknown", [Finding("file", Outcome.FAIL, f"the file cannot be read: {error}")])
    kind = detection.detected_type
    if size > settings.max_bytes:
        reason = (
            f"the file is {size:,} bytes, more than the limit of {settings.max_bytes:,} (INFRACALC_EXPORT_MAX_BYTES)"
        )
        return _report(kind, [Finding("size", Outcome.FAIL, reason, {"bytes": size, "max_bytes": settings.max_bytes})])
    findings = [Finding("size", Outcome.PASS, f"{size:,} bytes, within the limit", {"bytes": size})]
    findings += _type_findings(detection, name)
    if any(finding.outcome is Outcome.FAIL for finding in findings):
        return _report(kind, findings)
    if kind == "xlsx" or detection.delimiter is not None:
        findings += _table_findings(path, detection, settings)
    if kind in MARKUP_TYPES:
        findings += _markup_findings(path, kind)
    if kind in _UNCHECKED:
        findings.append(
            Finding(
                MANUAL_REVIEW,
                Outcome.REVIEW,
                f"the file is {_UNCHECKED[kind]} ({kind}), which no rule can check: a reviewer must look at it",
            )
        )
    if contributors:
        findings += contributor_findings(contributors, settings)
    return _report(kind, findings)
