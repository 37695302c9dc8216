"""Registered networks as pages show them: the one rule, where the browser is, and whether that is outside a list.

The rule itself is the domain's (:mod:`infracalc.service.users.networks`: one constant for the API,
the console and enrollment); :func:`network_rule` says it in the page's language with the same
numbers. A person saving a list of networks that leaves out the address they are using now is
warned first (:func:`outside`): they would not be able to open a bubble from here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request

from infracalc.hub.source_address import client_address, parse_networks
from infracalc.service.context import ServiceContext
from infracalc.service.users.networks import MAX_NETWORKS, WIDEST_PREFIX
from infracalc.web.i18n import translator

AnyRequest = Request[Any, Any, Any]


def proposed_network(request: AnyRequest, context: ServiceContext) -> str | None:
    """The network of the address the request comes from (``/32`` or ``/128``), or ``None`` when unknown.

    The socket peer, or ``X-Forwarded-For`` as far as ``INFRACALC_TRUSTED_PROXIES`` vouch for it.
    """
    peer = request.client.host if request.client is not None else None
    trusted = parse_networks(context.settings.trusted_proxies)
    address = client_address(peer, request.headers.getall("x-forwarded-for", []), trusted)
    if address is None:
        return None
    return str(ipaddress.ip_network(address))


def outside(address: str | None, networks: list[str]) -> bool:
    """Whether ``address`` (a ``/32`` or ``/128``) is known and lies outside every one of ``networks`` (none: no)."""
    if address is None or not networks:
        return False
    here = ipaddress.ip_address(address.partition("/")[0])
    return not any(here in network for network in map(ipaddress.ip_network, networks))


def network_rule(lang: str) -> str:
    """The one rule of registered networks, in ``lang`` (the console, enrollment and the API say the same)."""
    return translator(lang)("networks.rule", ipv4=WIDEST_PREFIX[4], ipv6=WIDEST_PREFIX[6], count=MAX_NETWORKS)


__all__ = ["network_rule", "outside", "proposed_network"]
