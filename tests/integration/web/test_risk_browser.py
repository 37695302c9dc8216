"""The risk models' staff page in a real browser: a member of staff sets the bar and promotes the shadow model.

Debian's Chromium driven by Playwright, staff signing in through the real Keycloak (password, then
TOTP), the service as a process (``live_enroll_service``) with the session's OPA and versitygw.
Reviewed exports, a model trained on them and 20 exports it decided in shadow are put in the
service's own database and bucket through the CASD modules beforehand. Each page is screenshotted
into ``test-artifacts/screenshots/console-risk-*.png`` (kept out of git).
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext

from infracalc.audit import AuditLog, AuditSettings
from infracalc.casd.objects import ObjectStore
from infracalc.casd.risk_model import RiskAssessor, TrainingOptions
from infracalc.casd.risk_model.runs import train_and_register
from infracalc.db import DatabaseSettings, create_engine, session_factory
from infracalc.storage import S3Settings, make_s3_client
from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.casd.test_risk_model import Clock, output, projects, reviewed_history, submit
from tests.integration.web.test_console_browser import contexts, new_page, shot, sign_in
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]


async def shadowed_model(env: dict[str, str], folder: Path) -> str:
    """Reviewed exports in the service's database and bucket, a model trained on them, 20 exports it shadowed."""
    engine = create_engine(DatabaseSettings.from_env(env))
    store = ObjectStore(make_s3_client(S3Settings.from_env(env)), env["INFRACALC_S3_BUCKET"])
    log, clock = AuditLog.from_settings(AuditSettings.from_env(env)), Clock()
    try:
        sessions = session_factory(engine)
        await projects(sessions)
        await reviewed_history(sessions, store, log, folder, clock, 44)
        record = await train_and_register(
            sessions, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
        )
        assessor, rng = RiskAssessor(store), random.Random(4)
        for index in range(20):
            path, _ = output(folder / f"shadowed{index}.csv", rng)
            await submit(sessions, store, log, path, slug="open-cohort", clock=clock, assessor=assessor)
    finally:
        await engine.dispose()
    return record.id


def test_staff_set_the_bar_and_promote_the_shadow_model_in_chromium(
    live_enroll_service: LiveEnrollService,
    people: People,
    browser: Browser,
    contexts: list[BrowserContext],
    tmp_path: Path,
) -> None:
    service = live_enroll_service
    # Playwright's sync API runs an event loop in this thread: the set-up runs on a loop of its own, aside.
    with ThreadPoolExecutor(max_workers=1) as aside:
        model_id = aside.submit(asyncio.run, shadowed_model(service.env, tmp_path)).result()

    page = new_page(browser, contexts)
    page.goto(f"{service.url}/staff/risk?lang=en")
    sign_in(page, people, "staff")
    page.wait_for_selector("#shadow-model")
    assert f"Model {model_id} (v1)" in page.locator("#shadow-model").inner_text()
    assert "No model in force" in page.locator("#in-force").inner_text()
    assert "Rules alone" in page.locator("#shadow-metrics").inner_text()
    assert "20 exports decided in shadow" in page.locator("#comparison").inner_text()
    assert page.locator("#decisions tbody tr").count() == 20
    page.click("#shadow-weights summary")
    assert "smallest_count_margin" in page.locator("#shadow-weights").inner_text()
    shot(page, "risk-shadow")

    # A bar that is not a number comes back next to its field, what was typed kept.
    page.fill("#bar", "very high")
    page.fill("#bar_reason", "CASD's target")
    page.click("#save-bar")
    page.wait_for_selector("#bar-error")
    assert page.input_value("#bar_reason") == "CASD's target"
    page.fill("#bar", "0.95")
    page.click("#save-bar")
    page.wait_for_selector("#notice")
    assert "Recall bar saved." in page.locator("#notice").inner_text()
    assert "95 %" in page.locator("#recall-bar").inner_text()

    page.fill("#promote_reason", "compared on 20 exports beside the rules")
    page.click("#promote")
    page.wait_for_selector("#in-force-model")
    assert f"Model {model_id} is in force." in page.locator("#notice").inner_text()
    assert f"Model {model_id} (v1)" in page.locator("#in-force-model").inner_text()
    assert page.locator("#no-shadow").count() == 1
    assert "in force" in page.locator(f"#model-{model_id}").inner_text()
    shot(page, "risk-in-force")

    # The same page in French, the decisions' reasons rendered from their codes.
    page.goto(f"{service.url}/staff/risk?lang=fr")
    page.wait_for_selector("#in-force-model")
    assert "Modèle en vigueur" in page.locator("#in-force").inner_text()
    assert "Seuil de rappel" in page.locator("#bar-section").inner_text()
    shot(page, "risk-in-force-fr")
