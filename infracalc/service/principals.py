"""Who is calling: the principals the authentication middleware recognises.

A person signs in through Keycloak (password and TOTP) and sends an access token; the hub sends
a token of its Keycloak service account; a bubble sends the token the service gave it when the
hub registered it, which is good for its own project only. Every principal turns into the
``caller`` object the OPA policies read (``policies/README.md``).
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


@dataclass(frozen=True, slots=True)
class Hub:
    """JupyterHub, authenticated by a token of the ``jupyterhub`` client's Keycloak service account."""

    name: str = "jupyterhub"

    def caller(self) -> dict[str, Any]:
        """The ``input.caller`` object of policy queries."""
        return {"kind": "hub", "username": self.name}

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"hub:{self.name}"

    @property
    def username(self) -> str:
        """The hub's name (principals all have one)."""
        return self.name

    @property
    def roles(self) -> frozenset[str]:
        """The hub holds no realm role of a person."""
        return frozenset()


@dataclass(frozen=True, slots=True)
class BubblePrincipal:
    """A running bubble, authenticated by its own token; it acts for its user, within its project only."""

    bubble_id: str
    project: str
    username: str

    def caller(self) -> dict[str, Any]:
        """The ``input.caller`` object of policy queries."""
        return {"kind": "bubble", "username": self.username, "project": self.project, "bubble": self.bubble_id}

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"bubble:{self.bubble_id}"

    @property
    def roles(self) -> frozenset[str]:
        """A bubble holds no realm role, whatever its user holds."""
        return frozenset()


#: Every kind of caller the API knows.
Principal = Person | Hub | BubblePrincipal
