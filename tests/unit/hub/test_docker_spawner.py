"""The production spawner, without a Docker engine: what it would ask Docker to create, and what it refuses.

The spawner is built from a traitlets ``Config()`` as ``hub_config/jupyterhub_config.py`` sets it.
Its Docker client is docker-py's real ``APIClient`` (API 1.45) with only the calls that would reach
the daemon answered in memory: the container's create request is therefore the very JSON body
docker-py would POST to ``/containers/create``, host config included.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import docker
import docker.errors
import pytest
import requests
from docker.utils.proxy import ProxyConfig
from jupyterhub.objects import Hub
from tornado.web import HTTPError
from traitlets.config import Config

from infracalc.hub import hooks
from infracalc.hub.bubbles import BubbleRegistration, ServiceRefused
from infracalc.hub.docker import (
    PROJECT_DIR,
    PROJECT_ID,
    WORK_DIR,
    BubbleRefused,
    InfracalcDockerSpawner,
    image_is_pinned,
)
from infracalc.service.projects.schemas import SLUG_PATTERN

IMAGE = "infracalc/bubble:0.1.0"
NETWORK = "infracalc-bubbles"
BUBBLE_IP = "172.30.0.7"
GIB = 1024**3

#: What the pre-spawn hook puts in ``Spawner.environment`` (infracalc.hub.bubbles.bubble_environment).
BUBBLE_ENVIRONMENT = {
    "INFRACALC_API_URL": "http://service:8000/api/v1",
    "INFRACALC_BUBBLE_TOKEN": "bubble-token-not-a-real-one",
    "INFRACALC_BUBBLE_ID": "b-123",
    "INFRACALC_PROJECT": "census-2021",
    "HTTP_PROXY": "http://b-123:bubble-token-not-a-real-one@egress-proxy:3128",
    "HTTPS_PROXY": "http://b-123:bubble-token-not-a-real-one@egress-proxy:3128",
    "http_proxy": "http://b-123:bubble-token-not-a-real-one@egress-proxy:3128",
    "https_proxy": "http://b-123:bubble-token-not-a-real-one@egress-proxy:3128",
    "NO_PROXY": "jupyterhub,service,localhost,127.0.0.1",
    "no_proxy": "jupyterhub,service,localhost,127.0.0.1",
}


def _not_found(what: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 404
    response.reason = f"No such {what}"
    return response


class DockerEngine(docker.APIClient):  # type: ignore[misc]
    """docker-py's client, with the daemon's answers for the calls a spawn makes kept in memory."""

    def __init__(self, images: set[str]) -> None:
        # A fixed version: "auto" would ask the daemon. No connection is made until a request.
        super().__init__(version="1.45")
        self.images = images
        self.containers: dict[str, dict[str, Any]] = {}
        #: (name, JSON body) of each POST /containers/create.
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.started: list[str] = []
        self.removed: list[str] = []

    def inspect_image(self, image: str) -> dict[str, Any]:
        if image not in self.images:
            raise docker.errors.ImageNotFound(f"No such image: {image}", response=_not_found("image"))
        return {"Id": "sha256:" + "ab" * 32, "RepoTags": [image], "Config": {"Cmd": ["start-notebook.py"]}}

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        """The one HTTP request answered here: POST /containers/create, with docker-py's real body."""
        assert url == self._url("/containers/create"), f"unexpected request to the daemon: POST {url}"
        name = kwargs["params"]["name"]
        body = json.loads(kwargs["data"])
        container_id = secrets.token_hex(32)
        self.created.append((name, body))
        self.containers[container_id] = {
            "Id": container_id,
            "Name": name,
            "Config": {"Env": body.get("Env", [])},
            "State": {"Running": False},
            "NetworkSettings": {"Networks": {body["HostConfig"]["NetworkMode"]: {"IPAddress": BUBBLE_IP}}},
        }
        response = requests.Response()
        response.status_code = 201
        response._content = json.dumps({"Id": container_id, "Warnings": []}).encode()
        return response

    def _container(self, container: str) -> dict[str, Any]:
        for found in self.containers.values():
            if container in (found["Id"], found["Name"]):
                return found
        raise docker.errors.NotFound(f"No such container: {container}", response=_not_found("container"))

    def inspect_container(self, container: str) -> dict[str, Any]:
        return self._container(container)

    def start(self, container: str) -> None:
        self._container(container)["State"]["Running"] = True
        self.started.append(container)

    def stop(self, container: str, timeout: int | None = None) -> None:
        self._container(container)["State"]["Running"] = False

    def remove_container(self, container: str, v: bool = False, link: bool = False, force: bool = False) -> None:
        self.containers.pop(self._container(container)["Id"])
        self.removed.append(container)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[DockerEngine]:
    engine = DockerEngine({IMAGE})
    # DockerSpawner keeps one client per class, in `_client`: that is the seam.
    monkeypatch.setattr(InfracalcDockerSpawner, "_client", engine)
    yield engine
    engine.close()


def production_config(**settings: Any) -> Config:
    """The DockerSpawner section of jupyterhub_config.py, plus ``settings``."""
    config = Config()
    config.InfracalcDockerSpawner.image = IMAGE
    config.InfracalcDockerSpawner.network_name = NETWORK
    config.InfracalcDockerSpawner.use_internal_ip = True
    for name, value in settings.items():
        setattr(config.InfracalcDockerSpawner, name, value)
    return config


def make_spawner(config: Config, *, user: str = "alice", server: str = "census-2021") -> InfracalcDockerSpawner:
    hub = Hub(ip="0.0.0.0", connect_ip="jupyterhub", port=8081, base_url="/hub/")  # noqa: S104 - as in production
    return InfracalcDockerSpawner(
        config=config,
        user=SimpleNamespace(name=user, escaped_name=user, url=f"/user/{user}/"),
        orm_spawner=SimpleNamespace(name=server, display_name=server, server=None, last_activity=None),
        hub=hub,
        api_token=secrets.token_hex(16),
        oauth_client_id=f"jupyterhub-user-{user}-{server}",
    )


def environment(body: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in body["Env"])


async def start(spawner: InfracalcDockerSpawner, engine: DockerEngine) -> tuple[tuple[str, int], str, dict[str, Any]]:
    address = await spawner.start()
    assert len(engine.created) == 1
    name, body = engine.created[0]
    return address, name, body


# --- What a bubble is --------------------------------------------------------------------------


async def test_the_container_is_pinned_isolated_limited_and_removed_at_stop(engine: DockerEngine) -> None:
    spawner = make_spawner(production_config())
    address, name, body = await start(spawner, engine)
    host = body["HostConfig"]

    assert body["Image"] == IMAGE
    assert name == "infracalc-bubble-alice--census-2021"
    assert address == (BUBBLE_IP, 8888)
    assert engine.started == [engine.containers[spawner.object_id]["Id"]]

    # Only the internal network, reached at the container's address: nothing published.
    assert host["NetworkMode"] == NETWORK
    assert "PortBindings" not in host
    assert not host.get("PublishAllPorts")
    assert set(body["ExposedPorts"]) == {"8888/tcp"}
    assert "NetworkingConfig" not in body

    # Limits and privileges.
    assert host["Memory"] == 4 * GIB
    assert (host["CpuQuota"], host["CpuPeriod"]) == (200_000, 100_000)
    assert host["PidsLimit"] == 512
    assert host["CapDrop"] == ["ALL"]
    assert "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert not host.get("Privileged")
    assert "User" not in body  # the image's own unprivileged user
    assert host["AutoRemove"] is True

    # The project's shared volume, the user's own volume for this project, the egress CA's public files
    # (read-only), and nothing else.
    assert sorted(host["Binds"]) == [
        f"infracalc-alice--census-2021:{WORK_DIR}:rw",
        "infracalc-egress-ca:/etc/infracalc/egress-ca:ro",
        f"infracalc-project-census-2021:{PROJECT_DIR}:rw",
    ]
    assert body["Volumes"] == {PROJECT_DIR: {}, WORK_DIR: {}, "/etc/infracalc/egress-ca": {}}
    assert "Mounts" not in host or host["Mounts"] == []

    container_id = spawner.object_id
    await spawner.stop()
    assert engine.removed == [container_id]
    assert engine.containers == {}


async def test_volumes_are_per_project_and_per_user_in_a_project(engine: DockerEngine) -> None:
    binds = {}
    for user, project in [("alice", "census-2021"), ("bob", "census-2021"), ("alice", "health-survey")]:
        engine.created.clear()
        await make_spawner(production_config(), user=user, server=project).start()
        binds[user, project] = set(engine.created[0][1]["HostConfig"]["Binds"])

    project = f"infracalc-project-census-2021:{PROJECT_DIR}:rw"
    assert project in binds["alice", "census-2021"] & binds["bob", "census-2021"]
    assert project not in binds["alice", "health-survey"]
    # Alice's files in one project are not mounted in her other project, nor in Bob's bubble.
    assert f"infracalc-alice--census-2021:{WORK_DIR}:rw" not in binds["alice", "health-survey"]
    assert f"infracalc-alice--census-2021:{WORK_DIR}:rw" not in binds["bob", "census-2021"]


async def test_limits_come_from_the_configuration(engine: DockerEngine) -> None:
    config = production_config(mem_limit="8G", cpu_limit=4.0, pids_limit=1024)
    _, _, body = await start(make_spawner(config), engine)
    host = body["HostConfig"]
    assert host["Memory"] == 8 * GIB
    assert host["CpuQuota"] == 400_000
    assert host["PidsLimit"] == 1024


async def test_the_hooks_environment_reaches_the_bubble_and_the_hubs_does_not(
    engine: DockerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets in the hub's own environment, and a proxy in the hub's Docker client configuration.
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-secret")
    monkeypatch.setenv("INFRACALC_JUPYTERHUB_CLIENT_SECRET", "hub-client-secret")
    engine._proxy_configs = ProxyConfig(http="http://corporate:8080", https="http://corporate:8080", no_proxy="*")

    spawner = make_spawner(production_config())
    spawner.environment = dict(BUBBLE_ENVIRONMENT)  # as the pre-spawn hook does
    _, _, body = await start(spawner, engine)
    env = environment(body)

    assert {key: env.get(key) for key in BUBBLE_ENVIRONMENT} == BUBBLE_ENVIRONMENT
    assert env["JUPYTERHUB_API_URL"] == "http://jupyterhub:8081/hub/api"
    assert env["JUPYTERHUB_SERVER_NAME"] == "census-2021"
    assert env["JUPYTERHUB_API_TOKEN"] == spawner.api_token
    assert len(body["Env"]) == len(env), "each variable once: no proxy setting added in front"
    assert "corporate" not in " ".join(body["Env"])
    assert "JUPYTERHUB_CRYPT_KEY" not in env
    assert "INFRACALC_JUPYTERHUB_CLIENT_SECRET" not in env


async def test_harmless_extras_pass_and_the_configured_extras_are_kept(engine: DockerEngine) -> None:
    def extra_host_config(spawner: InfracalcDockerSpawner) -> dict[str, Any]:
        return {"shm_size": "1G", "cpu_period": 50_000}

    labels = {"org.infracalc.project": "census-2021"}
    spawner = make_spawner(
        production_config(extra_host_config=extra_host_config, extra_create_kwargs={"labels": labels})
    )
    _, _, body = await start(spawner, engine)
    host = body["HostConfig"]

    assert host["ShmSize"] == GIB
    assert (host["CpuQuota"], host["CpuPeriod"]) == (100_000, 50_000)
    assert host["CapDrop"] == ["ALL"]
    assert host["PidsLimit"] == 512
    assert body["Labels"] == labels
    assert spawner.extra_host_config is extra_host_config
    assert spawner.extra_create_kwargs == {"labels": labels}


async def test_a_digest_pinned_image_is_accepted(engine: DockerEngine) -> None:
    image = "registry.example:5000/infracalc/bubble@sha256:" + "0" * 64
    engine.images.add(image)
    _, _, body = await start(make_spawner(production_config(image=image)), engine)
    assert body["Image"] == image


# --- What is refused, before anything is created -----------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "infracalc/bubble:latest",
        "infracalc/bubble",
        "registry.example:5000/infracalc/bubble",
        "infracalc/bubble:",
        "",
    ],
)
async def test_an_unpinned_image_is_refused(engine: DockerEngine, image: str) -> None:
    engine.images.add(image)
    spawner = make_spawner(production_config(image=image))
    with pytest.raises(BubbleRefused) as refused:
        await spawner.start()
    assert refused.value.reason == "image"
    assert refused.value.status_code == 500
    assert "c.InfracalcDockerSpawner.image" in refused.value.message
    assert engine.created == []


async def test_the_image_is_required(engine: DockerEngine) -> None:
    config = Config()
    config.InfracalcDockerSpawner.network_name = NETWORK
    with pytest.raises(BubbleRefused, match="no bubble image is set"):
        await make_spawner(config).start()
    assert engine.created == []


async def test_a_missing_image_is_not_pulled_and_says_how_to_build_it(engine: DockerEngine) -> None:
    spawner = make_spawner(production_config(image="infracalc/bubble:9.9.9"))
    with pytest.raises(BubbleRefused, match=r"docker build -f images/bubble/Dockerfile -t infracalc/bubble:9\.9\.9"):
        await spawner.start()
    assert spawner.pull_policy == "never"
    assert engine.created == []


@pytest.mark.parametrize("network", ["bridge", "host", "none", "container:infracalc-egress-proxy-1"])
async def test_a_routed_or_shared_network_is_refused(engine: DockerEngine, network: str) -> None:
    with pytest.raises(BubbleRefused, match="internal bubbles network") as refused:
        await make_spawner(production_config(network_name=network)).start()
    assert refused.value.reason == "network"
    assert engine.created == []


async def test_published_ports_are_refused(engine: DockerEngine) -> None:
    with pytest.raises(BubbleRefused, match="use_internal_ip must be True"):
        await make_spawner(production_config(use_internal_ip=False)).start()
    assert engine.created == []


@pytest.mark.parametrize(
    "extra",
    [
        {"privileged": True},
        {"network_mode": "host"},
        {"port_bindings": {8888: ("0.0.0.0", 8888)}},  # noqa: S104 - what is refused
        {"publish_all_ports": True},
        {"cap_add": ["NET_ADMIN"]},
        {"cap_drop": []},
        {"security_opt": ["seccomp=unconfined"]},
        {"pids_limit": -1},
        {"pid_mode": "host"},
        {"devices": ["/dev/fuse"]},
        {"binds": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}},
    ],
    ids=lambda extra: next(iter(extra)),
)
async def test_host_settings_that_undo_isolation_are_refused(engine: DockerEngine, extra: dict[str, Any]) -> None:
    with pytest.raises(BubbleRefused, match=f"extra_host_config may not set {next(iter(extra))}") as refused:
        await make_spawner(production_config(extra_host_config=extra)).start()
    assert refused.value.reason == "isolation"
    assert engine.created == []


async def test_a_callable_extra_host_config_is_checked_too(engine: DockerEngine) -> None:
    async def privileged(spawner: InfracalcDockerSpawner) -> dict[str, Any]:
        return {"privileged": True}

    with pytest.raises(BubbleRefused, match="may not set privileged"):
        await make_spawner(production_config(extra_host_config=privileged)).start()
    assert engine.created == []


@pytest.mark.parametrize(
    "extra",
    [{"user": "root"}, {"host_config": {"Privileged": True}}, {"networking_config": {}}, {"use_config_proxy": True}],
    ids=lambda extra: next(iter(extra)),
)
async def test_create_settings_that_undo_isolation_are_refused(engine: DockerEngine, extra: dict[str, Any]) -> None:
    with pytest.raises(BubbleRefused, match="extra_create_kwargs may not set"):
        await make_spawner(production_config(extra_create_kwargs=extra)).start()
    assert engine.created == []


@pytest.mark.parametrize(
    "settings",
    [
        {"volumes": {"/var/run/docker.sock": "/var/run/docker.sock"}},
        {"read_only_volumes": {"/srv/data": "/home/jovyan/data"}},
        {"mounts": [{"type": "bind", "source": "/etc", "target": "/host-etc"}]},
    ],
    ids=["volumes", "read_only_volumes", "mounts"],
)
async def test_host_paths_are_refused(engine: DockerEngine, settings: dict[str, Any]) -> None:
    with pytest.raises(BubbleRefused, match="named volumes only") as refused:
        await make_spawner(production_config(**settings)).start()
    assert refused.value.reason == "volumes"
    assert engine.created == []


@pytest.mark.parametrize("settings", [{"mem_limit": None}, {"cpu_limit": None}, {"cpu_limit": 0.0}])
async def test_a_bubble_without_limits_is_refused(engine: DockerEngine, settings: dict[str, Any]) -> None:
    with pytest.raises(BubbleRefused, match="memory limit and a CPU limit"):
        await make_spawner(production_config(**settings)).start()
    assert engine.created == []


async def test_the_default_server_is_refused_a_bubble_belongs_to_a_project(engine: DockerEngine) -> None:
    with pytest.raises(BubbleRefused, match="belongs to a project") as refused:
        await make_spawner(production_config(), server="").start()
    assert refused.value.status_code == 400
    assert engine.created == []


@pytest.mark.parametrize("server", ["Census", "census--2021", "../etc", "ab", "census_2021"])
async def test_a_server_name_that_is_no_project_id_is_refused(engine: DockerEngine, server: str) -> None:
    with pytest.raises(BubbleRefused, match="not a project id") as refused:
        await make_spawner(production_config(), server=server).start()
    assert refused.value.status_code == 400
    assert engine.created == []


async def test_settings_are_checked_before_the_pre_spawn_hook_registers_a_bubble(engine: DockerEngine) -> None:
    registered = []

    def pre_spawn_hook(spawner: InfracalcDockerSpawner) -> None:
        registered.append(spawner.project)
        spawner.environment = dict(BUBBLE_ENVIRONMENT)

    refused = make_spawner(production_config(image="infracalc/bubble:latest", pre_spawn_hook=pre_spawn_hook))
    with pytest.raises(BubbleRefused):
        refused.run_pre_spawn_hook()
    assert registered == []

    accepted = make_spawner(production_config(pre_spawn_hook=pre_spawn_hook))
    accepted.run_pre_spawn_hook()
    assert registered == ["census-2021"]
    _, _, body = await start(accepted, engine)
    assert environment(body)["INFRACALC_PROJECT"] == "census-2021"


# --- Helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("infracalc/bubble:0.1.0", True),
        ("quay.io/jupyter/minimal-notebook:2025-10-06", True),
        ("registry.example:5000/infracalc/bubble:1.2", True),
        ("infracalc/bubble@sha256:" + "a" * 64, True),
        ("infracalc/bubble:latest", False),
        ("infracalc/bubble:LATEST", False),
        ("infracalc/bubble", False),
        ("registry.example:5000/infracalc/bubble", False),
    ],
)
def test_image_is_pinned(reference: str, pinned: bool) -> None:
    assert image_is_pinned(reference) is pinned


def test_the_project_id_is_the_services() -> None:
    assert PROJECT_ID.pattern == SLUG_PATTERN


# --- Where the bubble runs: its credentials are bound to the container's address -----------------


class RecordingService:
    """The service's two calls a start makes, recorded (the real route is tested with the service)."""

    def __init__(self, status: int | None = None) -> None:
        self.status = status
        self.bound: list[tuple[str, str]] = []

    async def bind_address(self, bubble_id: str, address: str) -> None:
        if self.status is not None:
            raise ServiceRefused(self.status, "the service is down")
        self.bound.append((bubble_id, address))


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> RecordingService:
    recording = RecordingService()
    monkeypatch.setattr(hooks, "_wiring", hooks._Wiring(service=recording))  # type: ignore[arg-type]
    return recording


def registered(spawner: InfracalcDockerSpawner) -> InfracalcDockerSpawner:
    spawner.bubble = BubbleRegistration("b-123", "census-2021", "alice", "token")  # what the pre-spawn hook sets
    return spawner


async def test_once_the_container_has_its_address_the_bubble_is_bound_to_it(
    engine: DockerEngine, service: RecordingService
) -> None:
    address, _, _ = await start(registered(make_spawner(production_config())), engine)
    assert address == (BUBBLE_IP, 8888)
    assert service.bound == [("b-123", BUBBLE_IP)]


async def test_a_bubble_whose_address_the_service_did_not_record_is_stopped(
    engine: DockerEngine, service: RecordingService
) -> None:
    service.status = 503
    spawner = registered(make_spawner(production_config()))
    with pytest.raises(HTTPError, match="address cannot be registered"):
        await spawner.start()
    assert engine.started
    assert engine.containers == {}  # stopped and removed: nothing runs without its address bound
