"""The production Docker path, checked by reading files: no Docker engine is needed.

The rule these tests hold: a bubble can reach nothing but the hub, the service and the egress
proxy, and only the egress proxy (and the hub, which browsers must reach) has a route out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infracalc.identity.realm import PLACEHOLDERS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
IMAGES = REPO / "images"
REALM_FILE = "infracalc/identity/infracalc-realm.json"

BUBBLE_NETWORK = "bubbles"
#: Everything a bubble may reach: the network's members are exactly these.
BUBBLE_PEERS = {"jupyterhub", "service", "egress-proxy"}
#: Members of `bubbles` allowed a routed network: the hub (browsers) and the proxy (its job).
BUBBLE_PEERS_WITH_ROUTE_OUT = {"jupyterhub", "egress-proxy"}
#: Services that keep data, and the container path their named volume must be mounted at.
STATEFUL = {
    "keycloak-db": "/var/lib/postgresql/data",
    "db": "/var/lib/postgresql/data",
    "s3": "/data",
    "jupyterhub": "/srv/jupyterhub",
}
#: (service, container port) published on every interface; every other published port is loopback.
PUBLIC_PORTS = {("jupyterhub", "8000"), ("keycloak", "8080")}
#: Placeholders in the realm file that Keycloak resolves from its environment.
REALM_PLACEHOLDERS = set(PLACEHOLDERS)
SECRET_WORDS = {"PASSWORD", "SECRET", "KEY"}

# `$${X}` is compose's escape for a literal `${X}`, hence the look-behind.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")
CREDENTIALS_IN_URL = re.compile(r"://[^/:@\s]+:([^@\s]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    assert found
    return found


@pytest.fixture(scope="module")
def networks(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec or {} for name, spec in compose.get("networks", {}).items()}


def service_networks(service: dict[str, Any]) -> set[str]:
    """Networks a service joins; compose puts a service without `networks` on `default`."""
    declared = service.get("networks", ["default"])
    return set(declared)  # a list of names or a mapping keyed by name


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def is_internal(networks: dict[str, dict[str, Any]], name: str) -> bool:
    return networks.get(name, {}).get("internal") is True


def strings(node: object) -> Iterator[str]:
    """Every string in a parsed YAML tree, keys included (comments are already gone)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, separator, _ = stripped.partition("=")
            assert separator, f".env.example: {line!r} is not NAME=value"
            names.add(name.strip())
    return names


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            mounts.append((source, rest.split(":")[0]))
        else:
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
    return mounts


def names_a_secret(setting: str) -> bool:
    """Whether a setting's name has a secret word as one of its `_` parts (KEYCLOAK is not KEY)."""
    return bool(SECRET_WORDS & set(setting.upper().split("_")))


def is_pinned(reference: str) -> bool:
    """An image reference with a digest, or a tag other than `latest`."""
    if "@sha256:" in reference:
        return True
    name = reference.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


def dockerfiles() -> list[Path]:
    return sorted(IMAGES.glob("*/Dockerfile"))


def from_images(dockerfile: Path) -> list[str]:
    """Base images of each FROM line; references to earlier build stages are left out."""
    stages: set[str] = set()
    images = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        words = [word for word in words[1:] if not word.startswith("--")]
        if words[0] not in stages:
            images.append(words[0])
        if len(words) >= 3 and words[1].upper() == "AS":  # FROM image AS name
            stages.add(words[2])
    return images


def dockerfile_instructions(dockerfile: Path, instruction: str) -> list[str]:
    """Arguments of every `instruction` line, continuation lines joined."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    prefix = instruction.upper() + " "
    return [line.strip()[len(prefix) :] for line in text.splitlines() if line.strip().upper().startswith(prefix)]


# --- Networks: what a bubble can reach -------------------------------------------------------


def test_bubbles_network_is_internal(networks: dict[str, dict[str, Any]]) -> None:
    assert BUBBLE_NETWORK in networks
    assert is_internal(networks, BUBBLE_NETWORK), "bubbles must have no gateway: internal: true"


def test_only_hub_service_and_egress_proxy_are_on_bubbles(services: dict[str, dict[str, Any]]) -> None:
    on_bubbles = {name for name, service in services.items() if BUBBLE_NETWORK in service_networks(service)}
    assert on_bubbles == BUBBLE_PEERS


def test_no_service_bypasses_compose_networks(services: dict[str, dict[str, Any]]) -> None:
    # network_mode (host, another container's namespace) would make the network rules meaningless.
    assert [name for name, service in services.items() if "network_mode" in service] == []


def test_every_network_a_service_joins_is_declared(
    services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]
) -> None:
    # An undeclared network (including the implicit `default`) would be routed, not internal.
    undeclared = {
        (name, network)
        for name, service in services.items()
        for network in service_networks(service)
        if network not in networks
    }
    assert undeclared == set()


def test_egress_proxy_is_dual_homed(services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]) -> None:
    joined = service_networks(services["egress-proxy"])
    assert BUBBLE_NETWORK in joined
    assert [network for network in joined if not is_internal(networks, network)], "the proxy needs a route out"


def test_bubble_peers_have_no_route_out_unless_they_must(
    services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]
) -> None:
    routed = {
        name
        for name, service in services.items()
        if BUBBLE_NETWORK in service_networks(service)
        and any(not is_internal(networks, network) for network in service_networks(service))
    }
    assert routed <= BUBBLE_PEERS_WITH_ROUTE_OUT, f"on bubbles with a route out: {routed - BUBBLE_PEERS_WITH_ROUTE_OUT}"


def test_the_egress_proxy_is_the_only_member_of_its_outbound_network(
    services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]
) -> None:
    # A routed network the proxy shares with the hub would let hub-side traffic blur with egress.
    outbound = {network for network in service_networks(services["egress-proxy"]) if not is_internal(networks, network)}
    sharing = {
        name for name, service in services.items() if name != "egress-proxy" and service_networks(service) & outbound
    }
    assert sharing == set()


def test_hub_spawns_bubbles_on_the_bubbles_network(
    services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]
) -> None:
    docker_name = networks[BUBBLE_NETWORK].get("name")
    assert docker_name, "bubbles needs a fixed Docker name for DockerSpawner"
    assert environment(services["jupyterhub"])["INFRACALC_BUBBLE_NETWORK"] == docker_name


def test_hub_mounts_the_docker_socket(services: dict[str, dict[str, Any]]) -> None:
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in volume_mounts(services["jupyterhub"])


def test_published_ports_are_loopback_except_the_public_ones(services: dict[str, dict[str, Any]]) -> None:
    exposed = []
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert isinstance(entry, str), f"{name}: use the short 'host_ip:host:container' port syntax"
            container_port = entry.rsplit(":", 1)[-1].split("/")[0]
            if (name, container_port) not in PUBLIC_PORTS and not entry.startswith("127.0.0.1:"):
                exposed.append((name, entry))
    assert exposed == []


# --- Health and state --------------------------------------------------------------------------


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    missing = [
        name
        for name, service in services.items()
        if not service.get("healthcheck", {}).get("test")
        or service["healthcheck"].get("disable")
        or service["healthcheck"]["test"] in (["NONE"], "NONE")
    ]
    assert missing == []


def test_stateful_services_use_declared_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, target in STATEFUL.items():
        sources = {source for source, mounted_at in volume_mounts(services[name]) if mounted_at == target}
        assert sources, f"{name}: nothing mounted at {target}"
        assert sources <= declared, f"{name}: {target} must be a named volume declared at top level"


def test_every_named_volume_used_is_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    named = {
        source
        for service in services.values()
        for source, _ in volume_mounts(service)
        if source and not source.startswith(("/", ".", "~"))
    }
    assert named - declared == set()


def test_opa_loads_the_repository_policies_read_only(services: dict[str, dict[str, Any]]) -> None:
    assert "./policies:/policies:ro" in services["opa"]["volumes"]
    assert (REPO / "policies").is_dir()


# --- Secrets -------------------------------------------------------------------------------------


def test_every_variable_is_in_env_example(compose: dict[str, Any]) -> None:
    used = {match for text in strings(compose) for match in VARIABLE.findall(text)}
    assert used, "secrets must come from the environment"
    assert used - env_example_names() == set()


def test_env_example_lists_nothing_unused(compose: dict[str, Any]) -> None:
    used = {match for text in strings(compose) for match in VARIABLE.findall(text)}
    assert env_example_names() - used == set()


def test_env_example_values_are_placeholders() -> None:
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if line.startswith("#") or not value or not names_a_secret(name):
            continue
        assert value.startswith("change-me-"), f"{name} in .env.example must be an obvious placeholder"


def test_no_literal_secret_in_environment(services: dict[str, dict[str, Any]]) -> None:
    literal = [
        (name, key)
        for name, service in services.items()
        for key, value in environment(service).items()
        # An empty value holds no secret (the realm's SMTP password when the relay needs no login).
        if names_a_secret(key) and value != "" and not REQUIRED_VARIABLE.fullmatch(value)
    ]
    assert literal == [], "secret-like settings must be ${VAR:?message} interpolations"


def test_no_literal_password_in_urls(compose: dict[str, Any]) -> None:
    literal = [
        text
        for text in strings(compose)
        for password in CREDENTIALS_IN_URL.findall(text)
        if not REQUIRED_VARIABLE.fullmatch(password)
    ]
    assert literal == []


# --- Keycloak ------------------------------------------------------------------------------------


def test_keycloak_imports_the_realm(services: dict[str, dict[str, Any]]) -> None:
    keycloak = services["keycloak"]
    assert keycloak["command"][:1] == ["start"]
    assert "--import-realm" in keycloak["command"]
    mounts = dict(volume_mounts(keycloak))
    assert mounts.get(f"./{REALM_FILE}", "").startswith("/opt/keycloak/data/import/")


def test_realm_file_exists() -> None:
    assert (REPO / REALM_FILE).is_file()


def test_keycloak_gets_the_realm_placeholders(services: dict[str, dict[str, Any]]) -> None:
    assert REALM_PLACEHOLDERS - environment(services["keycloak"]).keys() == set()


# --- Images ----------------------------------------------------------------------------------------


def test_every_build_uses_a_dockerfile_under_images(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert built
    for name, build in built.items():
        spec = {"context": build} if isinstance(build, str) else build
        dockerfile = (REPO / spec.get("context", ".") / spec.get("dockerfile", "Dockerfile")).resolve()
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert dockerfile.is_relative_to(IMAGES), f"{name}: {dockerfile} is not under images/"


def test_every_compose_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name}: no image"
        if "image" in service:
            assert is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


def test_every_dockerfile_base_image_is_pinned() -> None:
    assert {path.parent.name for path in dockerfiles()} >= {"service", "hub", "bubble"}
    for path in dockerfiles():
        bases = from_images(path)
        assert bases, f"{path}: no FROM"
        unpinned = [image for image in bases if not is_pinned(image)]
        assert unpinned == [], f"{path}: unpinned base images"


@pytest.mark.parametrize("image", ["service", "bubble"])
def test_image_runs_as_an_unprivileged_user(image: str) -> None:
    users = dockerfile_instructions(IMAGES / image / "Dockerfile", "USER")
    assert users, "set USER explicitly"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_service_image_runs_the_cli_with_a_healthcheck() -> None:
    dockerfile = IMAGES / "service" / "Dockerfile"
    assert dockerfile_instructions(dockerfile, "ENTRYPOINT") == ['["infracalc"]']
    assert dockerfile_instructions(dockerfile, "HEALTHCHECK")
    assert any("pyproject.toml" in line for line in dockerfile_instructions(dockerfile, "COPY"))


def test_bubble_image_adds_no_network_tools() -> None:
    tools = re.compile(r"\b(curl|wget|netcat|ncat|nc|socat|nmap|openssh-client|telnet|iproute2|iputils-ping)\b")
    installs = re.compile(r"\b(install|add)\b")  # apt-get/pip/mamba/npm install, apk add; a purge may name them
    runs = dockerfile_instructions(IMAGES / "bubble" / "Dockerfile", "RUN")
    commands = [command for run in runs for command in re.split(r"&&|;|\|\|", run)]
    assert [command for command in commands if installs.search(command) and tools.search(command)] == []


def test_compose_runs_the_cli_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["service"]["command"] == ["serve"]
    assert services["egress-proxy"]["command"] == ["egress-proxy"]
    assert services["jupyterhub"]["build"]["dockerfile"] == "images/hub/Dockerfile"
    hub_config = ("./hub_config/jupyterhub_config.py", "/etc/jupyterhub/jupyterhub_config.py")
    assert hub_config in volume_mounts(services["jupyterhub"])


def test_the_proxy_holds_its_secret_and_the_service_only_its_digest(services: dict[str, dict[str, Any]]) -> None:
    proxy, service = environment(services["egress-proxy"]), environment(services["service"])
    assert proxy["INFRACALC_EGRESS_PROXY_SECRET"].startswith("${INFRACALC_EGRESS_PROXY_SECRET:?")
    assert proxy["INFRACALC_SERVICE_URL"] == "http://service:8000"
    assert "INFRACALC_EGRESS_PROXY_SECRET" not in service
    assert service["INFRACALC_EGRESS_PROXY_SECRET_SHA256"].startswith("${INFRACALC_EGRESS_PROXY_SECRET_SHA256:?")
    assert "INFRACALC_DATABASE_URL" not in proxy  # decisions come from OPA, records go through the service


def test_mail_leaves_only_through_the_relay(
    services: dict[str, dict[str, Any]], networks: dict[str, dict[str, Any]]
) -> None:
    # The service (invitations) and Keycloak (its required-action links) hand mail to the relay on
    # the internal network; the relay alone has a route to the smarthost.
    for sender in ("service", "keycloak"):
        assert environment(services[sender])["INFRACALC_SMTP_HOST"] == "mail"
        assert "backend" in service_networks(services[sender])
    assert "backend" in service_networks(services["mail"])
    routed = {network for network in service_networks(services["mail"]) if not is_internal(networks, network)}
    assert routed, "the relay needs a route to the smarthost"
    assert {name for name, service in services.items() if service_networks(service) & routed} == {"mail"}
