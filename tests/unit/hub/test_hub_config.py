"""hub_config/jupyterhub_config.py in both modes: what it sets, and that a missing required value stops it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from traitlets.config import Config

from infracalc.hub import hooks

HUB_CONFIG = Path(__file__).resolve().parents[3] / "hub_config" / "jupyterhub_config.py"

COMMON = {
    "INFRACALC_KEYCLOAK_URL": "https://id.infracalc.example",
    "INFRACALC_HUB_URL": "https://hub.infracalc.example",
    "INFRACALC_SERVICE_URL": "http://service:8000",
    "INFRACALC_JUPYTERHUB_CLIENT_SECRET": "client-secret",
    "INFRACALC_OPA_URL": "http://opa:8181",
    "INFRACALC_HUB_SERVICE_TOKEN": "service-token",
}
PRODUCTION = {
    **COMMON,
    "INFRACALC_HUB_MODE": "production",
    "INFRACALC_BUBBLE_IMAGE": "infracalc/bubble:0.1.0",
    "INFRACALC_BUBBLE_NETWORK": "infracalc_bubbles",
}
LOCAL = {
    **COMMON,
    "INFRACALC_HUB_MODE": "local",
    "INFRACALC_HUB_PORT": "8000",
    "INFRACALC_EGRESS_PROXY_URL": "http://127.0.0.1:3128",
    "INFRACALC_EGRESS_FORWARDED_SOCKET": "/srv/infracalc/egress-forwarded.sock",
    "INFRACALC_CHP_PATH": "/opt/chp/bin/configurable-http-proxy",
}


def load(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in {*PRODUCTION, *LOCAL}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    runpy.run_path(str(HUB_CONFIG), init_globals={"get_config": lambda: config})
    return config


def test_production_spawns_hardened_containers_behind_keycloak(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(PRODUCTION, monkeypatch)
    assert c.JupyterHub.authenticator_class == "infracalc.hub.authenticator.InfracalcAuthenticator"
    assert c.InfracalcAuthenticator.oauth_callback_url == "https://hub.infracalc.example/hub/oauth_callback"
    assert c.Authenticator.enable_auth_state is True
    assert c.JupyterHub.spawner_class == "infracalc.hub.docker.InfracalcDockerSpawner"
    assert c.InfracalcDockerSpawner.image == "infracalc/bubble:0.1.0"
    assert c.InfracalcDockerSpawner.network_name == "infracalc_bubbles"
    assert c.InfracalcDockerSpawner.remove is True
    assert c.JupyterHub.allow_named_servers is True
    assert c.Spawner.pre_spawn_hook is hooks.pre_spawn_hook
    assert c.Spawner.post_stop_hook is hooks.post_stop_hook
    assert c.Spawner.options_form is hooks.options_form
    assert [service["name"] for service in c.JupyterHub.services] == ["idle-culler", "infracalc"]
    assert c.JupyterHub.services[1]["api_token"] == "service-token"
    # The service stops the servers of the bubbles it revokes, and may do nothing else.
    assert {"name": "infracalc-revocations", "scopes": ["delete:servers"], "services": ["infracalc"]} in (
        c.JupyterHub.load_roles
    )


@pytest.mark.parametrize("env", [PRODUCTION, LOCAL], ids=["production", "local"])
def test_bubbles_open_on_jupyterlab_in_both_modes(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(env, monkeypatch).Spawner.default_url == "/lab"


def test_local_mode_isolates_bubbles_and_binds_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(LOCAL, monkeypatch)
    assert c.JupyterHub.spawner_class == "infracalc.hub.spawner.LocalBubbleSpawner"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.LocalBubbleSpawner.egress_proxy_url == "http://127.0.0.1:3128"
    assert c.LocalBubbleSpawner.isolate is True
    assert c.LocalBubbleSpawner.egress_proxy_socket == "/srv/infracalc/egress-forwarded.sock"
    assert c.ConfigurableHTTPProxy.command == ["/opt/chp/bin/configurable-http-proxy"]


@pytest.mark.parametrize(
    "missing",
    [
        "INFRACALC_BUBBLE_IMAGE",
        "INFRACALC_JUPYTERHUB_CLIENT_SECRET",
        "INFRACALC_HUB_MODE",
        "INFRACALC_HUB_SERVICE_TOKEN",
    ],
)
def test_a_missing_required_value_stops_the_hub_naming_it(missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError, match=missing):
        load({name: value for name, value in PRODUCTION.items() if name != missing}, monkeypatch)


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="INFRACALC_HUB_MODE"):
        load({**PRODUCTION, "INFRACALC_HUB_MODE": "test"}, monkeypatch)
