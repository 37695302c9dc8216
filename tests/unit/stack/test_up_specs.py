"""What ``infracalc up`` would start, read without starting it: who sends e-mail where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infracalc.config import StackSettings
from infracalc.mail import MailSettings
from infracalc.proxy.settings import ProxySettings
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


def test_the_proxy_holds_the_egress_ca_and_the_hub_reads_only_what_the_proxy_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(up, "keycloak_spec", lambda *_, **__: ServerSpec("keycloak", ["kc.sh"], "http://k/health"))
    settings = StackSettings.from_env({"INFRACALC_HOME": str(tmp_path)})
    local = LocalSecrets.generate(hub_url=settings.hub_url, web_url=settings.service_url)
    layout = up.StackLayout(tmp_path)
    specs = {spec.name: spec for spec in up.server_specs(settings, Tools(tmp_path, tmp_path), layout, local)}
    proxy = ProxySettings.from_env(specs["egress-proxy"].env)
    assert (proxy.ca_dir, proxy.ca_public_dir) == (layout.egress_ca, layout.egress_ca_public)
    hub_env = specs["jupyterhub"].env
    assert hub_env["INFRACALC_EGRESS_CA_CERT"] == str(layout.egress_ca_public / "ca-cert.pem")
    assert not any(str(layout.egress_ca) + "/" in value for value in hub_env.values())  # not the key's directory
    names = list(specs)
    assert names.index("egress-proxy") < names.index("jupyterhub")  # it publishes before bubbles need it
