"""What ``infracalc up`` would start, read without starting it: who sends e-mail where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infracalc.config import StackSettings
from infracalc.mail import MailSettings
from infracalc.stack import up
from infracalc.stack.process import ServerSpec
from infracalc.stack.secrets import LocalSecrets
from infracalc.tools import Tools


def test_the_service_mails_to_the_local_mailbox_which_starts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keycloak's spec prepares an instance home from the installed distribution: not needed to read the wiring.
    monkeypatch.setattr(up, "keycloak_spec", lambda *_, **__: ServerSpec("keycloak", ["kc.sh"], "http://k/health"))
    settings = StackSettings.from_env({"INFRACALC_HOME": str(tmp_path), "INFRACALC_MAILBOX_SMTP_PORT": "2525"})
    local = LocalSecrets.generate(hub_url=settings.hub_url, web_url=settings.service_url)
    specs: dict[str, Any] = {
        spec.name: spec
        for spec in up.server_specs(settings, Tools(tmp_path, tmp_path), up.StackLayout(tmp_path), local)
    }
    assert next(iter(specs)) == "mailbox"
    assert "2525" in specs["mailbox"].argv
    mail = MailSettings.from_env(specs["service"].env)
    assert mail is not None
    assert (mail.host, mail.port, mail.starttls) == ("127.0.0.1", 2525, False)
    assert mail == up.local_mail(settings)  # what the realm file is rendered with: Keycloak sends there too
