"""The local spawner of ``infracalc up`` and the tests: each bubble in its own network namespace.

Running as root with iproute2, :class:`LocalBubbleSpawner` starts ``jupyterhub-singleuser`` inside
a namespace of its own (:mod:`infracalc.hub.netns`) whose only reachable address is its gateway,
where forwarders (:mod:`infracalc.hub.forwarders`) lead to the hub's API, the service and the egress
proxy. The bubble's environment points there, with the proxy credentials the pre-spawn hook got
from the service, so its only way out is the egress proxy.

Its kernels load :mod:`infracalc.bubble.ipython`, which records the cells they run into the
bubble's session: ``IPYTHONDIR`` points into the bubble's home, where the spawner writes the kernel
configuration that loads it (the bubble image carries the same configuration for DockerSpawner).
The server is JupyterLab (``jupyterhub-singleuser`` through :mod:`infracalc.bubble.singleuser`, which
spares it a slow import), configured from :data:`infracalc.bubble.JUPYTER_CONFIG_DIR` (nothing fetched
from the internet), and the bubble's folder gets the welcome notebooks at its first start.

Without root or ``ip``, it falls back to a plain local process with the same proxy environment,
and says plainly in the hub's log that egress is then NOT enforced: a process can ignore
``HTTP_PROXY``. That mode is for trying the platform on a workstation, never for data.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, Unicode, default

from infracalc.bubble import JUPYTER_CONFIG_DIR
from infracalc.bubble.ipython import write_kernel_config
from infracalc.bubble.welcome import give_welcome_notebooks
from infracalc.egress.trust import trust_environment, write_bubble_bundle
from infracalc.hub import hooks, netns
from infracalc.hub.bubbles import BubbleRegistration, bubble_environment
from infracalc.hub.forwarders import Forwarders, ports_of

#: The port the single-user server listens on inside its namespace (each bubble has its own address).
BUBBLE_PORT = 8888
#: Where a bubble that runs as a plain process (no namespace) reaches the egress proxy from.
LOOPBACK = "127.0.0.1"


def _with_host(url: str, host: str) -> str:
    """``url`` with its host replaced (the port and path kept)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, parts.query, parts.fragment))


class LocalBubbleSpawner(SimpleLocalProcessSpawner):  # type: ignore[misc]  # JupyterHub has no type hints
    """A bubble as a local process, isolated in a network namespace when the hub runs as root."""

    cmd: list[str]  # the base class's trait, typed for this module

    isolate = Bool(
        True,
        config=True,
        help="Put each bubble in its own network namespace (needs root and iproute2). When that is "
        "impossible the bubble runs as a plain local process and egress is not enforced.",
    )
    bubble_pool = Unicode(
        str(netns.DEFAULT_POOL),
        config=True,
        help="The IPv4 network the bubbles' /30 links are taken from (private, unused on this host).",
    )
    service_url = Unicode(
        "http://127.0.0.1:8001",
        config=True,
        help="The INFRACALC service as the hub reaches it; bubbles reach the same port on their gateway.",
    )
    egress_proxy_url = Unicode(
        "http://127.0.0.1:3128",
        config=True,
        help="The egress proxy as the hub host reaches it; bubbles reach the same port on their gateway.",
    )
    hub_api_url = Unicode(
        "http://127.0.0.1:8081",
        config=True,
        help="The hub's API (JupyterHub.hub_bind_url); bubbles reach the same port on their gateway.",
    )
    egress_proxy_socket = Unicode(
        "",
        config=True,
        help="The egress proxy's forwarded socket (INFRACALC_EGRESS_FORWARDED_SOCKET): connections to the proxy's "
        "port on a bubble's gateway go there, with the bubble's address, to which its credentials are bound. "
        "Required for isolated bubbles: without it the proxy would see every bubble as the host and refuse them.",
    )
    egress_ca_cert = Unicode(
        "",
        config=True,
        help="The platform's egress CA certificate (never its key): each bubble trusts it, through a bundle of the "
        "system's CAs and it in its home and the variables its clients read. Empty: inspect rules cannot be used.",
    )

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # jupyterhub-singleuser, minus an import that costs most of its start (infracalc.bubble.singleuser).
        return [sys.executable, "-m", "infracalc.bubble.singleuser"]

    @default("home_dir_template")
    def _default_home_dir_template(self) -> str:
        return "/tmp/infracalc-bubbles/{username}/{project}"  # noqa: S108 - local trial mode only

    @default("home_dir")
    def _default_home_dir(self) -> str:
        # One folder per user and project, as the production bubbles' volumes: a file of a CASD
        # project must not show up in the same person's bubble of a project that may call out.
        return str(self.home_dir_template.format(username=self.user.name, project=self.project))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.link: netns.BubbleLink | None = None
        self.forwarders: Forwarders | None = None
        #: Set by the pre-spawn hook: the bubble the service registered.
        self.bubble: BubbleRegistration | None = None

    @property
    def ipython_dir(self) -> Path:
        """The bubble's IPython directory, whose kernel configuration records the cells its kernels run."""
        return Path(self.home_dir) / ".ipython"

    @property
    def ca_bundle(self) -> Path:
        """The bubble's trust bundle: the system's CAs and the egress CA (written at each start)."""
        return Path(self.home_dir) / ".infracalc" / "egress-ca-bundle.pem"

    @property
    def project(self) -> str:
        """The bubble's project: the server's name."""
        return str(self.name)

    def isolation_unavailable(self) -> str | None:
        """Why this bubble will not get a namespace (``None``: it will)."""
        if not self.isolate:
            return "isolation is switched off (LocalBubbleSpawner.isolate = False)"
        return netns.unavailable_reason()

    def get_env(self) -> dict[str, str]:
        """The single-user environment, with the bubble's INFRACALC variables pointing at its gateway."""
        env: dict[str, str] = super().get_env()
        env["IPYTHONDIR"] = str(self.ipython_dir)
        # JupyterLab without its calls home (news, update checks, the PyPI extension manager).
        env["JUPYTER_CONFIG_PATH"] = str(JUPYTER_CONFIG_DIR)
        if self.egress_ca_cert:
            env.update(trust_environment(str(self.ca_bundle), self.egress_ca_cert))
        if self.bubble is not None:
            gateway = self.link.gateway if self.link is not None else "127.0.0.1"
            env.update(
                bubble_environment(
                    self.bubble,
                    api_url=_with_host(self.service_url, gateway) + "/api/v1",
                    proxy_url=_with_host(self.egress_proxy_url, gateway),
                    no_proxy=[gateway],
                )
            )
        return env

    async def start(self) -> tuple[str, int]:
        """Create the namespace and forwarders, then start the server inside; or fall back, saying so."""
        write_kernel_config(self.ipython_dir)
        give_welcome_notebooks(Path(self.home_dir))
        if self.egress_ca_cert:
            write_bubble_bundle(Path(self.egress_ca_cert), self.ca_bundle)
        reason = self.isolation_unavailable()
        if reason is not None:
            self.log.warning(
                "bubble %s of %s runs as a plain local process: egress is NOT enforced (%s). "
                "Run the hub as root with iproute2 for network isolation.",
                self.project,
                self.user.name,
                reason,
            )
            self.link = None
            # A plain process reaches the proxy from the host's loopback: its credentials are bound there.
            await hooks.bind_address(self, LOOPBACK)
            return await super().start()  # type: ignore[no-any-return]
        if not self.egress_proxy_socket:
            raise RuntimeError(
                "LocalBubbleSpawner.egress_proxy_socket is not set (INFRACALC_EGRESS_FORWARDED_SOCKET): the egress "
                "proxy could not tell where an isolated bubble's connections come from"
            )
        self.link = netns.free_link(ipaddress.IPv4Network(self.bubble_pool))
        netns.create(self.link)
        try:
            # Before anything runs in the namespace: the bubble's credentials work from its address only.
            await hooks.bind_address(self, self.link.address)
            self.hub_connect_url = _with_host(self.hub_api_url, self.link.gateway)
            proxy_port = ports_of([self.egress_proxy_url])[0]
            self.forwarders = Forwarders(
                self.link.gateway,
                ports_of([self.hub_api_url, self.service_url, self.egress_proxy_url]),
                unix_targets={proxy_port: self.egress_proxy_socket},
            )
            await self.forwarders.start()
            self.ip = self.link.address
            self.port = BUBBLE_PORT
            command: list[str] = list(self.cmd)
            self.cmd = self.link.command(command)
            self.log.info(
                "bubble %s of %s in namespace %s (%s, gateway %s)",
                self.project,
                self.user.name,
                self.link.namespace,
                self.link.address,
                self.link.gateway,
            )
            try:
                await super().start()
            finally:
                self.cmd = command
        except BaseException:
            await self._tear_down()
            raise
        return (self.link.address, BUBBLE_PORT)

    def get_args(self) -> list[str]:
        """The server's arguments; as root (the isolated mode), Jupyter must be told it may run as root."""
        args: list[str] = super().get_args()
        if os.geteuid() == 0:
            args.append("--allow-root")
        return args

    async def stop(self, now: bool = False) -> None:
        """Stop the server, then remove the forwarders and the namespace."""
        try:
            await super().stop(now=now)
        finally:
            await self._tear_down()

    async def _tear_down(self) -> None:
        if self.forwarders is not None:
            await self.forwarders.close()
            self.forwarders = None
        if self.link is not None:
            netns.remove(self.link)
            self.link = None

    def get_state(self) -> dict[str, Any]:
        """Remember the namespace too, so that a restarted hub can clean it up."""
        state: dict[str, Any] = super().get_state()
        if self.link is not None:
            state["netns_index"] = self.link.index
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the namespace's link (see :meth:`get_state`)."""
        super().load_state(state)
        index = state.get("netns_index")
        if isinstance(index, int):
            self.link = netns.BubbleLink.of(index, ipaddress.IPv4Network(self.bubble_pool))
