"""Resolving names with a DNS server of the operator's choosing (``INFRACALC_EGRESS_RESOLVER``), not the system's.

The proxy asks one server, over DNS only (no hosts file, no search domains), through c-ares
(``aiodns``), without blocking its event loop or a thread. Whatever the server answers is checked
as a whole by :func:`infracalc.egress.choose`, and the proxy dials exactly the address it checked:
a server whose answer changes from one query to the next (DNS rebinding) gains nothing, since each
connection resolves once.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import aiodns
import aiodns.error
import pycares

from infracalc.egress import Resolver
from infracalc.egress.addresses import AddrInfo


def dns_resolver(address: str, port: int = 53, *, timeout: float = 5.0) -> Resolver:
    """A resolver asking the DNS server at ``address`` and ``port`` only; made on first use, in the running loop."""
    made: list[aiodns.DNSResolver] = []

    async def resolve(host: str, dial_port: int) -> Sequence[AddrInfo]:
        if not made:
            made.append(
                aiodns.DNSResolver(
                    nameservers=[address],
                    udp_port=port,
                    tcp_port=port,
                    lookups="b",  # DNS only: never a hosts file
                    flags=pycares.ARES_FLAG_NOSEARCH,
                    timeout=timeout,
                    tries=2,
                )
            )
        try:
            answer = await made[0].getaddrinfo(host, port=dial_port, type=socket.SOCK_STREAM)
        except aiodns.error.DNSError as error:
            detail = error.args[1] if len(error.args) > 1 else str(error)
            raise socket.gaierror(socket.EAI_NONAME, str(detail)) from None
        entries: list[AddrInfo] = []
        for node in answer.nodes:
            text = node.addr[0].decode("ascii") if isinstance(node.addr[0], bytes) else str(node.addr[0])
            entries.append((node.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (text, dial_port)))
        return entries

    return resolve
