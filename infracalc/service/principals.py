"""Who is calling: the principals the authentication middleware recognises.

A person signs in through Keycloak (password and TOTP) and sends an access token; the hub sends
a token of its Keycloak service account; a bubble sends the token the service gave it when the
hub registered it, which is good for its own project only; the egress proxy sends its secret,
of which the service knows the digest only. Every principal turns into the ``caller`` object the
OPA policies read (``policies/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Person:
    """A person authenticated by a Keycloak access token that passed :class:`~infracalc.identity.TokenVerifier`."""

    username: str
    roles: frozenset[str]
    acr: str
    subject: str
    #: Seconds since the person signed in (the token's ``auth_time``), as of this request; ``None`` when the
    #: token does not say. Some changes need a recent login (``infracalc.authz`` decides which).
    auth_age_seconds: float | None = None

    def caller(self) -> dict[str, Any]:
        """The ``input.caller`` object of policy queries."""
        caller: dict[str, Any] = {
            "kind": "person",
            "username": self.username,
            "roles": sorted(self.roles),
            "acr": self.acr,
        }
        if self.auth_age_seconds is not None:
            caller["auth_age_seconds"] = self.auth_age_seconds
        return caller

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return self.username


@dataclass(frozen=True, slots=True)
class _Component:
    """A part of the platform calling the API with its own credential: a name, no person, no realm role."""

    name: str
    #: ``input.caller.kind`` of policy queries, and the prefix of the audit log's actor.
    KIND: ClassVar[str] = ""

    def caller(self) -> dict[str, Any]:
        """The ``input.caller`` object of policy queries."""
        return {"kind": self.KIND, "username": self.name}

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.KIND}:{self.name}"

    @property
    def username(self) -> str:
        """The component's name (principals all have one)."""
        return self.name

    @property
    def roles(self) -> frozenset[str]:
        """A component holds no realm role of a person."""
        return frozenset()


@dataclass(frozen=True, slots=True)
class Hub(_Component):
    """JupyterHub, authenticated by a token of the ``jupyterhub`` client's Keycloak service account."""

    name: str = "jupyterhub"
    KIND: ClassVar[str] = "hub"


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


@dataclass(frozen=True, slots=True)
class EgressProxy(_Component):
    """The egress proxy, authenticated by its secret; it records the bubbles' egress events, and nothing else."""

    name: str = "egress"
    KIND: ClassVar[str] = "proxy"


#: Every kind of caller the API knows.
Principal = Person | Hub | BubblePrincipal | EgressProxy
