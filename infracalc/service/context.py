"""The service's collaborators, made once at start-up, and the one way routes ask for permission."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from litestar.di import NamedDependency
from sqlalchemy import Executable, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import AuditEntry, AuditLog
from infracalc.casd.objects import ObjectStore
from infracalc.casd.risk_model import RiskAssessor
from infracalc.db import Governance, Project
from infracalc.identity import TokenVerifier
from infracalc.identity.directory import KeycloakDirectory
from infracalc.policy import Decision, PolicyClient
from infracalc.policy.sync import PolicyData
from infracalc.service.bubbles.hub import HubServers
from infracalc.service.ended_sessions import EndedSessions
from infracalc.service.errors import Forbidden, NotFound
from infracalc.service.principals import Principal
from infracalc.service.settings import ServiceSettings
from infracalc.storage import S3Client

#: The reason ``infracalc.authz`` gives for a project it does not know; the API answers 404.
UNKNOWN_PROJECT = "unknown project"


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """Everything a route may use: the database, OPA, the audit log, the object store."""

    settings: ServiceSettings
    sessions: async_sessionmaker[AsyncSession]
    #: Sessions for long reads (audit verification) that must not hold SQLite's write lock.
    read_sessions: async_sessionmaker[AsyncSession]
    #: An engine for the hottest reads, one statement each, outside the ORM and any transaction
    #: (``infracalc.db.create_engine(..., one_statement=True)``).
    reads: AsyncEngine
    policy: PolicyClient
    policy_data: PolicyData
    audit_log: AuditLog
    verifier: TokenVerifier
    directory: KeycloakDirectory
    s3: S3Client | None
    #: Imports and exports in the bucket ``INFRACALC_S3_BUCKET``; ``None`` when S3 is not configured.
    objects: ObjectStore | None = None
    #: The draws that pick low-risk INFRACALC exports for a review after release (``INFRACALC_EXPORT_SAMPLE_SEED``).
    export_sampler: random.Random = field(default_factory=random.Random)
    #: Keycloak sessions ended by back-channel logout, whose tokens are refused (:mod:`.ended_sessions`).
    ended_sessions: EndedSessions = field(default_factory=EndedSessions)
    #: Asks the export risk models in force and in shadow (Colysée); without models, the rules alone decide.
    risk_assessor: RiskAssessor = field(default_factory=lambda: RiskAssessor(None))
    #: The hub's API, to stop the servers of bubbles the service revoked; ``None`` when not configured.
    hub_servers: HubServers | None = None

    async def record(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        project_id: str | None = None,
        governance: Governance | str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append the audit event of a change to the change's own transaction, and seal the log when due.

        Call it last in the transaction: the append locks the head of the log until the commit.
        """
        entry = AuditEntry(actor, action, project_id, governance, details)
        await self.audit_log.append_and_seal(session, [entry])

    async def read_rows(self, statement: Executable, parameters: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """The rows of one read ``statement``, on the hot-read engine (:attr:`reads`).

        That engine does not check a connection before lending it: a connection the database dropped
        (a PostgreSQL restart) fails the statement, SQLAlchemy discards the pool, and the statement is
        run once more on a fresh connection.
        """
        try:
            return await self._read_rows(statement, parameters)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return await self._read_rows(statement, parameters)

    async def _read_rows(self, statement: Executable, parameters: Mapping[str, Any]) -> Sequence[Row[Any]]:
        async with self.reads.connect() as connection:
            return (await connection.execute(statement, parameters)).all()

    async def authorize(self, principal: Principal, action: str, **resource: Any) -> Decision:
        """Ask ``infracalc.authz`` whether ``principal`` may take ``action`` on ``resource``.

        Raises:
            NotFound: the policy does not know the project.
            Forbidden: the policy refused; the message is its reason.
            PolicyUnavailable: OPA cannot be asked (the API answers 503).
        """
        # Cached for at most a second, and forgotten as soon as this service writes OPA's data.
        decision = await self.policy.decide(
            "infracalc.authz", {"action": action, "caller": principal.caller(), "resource": resource}, cached=True
        )
        return self.enforce(decision, resource)

    @staticmethod
    def enforce(decision: Decision, resource: Mapping[str, Any]) -> Decision:
        """Return an allowing ``decision``; raise the matching API error for a refusal."""
        if decision.allow:
            return decision
        if decision.reason == UNKNOWN_PROJECT:
            raise NotFound(f"no project {resource.get('project')!r}")
        raise Forbidden(decision.reason)


async def existing_project(session: AsyncSession, slug: str) -> Project:
    """The project ``slug``, read in ``session``.

    Raises:
        NotFound: there is no such project.
    """
    project = await session.get(Project, slug)
    if project is None:
        raise NotFound(f"no project {slug!r}")
    return project


#: How a route asks for the context (Litestar injects it by this parameter name: ``context``).
Context: TypeAlias = NamedDependency[ServiceContext]
