"""Check, before starting anything, that the stack's ports are free."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from infracalc.errors import InfracalcError


class PortInUse(InfracalcError):
    """A port the stack needs is already taken; the message names the setting that changes it."""

    def __init__(self, host: str, port: int, setting: str) -> None:
        self.port = port
        self.setting = setting
        super().__init__(
            f"port {port} on {host} is already in use; stop what holds it or choose another port with {setting}=<port>"
        )


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP server could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the servers themselves: ignore connections lingering in TIME_WAIT, refuse a live listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def ensure_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """Raise :class:`PortInUse` for the first port of ``ports`` (setting name → port) that is taken."""
    for setting, port in ports.items():
        if not port_is_free(host, port):
            raise PortInUse(host, port, setting)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free now (for tests and throwaway servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
