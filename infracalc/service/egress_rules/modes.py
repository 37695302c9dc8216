"""What an egress rule's mode allows it to say: the domain rule shared by the API and the console.

An ``inspect`` rule is carried request by request: the proxy terminates the TLS with a certificate
of the platform's egress CA and decides every request by method, path prefix and size, so all of a
rule's restrictions bind, over HTTPS as over plain HTTP. Its methods default to ``GET`` and
``HEAD``: an API that can be consulted is read-only unless CASD staff approve more.

A ``tunnel`` rule is today's CONNECT: the proxy sees host and port, never a method, a path or a
size, so a tunnel rule may not restrict methods or paths (it would be approved, then refuse every
HTTPS call). It is shown as "opaque" wherever rules are listed, and refused altogether where the
platform forbids tunnels (:data:`infracalc.egress.modes.TUNNEL_RULES_VARIABLE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from infracalc.db import EgressMode
from infracalc.egress.modes import READ_ONLY_METHODS, TUNNEL_RULES_VARIABLE
from infracalc.service.errors import InvalidInput


def restrictions_apply(mode: EgressMode) -> bool:
    """Whether methods, path prefixes and sizes bind HTTPS through a rule of ``mode`` (plain HTTP: always)."""
    return mode is EgressMode.INSPECT


@dataclass(frozen=True, slots=True)
class Restrictions:
    """A rule's mode, methods and path prefixes as they are stored (sorted, without repeats)."""

    mode: EgressMode
    methods: list[str]
    path_prefixes: list[str]


def settle(mode: EgressMode, methods: list[str], path_prefixes: list[str], *, tunnels: bool) -> Restrictions:
    """The restrictions a lead's request stands for, or why it cannot be a rule.

    Args:
        mode: The mode asked for.
        methods: The methods asked for (empty: the mode's default).
        path_prefixes: The path prefixes asked for (empty: any path).
        tunnels: Whether the platform allows tunnel rules.

    Raises:
        InvalidInput: a tunnel where the platform forbids them (``field`` ``mode``), or a tunnel rule
            restricting methods or paths (``field`` ``methods`` or ``path_prefixes``).
    """
    if mode is EgressMode.TUNNEL:
        if not tunnels:
            raise InvalidInput(
                f"this platform forbids tunnel rules ({TUNNEL_RULES_VARIABLE}=forbid): ask for an inspect rule",
                field="mode",
            )
        for field, listed in (("methods", methods), ("path_prefixes", path_prefixes)):
            if listed:
                raise InvalidInput(
                    "a tunnel rule carries TLS unopened: the proxy never sees a method or a path, so it cannot "
                    f"restrict {field.replace('_', ' ')}; ask for an inspect rule, or leave them empty",
                    field=field,
                )
        return Restrictions(mode, [], [])
    return Restrictions(mode, sorted(set(methods or READ_ONLY_METHODS)), sorted(set(path_prefixes)))
