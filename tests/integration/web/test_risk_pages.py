"""The risk models' staff page over HTTP: OPA decides, the registry's rules hold, every change is audited.

The app runs in-process on SQLite then PostgreSQL with the real OPA, Keycloak people and versitygw
(``service``). Reviewed exports are put in its database and bucket through the CASD modules (as the
API would), a model is trained on them, and staff read, bar and promote it through the page's forms.
Every refusal is checked to change nothing (the registry, the bar, the audit log, the bucket).
"""

from __future__ import annotations

import html
import random
from pathlib import Path
from typing import Any

import pytest

from infracalc.audit import AuditLog
from infracalc.casd.objects import ObjectStore
from infracalc.casd.risk_model import RiskAssessor, TrainingOptions
from infracalc.casd.risk_model.runs import train_and_register
from infracalc.db import RiskModelRecord
from infracalc.storage import make_s3_client
from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.casd.test_risk_model import Clock, output, projects, reviewed_history, snapshot, submit
from tests.integration.web.test_console_pages import csrf, database, sign_in

pytestmark = pytest.mark.integration


def bucket_of(service: ServiceUnderTest) -> ObjectStore:
    assert service.settings.s3 is not None
    return ObjectStore(make_s3_client(service.settings.s3), service.settings.s3.bucket)


async def trained(service: ServiceUnderTest, tmp_path: Path) -> tuple[RiskModelRecord, ObjectStore, AuditLog, Clock]:
    """Reviewed exports in the service's database and bucket, and a model trained on them (in shadow)."""
    store, log, clock = bucket_of(service), AuditLog.from_settings(service.settings.audit), Clock()
    async with database(service) as db:
        await projects(db.sessions)
        await reviewed_history(db.sessions, store, log, tmp_path, clock, 44)
        record = await train_and_register(
            db.sessions, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
        )
    return record, store, log, clock


def text(page: Any) -> str:
    return html.unescape(page.text)


async def test_only_staff_see_the_page_and_an_empty_registry_says_the_rules_decide(
    service: ServiceUnderTest, people: People
) -> None:
    await sign_in(service, people, "researcher")
    refused = await service.client.get("/staff/risk?lang=en")
    assert refused.status_code == 403
    assert "only CASD staff may read the export risk models" in text(refused)
    await sign_in(service, people, "staff")
    page = await service.client.get("/staff/risk?lang=en")
    assert page.status_code == 200, page.text
    assert "No model in force: the rules decide alone." in text(page)
    assert "No model in shadow." in text(page)
    french = await service.client.get("/staff/risk?lang=fr")
    assert "Aucun modèle en vigueur : les règles décident seules." in text(french)
    assert 'id="nav-staff-risk"' in french.text


async def test_staff_compare_bar_and_promote_a_model_through_the_page(
    service: ServiceUnderTest, people: People, tmp_path: Path
) -> None:
    record, store, log, clock = await trained(service, tmp_path)
    await sign_in(service, people, "staff")
    page = await service.client.get("/staff/risk?lang=en")
    shown = text(page)
    assert f"Model {record.id} (v1)" in shown
    assert "Rules alone" in shown
    assert "Model + active sample" in shown
    assert "smallest_count_margin" in shown  # the weights table
    assert "A model must decide at least 20 exports in shadow" in shown

    async def snap() -> dict[str, Any]:
        async with database(service) as db:
            return await snapshot(db.sessions, store)

    # Refusals: a bar out of range, a promotion without enough exports compared or without a reason.
    before = await snap()
    bad = await service.client.post(
        "/staff/risk/bar", data={"_csrf_token": await csrf(service), "bar": "0.2", "bar_reason": "why not"}
    )
    assert bad.status_code == 422
    assert "the recall bar must be between 0.5 and 1" in text(bad)
    nonsense = await service.client.post(
        "/staff/risk/bar", data={"_csrf_token": await csrf(service), "bar": "high", "bar_reason": "x"}
    )
    assert nonsense.status_code == 422
    early = await service.client.post(
        "/staff/risk/promote",
        data={"_csrf_token": await csrf(service), "model": record.id, "promote_reason": "looks good"},
    )
    assert early.status_code == 409
    assert "has decided 0 export(s) in shadow" in text(early)
    assert await snap() == before

    saved = await service.client.post(
        "/staff/risk/bar",
        data={"_csrf_token": await csrf(service), "bar": "0,9", "bar_reason": "CASD's target"},
        follow_redirects=False,
    )
    assert saved.status_code in (302, 303), saved.text
    # The shadow decides 20 new exports beside the rules, then staff promote it.
    async with database(service) as db:
        assessor, rng = RiskAssessor(store), random.Random(9)
        for index in range(20):
            path, _ = output(tmp_path / f"new{index}.csv", rng)
            await submit(db.sessions, store, log, path, slug="casd-cohort", clock=clock, assessor=assessor)
    page = await service.client.get("/staff/risk?lang=en")
    assert "20 exports decided in shadow" in text(page)
    promoted = await service.client.post(
        "/staff/risk/promote",
        data={"_csrf_token": await csrf(service), "model": record.id, "promote_reason": "compared on 20 exports"},
    )
    assert promoted.status_code == 200
    shown = text(promoted)
    assert f"Model {record.id} is in force." in shown
    assert "Recall bar" in shown
    assert "A model may lower a level when its measured recall reaches 90 %" in shown
    after = await snap()
    assert after["models"] == [(record.id, "in_force")]
    assert after["bar"] == 0.9
    async with database(service) as db, db.sessions() as session:
        from sqlalchemy import select

        from infracalc.audit import AuditEvent

        events = [
            (e.actor, e.action)
            for e in await session.scalars(select(AuditEvent).where(AuditEvent.action.like("risk.%")))
        ]
    staff = people.username("staff")
    assert events == [("ada", "risk.train"), (staff, "risk.bar"), (staff, "risk.promote")]

    # Recent decisions are explained in the page's language, from their codes.
    french = text(await service.client.get("/staff/risk?lang=fr"))
    assert "Décisions récentes" in french
    assert "observation" in french
