"""The review pages' helpers and templates: votes counted against the review rule, every page in both languages.

The rule itself (how many approvals, never one's own export) is the CASD module's and is tested
there and through the pages in ``tests/integration/web/test_review_pages.py``; here, what the pages
say about a given set of votes, and that every template renders, labels its fields and escapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest

from infracalc.db import (
    ExportState,
    Governance,
    ImportState,
    MemberRole,
    ReviewVerdict,
    Sensitivity,
)
from infracalc.service.exports.schemas import ExportDetail, ReviewOut, VersionOut
from infracalc.service.imports.schemas import ImportOut
from infracalc.service.principals import Person
from infracalc.service.projects.schemas import MemberOut, ProjectOut
from infracalc.web.i18n import LANGUAGES, translator
from infracalc.web.pages import TEMPLATES
from infracalc.web.project_pages import UploadOffer
from infracalc.web.review_views import ProjectFiles, findings, review_status, size_text
from tests.support.pages import assert_forms_are_guarded_and_labelled, render_page

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
PERSON = Person(username="<rita>", roles=frozenset({"casd-staff"}), acr="mfa", subject="s")
REPORT = {
    "detected_type": "csv",
    "outcome": "review",
    "risk_score": 0.8,
    "risk_level": "high",
    "findings": [
        {"check": "small_counts", "outcome": "review", "reason": "12 cells below <10>", "details": {}},
        {"check": "zeros", "outcome": "pass", "reason": "no zero", "details": {}},
        "not a finding",
    ],
}


def vote(reviewer: str, verdict: ReviewVerdict, version: int = 1) -> ReviewOut:
    return ReviewOut(version=version, reviewer=reviewer, verdict=verdict, comment=f"<{reviewer} says>", at=WHEN)


def export(
    state: ExportState = ExportState.IN_REVIEW,
    *,
    required: int = 2,
    reviews: list[ReviewOut] | None = None,
    sampled: bool = False,
    version: int = 1,
) -> ExportDetail:
    return ExportDetail(
        id="e1",
        project="cohort",
        session="b1",
        requested_by="<bruno>",
        name="table<1>.csv",
        governance=Governance.CASD,
        state=state,
        risk_level="high",
        risk_score=0.8,
        required_reviews=required,
        sampled=sampled,
        current_version=version,
        created_at=WHEN,
        updated_at=WHEN,
        reasons=["small_counts (review): 12 cells below <10>"],
        versions=[
            VersionOut(
                version=n,
                size=2048,
                sha256="ab" * 32,
                justification="<why>",
                submitted_at=WHEN,
                report=REPORT,
            )
            for n in range(1, version + 1)
        ],
        reviews=reviews or [],
    )


def test_no_approval_yet_needs_every_reviewer() -> None:
    status = review_status(export(), "rita")
    assert (status.key, status.missing, status.approved_by, status.may_vote) == ("needs_reviewers", 2, (), True)


def test_one_approval_of_two_needs_a_second_reviewer_who_is_not_the_first() -> None:
    status = review_status(export(reviews=[vote("rita", ReviewVerdict.APPROVE)]), "rita")
    assert (status.key, status.missing, status.approved_by) == ("needs_second", 1, ("rita",))
    assert status.voted
    assert not status.may_vote
    other = review_status(export(reviews=[vote("rita", ReviewVerdict.APPROVE)]), "sam")
    assert other.may_vote
    assert not other.voted


def test_the_requester_may_not_vote_on_their_own_export() -> None:
    status = review_status(export(), "<bruno>")
    assert status.own
    assert not status.may_vote


def test_votes_on_an_earlier_version_do_not_count() -> None:
    status = review_status(export(reviews=[vote("rita", ReviewVerdict.APPROVE, version=1)], version=2), "rita")
    assert (status.key, status.approved_by, status.voted, status.may_vote) == ("needs_reviewers", (), False, True)


@pytest.mark.parametrize("state", [ExportState.RELEASED, ExportState.REJECTED, ExportState.CHANGES_REQUESTED])
def test_a_decided_export_awaits_no_vote(state: ExportState) -> None:
    status = review_status(export(state, reviews=[vote("rita", ReviewVerdict.APPROVE)]), "sam")
    assert (status.key, status.open, status.may_vote) == (state.value, False, False)


def test_a_sampled_release_awaits_one_review_until_it_has_one() -> None:
    status = review_status(export(ExportState.RELEASED, required=0, sampled=True), "sam")
    assert (status.key, status.required, status.missing, status.may_vote) == ("sampled", 1, 1, True)
    done = review_status(
        export(ExportState.RELEASED, required=0, sampled=True, reviews=[vote("rita", ReviewVerdict.APPROVE)]), "sam"
    )
    assert (done.key, done.open) == ("released", False)


def test_findings_are_read_from_the_stored_report_skipping_malformed_entries() -> None:
    assert [(f.check, f.outcome) for f in findings(REPORT)] == [("small_counts", "review"), ("zeros", "pass")]
    assert findings({}) == []
    assert findings({"findings": "nope"}) == []


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (2048, "2.0 KiB"), (5 * 1024**2 + 1, "5.0 MiB"), (3 * 1024**4, "3072.0 GiB")],
)
def test_sizes_read_in_binary_units(size: int, text: str) -> None:
    assert size_text(size) == text


IMPORT = ImportOut(
    id="i1",
    project="cohort",
    name="data<1>.parquet",
    size=4096,
    sha256="cd" * 32,
    part_sha256=[],
    detected_type="parquet",
    content_type="application/vnd.apache.parquet",
    governance=Governance.CASD,
    state=ImportState.IN_REVIEW,
    sensitivity=None,
    routing="under CASD governance every import is reviewed by <staff>",
    uploaded_by="<bruno>",
    uploaded_at=WHEN,
    reviewed_by=None,
    reviewed_at=None,
    review_comment=None,
)
DECIDED = ImportOut(
    **{
        **{f: getattr(IMPORT, f) for f in IMPORT.__struct_fields__},
        "state": ImportState.RELEASED,
        "sensitivity": Sensitivity.STANDARD,
        "reviewed_by": "rita",
        "reviewed_at": WHEN,
        "review_comment": "<fine>",
    }
)
PROJECT = ProjectOut(
    id="cohort",
    title="Birth <cohort>",
    governance=Governance.CASD,
    created_at=WHEN,
    members=[MemberOut("bruno", MemberRole.LEAD, WHEN)],
)
WITH_VOTES = export(reviews=[vote("rita", ReviewVerdict.APPROVE)])


def export_page(detail: ExportDetail, **extra: Any) -> dict[str, Any]:
    return {
        "export": detail,
        "status": review_status(detail, "sam"),
        "findings": {v.version: findings(v.report) for v in detail.versions},
        "size_text": size_text,
        "verdicts": ["approve", "reject", "changes"],
        "typed": {"verdict": "reject", "comment": "<typed>"},
        "errors": {},
        "notice": None,
        **extra,
    }


PAGES: list[tuple[str, dict[str, Any]]] = [
    ("console/review_exports.html", {"exports": [WITH_VOTES], "status": {"e1": review_status(WITH_VOTES, "sam")}}),
    ("console/review_exports.html", {"exports": [], "status": {}}),
    ("console/review_export.html", export_page(WITH_VOTES)),
    (
        "console/review_export.html",
        export_page(WITH_VOTES, errors={"comment": "bad <comment>", "verdict": "no <way>"}, notice="<notice>"),
    ),
    (
        "console/review_export.html",
        export_page(export(ExportState.RELEASED, reviews=[vote("rita", ReviewVerdict.APPROVE)])),
    ),
    ("console/review_imports.html", {"imports": [IMPORT], "size_text": size_text}),
    ("console/review_imports.html", {"imports": [], "size_text": size_text}),
    (
        "console/review_import.html",
        {
            "item": IMPORT,
            "size_text": size_text,
            "decisions": ["approve", "reject"],
            "sensitivities": ["standard", "sensitive"],
            "typed": {"decision": "approve", "sensitivity": "", "comment": "<typed>"},
            "errors": {"sensitivity": "say <it>", "comment": "bad <comment>", "decision": "no <way>"},
            "notice": "<notice>",
        },
    ),
    (
        "console/review_import.html",
        {
            "item": DECIDED,
            "size_text": size_text,
            "decisions": [],
            "sensitivities": [],
            "typed": {},
            "errors": {},
            "notice": None,
        },
    ),
    (
        "console/project.html",
        {
            "project": PROJECT,
            "rules": [],
            "lead": False,
            "requests": [],
            "checked": None,
            "check_reason": None,
            "url": "",
            "url_error": None,
            "errors": {},
            "typed": {},
            "member_typed": {},
            "member_errors": {},
            "notice": None,
            "request_refusal": None,
            "upload": UploadOffer(refusal=None, max_bytes=1024, limit="1.0 KiB"),
            "project_files": ProjectFiles(
                exports=[WITH_VOTES, export(ExportState.RELEASED, reviews=[vote("rita", ReviewVerdict.APPROVE)])],
                imports=[IMPORT, DECIDED],
            ),
        },
    ),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "values"), PAGES)
def test_every_review_page_renders_labels_its_fields_and_escapes(
    language: str, template: str, values: dict[str, Any]
) -> None:
    html = render_page(template, language, person=PERSON, staff=True, **values)
    assert f'<html lang="{language}">' in html
    assert 'id="nav-staff-exports"' in html
    assert 'id="nav-staff-imports"' in html
    for raw in ("<rita", "<bruno>", "<why>", "<10>", "<1>", "<typed>", "<comment>", "<way>", "<notice>", "<staff>"):
        assert raw not in html, f"{raw} unescaped in {template}"
    assert_forms_are_guarded_and_labelled(html)


def test_the_queue_shows_the_two_reviewer_rule() -> None:
    t = translator("en")
    html = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        .get_template("console/review_exports.html")
        .render(lang="en", other_lang="fr", t=t, csrf_input="", person=PERSON, staff=True, **PAGES[0][1])
    )
    assert "Approved by rita: needs a second reviewer." in html
    assert "Rule: 2 distinct approval(s) needed; 1 so far." in html
    assert "small_counts (review): 12 cells below &lt;10&gt;" in html


def test_the_project_page_offers_a_download_for_released_exports_only() -> None:
    html = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        .get_template("console/project.html")
        .render(
            lang="en", other_lang="fr", t=translator("en"), csrf_input="", person=PERSON, staff=False, **PAGES[-1][1]
        )
    )
    assert html.count('class="download"') == 1
    assert 'href="/projects/cohort/exports/e1/download"' in html
