"""The production spawner: each bubble a hardened Docker container on the internal ``bubbles`` network.

:class:`InfracalcDockerSpawner` is DockerSpawner with INFRACALC's rules built in, so that a line
missing from ``hub_config/jupyterhub_config.py`` cannot open a bubble up:

- the image is pinned (a tag other than ``latest``, or a digest) and never pulled by default:
  ``infracalc/bubble`` on a public registry is not ours, so a missing local build must fail rather
  than fetch a stranger's image;
- the container joins the configured internal network only (never ``bridge``, ``host`` or another
  container's namespace), is reached at its internal address and publishes no port;
- it runs with memory, CPU and process-count limits (configurable, never absent), every capability
  dropped, ``no-new-privileges``, never privileged, and (by default) is removed when it stops;
- it is a named server whose name is the project id, and it mounts two named volumes:

  ``infracalc-project-<project>`` at ``/home/jovyan/project``
      shared by the project's members: the data and code they work on together;
  ``infracalc-<user>--<project>`` at ``/home/jovyan/work``
      the user's own files *in this project*. A home shared by all of a user's projects would let
      files cross from a CASD-governed project (no egress) into one with egress; per (user,
      project) keeps every byte inside the project it belongs to.

  ``--`` separates user and project because neither an escaped username nor a project id can
  contain it, so two pairs never share a volume. Only named volumes are mounted: a host path
  could hand a bubble the Docker socket.

  ``infracalc-egress-ca`` at ``/etc/infracalc/egress-ca``, read-only
      what bubbles may have of the platform's egress CA (its certificate and the bubble bundle,
      written there by the egress proxy), which the image's trust variables point at.

The root filesystem stays writable: Jupyter, IPython, matplotlib and pip write under the home
directory and ``/tmp``, and the container is removed at stop, so nothing written outside the two
volumes survives anyway. A read-only root would need tmpfs mounts for all of those and buy little.

The bubble's environment (API URL, token, project, egress proxy) is set by the pre-spawn hook in
``Spawner.environment``; this class leaves ``get_env`` alone, so all of it reaches the container.
It only stops the Docker client's own proxy settings (``~/.docker/config.json``) from being
added: a bubble's one proxy is the egress proxy.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import docker.errors  # type: ignore[import-untyped,unused-ignore]
from dockerspawner import DockerSpawner  # type: ignore[import-untyped,unused-ignore]
from jupyterhub.spawner import SpawnException  # type: ignore[import-untyped,unused-ignore]
from traitlets import Int, default

from infracalc.egress.trust import IMAGE_CA_DIR
from infracalc.errors import InfracalcError
from infracalc.hub import hooks

#: Where the project's shared volume is mounted in the bubble.
PROJECT_DIR = "/home/jovyan/project"
#: Where the user's own volume for this project is mounted.
WORK_DIR = "/home/jovyan/work"
#: The named volume holding the egress CA's public files (docker-compose.yml names it so).
EGRESS_CA_VOLUME = "infracalc-egress-ca"

#: A project id, as the service accepts it (``infracalc.service.projects.schemas.SLUG_PATTERN``).
PROJECT_ID = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,63}$")
#: A Docker named volume (anything else is a host path).
NAMED_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
#: Docker's own networks: routed (bridge), the host's, or none at all. A bubble joins none of them.
FORBIDDEN_NETWORKS = frozenset({"bridge", "host", "none", "default"})

#: Host settings this spawner sets itself, or that would open the bubble to the host or the outside.
REFUSED_HOST_SETTINGS = frozenset(
    {
        "binds",
        "cap_add",
        "cap_drop",
        "devices",
        "device_cgroup_rules",
        "device_requests",
        "ipc_mode",
        "mounts",
        "network_mode",
        "pid_mode",
        "pids_limit",
        "port_bindings",
        "privileged",
        "publish_all_ports",
        "security_opt",
        "userns_mode",
        "uts_mode",
        "volumes_from",
    }
)
#: Container settings that would bypass the rules above or run the bubble as another user.
REFUSED_CREATE_SETTINGS = frozenset({"host_config", "networking_config", "use_config_proxy", "user"})


class BubbleRefused(SpawnException, InfracalcError):  # type: ignore[misc]  # JupyterHub has no type hints
    """A bubble was not started because the request or the hub's settings break an isolation rule.

    A JupyterHub ``SpawnException``: the hub shows ``message`` to the user and logs no traceback.
    ``status_code`` is 400 for a bad request and 500 for a hub misconfiguration.
    """

    def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
        SpawnException.__init__(self, message, reason=reason, status_code=status_code)


def image_is_pinned(reference: str) -> bool:
    """Whether an image reference names one build: a digest, or a tag other than ``latest``."""
    if "@sha256:" in reference:
        return True
    _, colon, tag = reference.rsplit("/", 1)[-1].partition(":")
    return bool(colon and tag) and tag.lower() != "latest"


def _misconfigured(message: str, reason: str) -> BubbleRefused:
    return BubbleRefused(f"The hub is misconfigured: {message}", reason=reason, status_code=500)


class InfracalcDockerSpawner(DockerSpawner):  # type: ignore[misc]  # DockerSpawner has no type hints
    """DockerSpawner that starts only isolated, limited, pinned bubbles, one per user and project."""

    if TYPE_CHECKING:  # DockerSpawner's traits, which mypy cannot see
        extra_host_config: Any
        extra_create_kwargs: Any

    pids_limit = Int(
        512,
        min=1,
        config=True,
        help="Most processes and threads a bubble may run at once (Docker's pids limit): a fork "
        "bomb in one bubble must not exhaust the host's process table.",
    )

    @default("image")
    def _default_image(self) -> str:
        # No usable default: the deployer names the image they built (refused at start until then).
        return ""

    @default("pull_policy")
    def _default_pull_policy(self) -> str:
        return "never"

    @default("remove")
    def _default_remove(self) -> bool:
        return True

    @default("mem_limit")
    def _default_mem_limit(self) -> str:
        return "4G"

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return 2.0

    @default("prefix")
    def _default_prefix(self) -> str:
        return "infracalc-bubble"

    @default("name_template")
    def _default_name_template(self) -> str:
        return "{prefix}-{username}--{raw_servername}"

    @default("volumes")
    def _default_volumes(self) -> dict[str, Any]:
        return {
            "infracalc-project-{raw_servername}": PROJECT_DIR,
            "infracalc-{username}--{raw_servername}": WORK_DIR,
            EGRESS_CA_VOLUME: {"bind": IMAGE_CA_DIR, "mode": "ro"},
        }

    @property
    def project(self) -> str:
        """The bubble's project: the server's name."""
        return str(self.name)

    def check_bubble_settings(self) -> None:
        """Refuse to go on unless this bubble would be started under every INFRACALC rule.

        Raises:
            BubbleRefused: Naming the rule broken.
        """
        if not self.name:
            raise BubbleRefused(
                "A bubble belongs to a project: start the server named after the project.",
                reason="project",
            )
        if not PROJECT_ID.fullmatch(self.name):
            raise BubbleRefused(f"{self.name!r} is not a project id.", reason="project")
        self._refuse_unpinned(self.image)
        network = self.network_name
        if network in FORBIDDEN_NETWORKS or network.startswith("container:"):
            raise _misconfigured(
                f"bubbles must join the internal bubbles network, not {network!r} "
                "(set c.InfracalcDockerSpawner.network_name).",
                "network",
            )
        if not self.use_internal_ip:
            raise _misconfigured(
                "use_internal_ip must be True: the hub reaches bubbles on their network, with no published port.",
                "network",
            )
        if not self.mem_limit or not self.cpu_limit or self.cpu_limit <= 0:
            raise _misconfigured("bubbles need a memory limit and a CPU limit (mem_limit, cpu_limit).", "limits")
        host_paths = [source for source in self.volume_binds if not NAMED_VOLUME.fullmatch(source)]
        host_paths += [mount["Source"] for mount in self.mount_binds if mount.get("Type") == "bind"]
        if host_paths:
            raise _misconfigured(
                f"bubbles mount named volumes only, not host paths: {', '.join(sorted(host_paths))}.", "volumes"
            )

    def _refuse_unpinned(self, image: str) -> None:
        if not image:
            raise _misconfigured("no bubble image is set (c.InfracalcDockerSpawner.image).", "image")
        if not image_is_pinned(image):
            raise _misconfigured(
                f"the bubble image {image!r} is not pinned: name a tag other than 'latest', or a digest "
                "(c.InfracalcDockerSpawner.image).",
                "image",
            )

    def run_pre_spawn_hook(self) -> Any:
        """Check the bubble's settings before the hook registers a bubble with the service."""
        self.check_bubble_settings()
        return super().run_pre_spawn_hook()

    async def start(self) -> tuple[str, int]:
        """Check the bubble's settings, start its container, then bind the bubble's credentials to its address.

        The container's address on the bubbles network is known only now; the egress proxy refused the
        bubble until the service recorded it. If the service cannot record it, the container is stopped.
        """
        self.check_bubble_settings()
        ip, port = await super().start()
        try:
            await hooks.bind_address(self, str(ip))
        except BaseException:
            await self.stop(now=True)
            raise
        return str(ip), int(port)

    async def check_allowed(self, image: str) -> str:
        """An image a user picked (when ``allowed_images`` offers a choice) must be pinned too."""
        allowed = str(await super().check_allowed(image))
        self._refuse_unpinned(allowed)
        return allowed

    async def pull_image(self, image: str) -> None:
        """Pull by ``pull_policy``; a missing image under the default ``never`` says how to build it."""
        try:
            await super().pull_image(image)
        except docker.errors.NotFound as error:
            raise _misconfigured(
                f"the bubble image {image} is not on this Docker host: build it "
                f"(docker build -f images/bubble/Dockerfile -t {image} .) or set pull_policy.",
                "image",
            ) from error

    def isolation_host_config(self) -> dict[str, Any]:
        """The host settings every bubble gets, whatever ``extra_host_config`` says."""
        return {
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "pids_limit": self.pids_limit,
            "privileged": False,
            "network_mode": self.network_name,
        }

    async def create_object(self) -> Any:
        """Create the container with the deployer's extras checked and the isolation settings on top."""
        host_extras = await self._evaluated(self.extra_host_config)
        create_extras = await self._evaluated(self.extra_create_kwargs)
        for setting, refused in (
            ("extra_host_config", sorted(REFUSED_HOST_SETTINGS & host_extras.keys())),
            ("extra_create_kwargs", sorted(REFUSED_CREATE_SETTINGS & create_extras.keys())),
        ):
            if refused:
                raise _misconfigured(
                    f"c.InfracalcDockerSpawner.{setting} may not set {', '.join(refused)}: the spawner sets "
                    "the bubble's isolation itself (see network_name, volumes, pids_limit).",
                    "isolation",
                )
        # DockerSpawner reads both settings while it builds the container; they hold the checked and
        # completed values for that call only, so the configured ones (callables too) stay as they were.
        configured = (self.extra_host_config, self.extra_create_kwargs)
        self.extra_host_config = {**host_extras, **self.isolation_host_config()}
        self.extra_create_kwargs = {**create_extras, "use_config_proxy": False}
        try:
            return await super().create_object()
        finally:
            self.extra_host_config, self.extra_create_kwargs = configured

    async def _evaluated(self, setting: Any) -> dict[str, Any]:
        """A dict-or-callable DockerSpawner setting's value (callables may be async)."""
        value = setting(self) if callable(setting) else setting
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, Mapping):
            raise _misconfigured(f"expected a dict, got {type(value).__name__}.", "isolation")
        return dict(value)
