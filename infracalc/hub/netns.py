"""Network namespaces for local bubbles: one namespace per bubble, joined to the host by a veth pair.

A bubble's namespace has a loopback, one interface (``eth0``) on a /30 shared with the host side of
its veth, and no default route: the host-side address (its *gateway*) is the only address it can
reach. The local spawner makes the hub, the service and the egress proxy reachable there, and
nothing else listens on it, so a bubble's only way out is the egress proxy.

Link ``i`` of the pool ``10.233.0.0/16`` (the default) is the /30 ``10.233.0.0 + 4*i``: ``.1`` on the
host side, ``.2`` in the bubble. Names: namespace ``icb<i>``, host interface ``icbh<i>`` (Linux
limits interface names to 15 characters).

Every function runs ``ip`` (iproute2) and needs root (``CAP_NET_ADMIN``); :func:`unavailable_reason`
says why namespaces cannot be used here, for the spawner's fallback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from infracalc.errors import InfracalcError

#: The default pool of bubble links.
DEFAULT_POOL = ipaddress.IPv4Network("10.233.0.0/16")
NAMESPACE_PREFIX = "icb"
HOST_INTERFACE_PREFIX = "icbh"


class NetnsError(InfracalcError):
    """A namespace could not be created or removed."""


@dataclass(frozen=True, slots=True)
class BubbleLink:
    """One bubble's namespace and the /30 that joins it to the host."""

    index: int
    namespace: str
    host_interface: str
    gateway: str
    address: str

    @classmethod
    def of(cls, index: int, pool: ipaddress.IPv4Network = DEFAULT_POOL) -> BubbleLink:
        """Link ``index`` of ``pool`` (its names and addresses; nothing is created)."""
        links = pool.num_addresses // 4
        if not 0 <= index < links:
            raise NetnsError(f"bubble link {index} is outside the pool {pool} ({links} links)")
        base = int(pool.network_address) + 4 * index
        return cls(
            index=index,
            namespace=f"{NAMESPACE_PREFIX}{index}",
            host_interface=f"{HOST_INTERFACE_PREFIX}{index}",
            gateway=str(ipaddress.IPv4Address(base + 1)),
            address=str(ipaddress.IPv4Address(base + 2)),
        )

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def unavailable_reason() -> str | None:
    """Why bubbles cannot get namespaces here (``None``: they can)."""
    if os.geteuid() != 0:
        return "the hub does not run as root"
    if shutil.which("ip") is None:
        return "iproute2's ip command is not installed"
    return None


def _ip(*args: str) -> None:
    completed = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if completed.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {completed.stderr.strip() or completed.returncode}")


def existing_namespaces() -> set[str]:
    """Names of the namespaces that exist now."""
    completed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    return {line.split()[0] for line in completed.stdout.splitlines() if line.strip()}


def free_link(pool: ipaddress.IPv4Network = DEFAULT_POOL, taken: set[int] | None = None) -> BubbleLink:
    """The first link of ``pool`` whose namespace does not exist and that is not in ``taken``.

    Raises:
        NetnsError: every link is in use.
    """
    present = existing_namespaces()
    for index in range(pool.num_addresses // 4):
        link = BubbleLink.of(index, pool)
        if link.namespace not in present and index not in (taken or set()):
            return link
    raise NetnsError(f"every bubble link of {pool} is in use")


def create(link: BubbleLink) -> None:
    """Create the namespace, its veth pair and addresses; on failure, remove what was made.

    Raises:
        NetnsError: a step failed (the error names it).
    """
    peer = f"{link.host_interface}p"
    try:
        _ip("netns", "add", link.namespace)
        _ip("link", "add", link.host_interface, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", link.namespace)
        _ip("-n", link.namespace, "link", "set", peer, "name", "eth0")
        _ip("addr", "add", f"{link.gateway}/30", "dev", link.host_interface)
        _ip("link", "set", link.host_interface, "up")
        _ip("-n", link.namespace, "addr", "add", f"{link.address}/30", "dev", "eth0")
        _ip("-n", link.namespace, "link", "set", "eth0", "up")
        _ip("-n", link.namespace, "link", "set", "lo", "up")
    except NetnsError:
        remove(link)
        raise


def remove(link: BubbleLink) -> None:
    """Kill whatever still runs inside (kernels outliving their server), then remove the namespace and the veth."""
    completed = subprocess.run(
        ["ip", "netns", "pids", link.namespace], capture_output=True, text=True, timeout=10, check=False
    )
    for pid in completed.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "link", "del", link.host_interface], capture_output=True, timeout=10, check=False)
    subprocess.run(["ip", "netns", "del", link.namespace], capture_output=True, timeout=10, check=False)
