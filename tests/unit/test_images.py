"""The images under ``images/``, checked by reading their Dockerfiles: no Docker engine is needed.

``test_compose.py`` already holds that every base image is pinned and that the service and bubble
images end on an unprivileged USER; these tests hold what the images install, what they must not
carry (secrets, a proxy or index of their own, sudo, network clients) and that the hub and the
bubbles run the same JupyterHub.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infracalc.bubble import JUPYTER_CONFIG_DIR
from infracalc.egress.trust import IMAGE_CA_DIR, trust_environment
from infracalc.hub.docker import PROJECT_DIR, WORK_DIR
from infracalc.proxy.authority import BUNDLE_NAME, CERT_NAME
from tests.unit.test_compose import COMPOSE_FILE, IMAGES, REPO, dockerfile_instructions, dockerfiles, volume_mounts

BUBBLE = IMAGES / "bubble" / "Dockerfile"
HUB = IMAGES / "hub" / "Dockerfile"
SERVICE = IMAGES / "service" / "Dockerfile"

#: A requirement pinned to one version: ``name==version`` (extras allowed), no wildcard.
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]+\])?==(?P<version>[A-Za-z0-9.+!-]+)$")
#: Words that make a setting's name secret-like (as `_`-separated parts: KEYCLOAK is not KEY).
SECRET_PARTS = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIALS"}
#: Local state a build context may hold that must never end up in an image.
LOCAL_STATE = (".env", ".infracalc", ".git", ".tools", ".venv")
#: What the bubble's base image ships that a bubble must not have.
REMOVED_FROM_BUBBLE = {"sudo", "curl", "wget", "openssh-client"}
#: What a CASD researcher expects in a bubble, besides the single-user server and the client.
SCIENTIFIC_STACK = {"numpy", "pandas", "matplotlib", "duckdb", "geopandas"}
#: Requirements of the `hub` extra the hub image does not need: the single-user server runs in bubbles.
BUBBLE_SIDE = {"jupyter-server", "ipykernel"}
#: Where each image copies the repository's package before installing it (a path in the build, not a temp file).
PACKAGE_SOURCE = "/tmp/infracalc-src"  # noqa: S108


def commands(dockerfile: Path) -> list[list[str]]:
    """Each shell command of every RUN, split into words (``&&``, ``;`` and ``||`` separate commands)."""
    found = []
    for run in dockerfile_instructions(dockerfile, "RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            words = shlex.split(command)
            if words:
                found.append(words)
    return found


def installs(words: list[str]) -> list[str] | None:
    """The arguments of a ``pip install`` command (``pip``, ``pip3``, ``python -m pip``), else None."""
    for index, word in enumerate(words[:-1]):
        if Path(word).name in {"pip", "pip3"} and words[index + 1] == "install":
            return words[index + 2 :]
    return None


def pip_arguments(dockerfile: Path) -> list[str]:
    return [argument for words in commands(dockerfile) for argument in installs(words) or []]


def pins(dockerfile: Path) -> dict[str, str]:
    """Package (canonical name) -> pinned version, for every pinned pip requirement of a Dockerfile."""
    found = {}
    for argument in pip_arguments(dockerfile):
        match = PINNED.match(argument)
        if match:
            found[canonicalize_name(match["name"])] = match["version"]
    return found


def settings(dockerfile: Path) -> dict[str, str]:
    """Names and values of every ENV and ARG (``NAME=value`` or ``ENV NAME value``; an ARG may have none)."""
    found = {}
    for instruction in ("ENV", "ARG"):
        for line in dockerfile_instructions(dockerfile, instruction):
            words = shlex.split(line)
            if len(words) == 2 and "=" not in words[0] and instruction == "ENV":  # legacy `ENV NAME value`
                found[words[0]] = words[1]
                continue
            for word in words:
                name, _, value = word.partition("=")
                found[name] = value
    return found


def secret_like(name: str) -> bool:
    return bool(SECRET_PARTS & set(name.upper().split("_")))


@pytest.fixture(params=dockerfiles(), ids=lambda path: path.parent.name)
def dockerfile(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


# --- Every image ---------------------------------------------------------------------------------


def test_no_secret_is_set_in_an_image(dockerfile: Path) -> None:
    # An ENV stays in the image and an ARG in its history: secrets are given at run time.
    assert [name for name in settings(dockerfile) if secret_like(name)] == []


def test_no_local_state_is_copied_into_an_image(dockerfile: Path) -> None:
    for instruction in ("COPY", "ADD"):
        for line in dockerfile_instructions(dockerfile, instruction):
            sources = [word for word in shlex.split(line) if not word.startswith("--")][:-1]
            for source in sources:
                assert source not in {".", "./"}, f"{dockerfile}: copy named paths, not the whole context"
                first = Path(source).parts[0] if Path(source).parts else source
                assert first not in LOCAL_STATE, f"{dockerfile}: {instruction} {source}"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert set(LOCAL_STATE) <= ignored


def test_every_pip_requirement_is_pinned(dockerfile: Path) -> None:
    # The repository's own package is installed from the build context; everything named is `==`.
    for argument in pip_arguments(dockerfile):
        if argument.startswith("-"):
            assert argument in {"--no-cache-dir"}, f"{dockerfile}: pip option {argument} (no index, proxy or -r)"
        elif not argument.startswith(("/", ".")):
            assert PINNED.match(argument), f"{dockerfile}: {argument} is not pinned with =="


# --- The bubble ----------------------------------------------------------------------------------


def test_bubble_has_the_scientific_stack_the_single_user_server_and_the_client() -> None:
    assert SCIENTIFIC_STACK | {"jupyterhub"} <= pins(BUBBLE).keys()
    assert PACKAGE_SOURCE in pip_arguments(BUBBLE)


def test_bubble_installs_jupyterlab_and_the_kit_at_the_versions_local_bubbles_run() -> None:
    # Local bubbles run from the development environment, which installs pyproject.toml's `bubble` extra.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    bubble_pins = pins(BUBBLE)
    kit = [Requirement(line) for line in pyproject["project"]["optional-dependencies"]["bubble"]]
    assert {"jupyterlab", "pandas", "numpy", "matplotlib", "pyarrow", "scikit-learn", "httpx"} <= {
        canonicalize_name(requirement.name) for requirement in kit
    }
    for requirement in kit:
        name = canonicalize_name(requirement.name)
        assert name in bubble_pins, f"the bubble image does not install {name}"
        assert str(requirement.specifier) == f"=={bubble_pins[name]}", f"{name}: {requirement} in pyproject.toml"


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """Each COPY's sources and destination (options left out)."""
    found = []
    for line in dockerfile_instructions(dockerfile, "COPY"):
        words = [word for word in shlex.split(line) if not word.startswith("--")]
        found.append((words[:-1], words[-1]))
    return found


def test_bubble_uses_the_jupyter_configuration_local_bubbles_use() -> None:
    config_dir = JUPYTER_CONFIG_DIR.relative_to(REPO).as_posix()
    (target,) = [destination for sources, destination in copies(BUBBLE) if sources == [config_dir]]
    assert settings(BUBBLE)["JUPYTER_CONFIG_PATH"] == target


def test_bubble_gives_the_work_volume_its_welcome_notebooks_at_start() -> None:
    hooks = [
        (sources, destination)
        for sources, destination in copies(BUBBLE)
        if destination.startswith("/usr/local/bin/before-notebook.d/")
    ]
    assert len(hooks) == 1, hooks
    (source,), destination = hooks[0]
    assert destination.endswith(".sh")  # the base image's start.sh sources *.sh hooks
    script = (REPO / source).read_text(encoding="utf-8")
    assert 'python -m infracalc.bubble.welcome "/home/${NB_USER:-jovyan}/work"' in script
    assert WORK_DIR == "/home/jovyan/work"


def test_hub_and_bubbles_run_the_same_jupyterhub() -> None:
    assert pins(HUB)["jupyterhub"] == pins(BUBBLE)["jupyterhub"]


def test_bubble_clients_trust_the_egress_ca_bundle_mounted_read_only() -> None:
    # The same variables as a local bubble's (infracalc.egress.trust), pointing at the volume the hub mounts.
    expected = trust_environment(f"{IMAGE_CA_DIR}/{BUNDLE_NAME}", f"{IMAGE_CA_DIR}/{CERT_NAME}")
    assert {name: value for name, value in settings(BUBBLE).items() if name in expected} == expected


def test_bubble_sets_no_proxy_and_no_package_index_of_its_own() -> None:
    # The hub gives each bubble HTTP(S)_PROXY at spawn; an image value would be a fallback that
    # outlives a missing hook, and a pip or conda setting could point around the egress proxy.
    overriding = re.compile(r"(PROXY|^PIP_(INDEX_URL|EXTRA_INDEX_URL|TRUSTED_HOST|CERT|CONFIG_FILE)$|^CONDA_)", re.I)
    assert [name for name in settings(BUBBLE) if overriding.search(name)] == []
    copied = " ".join(dockerfile_instructions(BUBBLE, "COPY") + dockerfile_instructions(BUBBLE, "ADD"))
    assert not re.search(r"pip\.conf|pip\.ini|condarc|\.netrc", copied)
    runs = " ".join(dockerfile_instructions(BUBBLE, "RUN"))
    assert not re.search(r"--proxy|--index-url|--extra-index-url|--trusted-host|pip config|conda config", runs)


def test_bubble_removes_sudo_and_network_clients() -> None:
    purged = {
        package
        for words in commands(BUBBLE)
        if ("dpkg" in words and "--purge" in words) or ("apt-get" in words and "purge" in words)
        for package in words
        if not package.startswith("-")
    }
    assert purged >= REMOVED_FROM_BUBBLE


def test_bubble_keeps_the_base_images_single_user_start() -> None:
    # DockerSpawner runs the image's CMD (start-notebook.py), which starts jupyterhub-singleuser
    # when the hub's token is in the environment.
    assert dockerfile_instructions(BUBBLE, "CMD") == []
    assert dockerfile_instructions(BUBBLE, "ENTRYPOINT") == []


def test_bubble_creates_the_volume_mount_points_for_jovyan() -> None:
    # A new named volume takes its mount point's owner: a missing directory would be root's.
    created = {
        word.replace("${NB_USER}", "jovyan")
        for words in commands(BUBBLE)
        if words[0] == "mkdir"
        for word in words[1:]
        if not word.startswith("-")
    }
    assert {PROJECT_DIR, WORK_DIR} <= created
    users = dockerfile_instructions(BUBBLE, "USER")
    assert users[-1] == "${NB_UID}"


# --- The hub and the service ---------------------------------------------------------------------


def test_service_image_creates_the_egress_proxys_volume_mount_points_for_its_user() -> None:
    # The proxy writes its CA and the bubbles' copy into named volumes: a missing mount point would be root's.
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    targets = {target for _, target in volume_mounts(compose["services"]["egress-proxy"])}
    created = {
        words[-1]: words
        for words in commands(SERVICE)
        if words[:2] == ["install", "-d"] and words[words.index("-o") + 1] == "infracalc"
    }
    assert targets == {"/var/lib/infracalc/egress-ca", "/var/lib/infracalc/egress-ca-public"}
    assert targets <= set(created)
    assert created["/var/lib/infracalc/egress-ca"][-2] == "0700"  # the key's directory: the proxy's only


def test_hub_installs_what_the_hub_extra_requires() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    hub_pins = pins(HUB)
    for line in pyproject["project"]["optional-dependencies"]["hub"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in BUBBLE_SIDE:
            continue
        assert name in hub_pins, f"the hub image does not install {name}"
        assert requirement.specifier.contains(hub_pins[name]), f"{name}=={hub_pins[name]} breaks {line}"


def test_service_image_installs_the_package_without_the_hub() -> None:
    # `infracalc serve` and `infracalc egress-proxy` need the main dependencies only.
    assert pip_arguments(SERVICE) == [PACKAGE_SOURCE]
    assert pins(SERVICE) == {}
