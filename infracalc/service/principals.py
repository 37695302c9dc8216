"""Who is calling: the principals the authentication middleware recognises.

A person signs in through Keycloak (password and TOTP) and sends an access token. Bubbles (each
with its own token, limited to its project) and the hub (with its service credential) join in
the egress and hub issues; every principal turns into the ``caller`` object the OPA policies
read (``policies/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Person:
    """A person authenticated by a Keycloak access token that passed :class:`~infracalc.identity.TokenVerifier`."""

    username: str
    roles: frozenset[str]
    acr: str
    subject: str

    def caller(self) -> dict[str, Any]:
        """The ``input.caller`` object of policy queries."""
        return {"kind": "person", "username": self.username, "roles": sorted(self.roles), "acr": self.acr}

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return self.username


#: Every kind of principal (bubbles and the hub are added with their issues).
Principal = Person
