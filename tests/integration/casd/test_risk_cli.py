"""``infracalc risk train | report | bar | promote | retire`` against the real S3 server and both databases."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from infracalc.audit import AuditLog, CheckpointSigner, verify_database
from infracalc.casd.objects import ObjectStore
from infracalc.cli import main
from infracalc.db import DatabaseSettings, create_engine, session_factory
from infracalc.storage import make_s3_client
from tests.fixtures.servers import S3Server
from tests.integration.casd.test_risk_model import Clock, projects, reviewed_history

pytestmark = pytest.mark.integration


async def fill(url: str, store: ObjectStore, signer: CheckpointSigner, folder: Path) -> None:
    engine = create_engine(DatabaseSettings.from_url(url))
    try:
        sessions = session_factory(engine)
        await projects(sessions)
        await reviewed_history(sessions, store, AuditLog(signer), folder, Clock(), 44)
    finally:
        await engine.dispose()


def test_staff_train_read_and_govern_models_from_the_command_line(
    database_url: str, s3: S3Server, tmp_path: Path
) -> None:
    bucket = "test-" + secrets.token_hex(6)
    store = ObjectStore(make_s3_client(s3.settings), bucket)
    asyncio.run(store.ensure_bucket())
    key = tmp_path / "audit.pem"
    asyncio.run(fill(database_url, store, CheckpointSigner.load_or_create(key), tmp_path))
    env = {
        "INFRACALC_DATABASE_URL": database_url,
        "INFRACALC_AUDIT_KEY": str(key),
        "INFRACALC_S3_ENDPOINT_URL": s3.settings.endpoint_url,
        "INFRACALC_S3_ACCESS_KEY": s3.settings.access_key,
        "INFRACALC_S3_SECRET_KEY": s3.settings.secret_key,
        "INFRACALC_S3_BUCKET": bucket,
    }

    def risk(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["risk", *args], env=env)
        return result.exit_code, result.output

    code, before = risk("report")
    assert code == 0, before
    assert "in force: none (the rules alone decide)" in before
    assert "recall bar: off" in before

    code, trained = risk("train", "--by", "ada")
    assert code == 0, trained
    assert "trained and in shadow" in trained
    assert "ROC AUC" in trained
    model_id = trained.split("model ", 1)[1].split(" ", 1)[0]
    assert asyncio.run(store.keys("risk-models/")) == [f"risk-models/v1-{model_id}/model.json"]

    code, shown = risk("report")
    assert code == 0
    assert f"in shadow: model {model_id} (v1)" in shown
    assert "rules alone:" in shown
    assert "model + active sample:" in shown

    assert risk("bar", "0.3", "--reason", "too low", "--by", "ada") == (
        1,
        "error: the recall bar must be between 0.5 and 1 (or off), got 0.3\n",
    )
    assert risk("bar", "0.9", "--reason", "CASD's target", "--by", "ada") == (0, "recall bar set to 90%\n")
    code, refused = risk("promote", model_id, "--reason", "looks good", "--by", "ada")
    assert code == 1
    assert "has decided 0 export(s) in shadow" in refused
    assert risk("retire", "--reason", "x", "--by", "ada") == (
        1,
        "error: no model is in force: the rules alone already decide\n",
    )
    code, shown = risk("report")
    assert "recall bar: 90%" in shown
    # Every change went to the audit log, which still verifies.
    report = asyncio.run(
        verify_database(DatabaseSettings.from_url(database_url), CheckpointSigner.load(key).public_key)
    )
    assert report.ok, report.summary()
    for key_name in asyncio.run(store.keys("")):
        asyncio.run(store.delete(key_name))
