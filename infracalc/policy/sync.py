"""The data the service keeps in OPA (``data.infracalc``), rebuilt from the database.

The database is the source of truth; OPA holds a copy the policies read:

- ``data.infracalc.projects[<slug>] = {"title", "governance", "sensitive_data"}``: ``sensitive_data`` is
  true when the project has a released import classed ``sensitive`` (the governance policy then keeps
  it under CASD); an approval pushes the project again
- ``data.infracalc.members[<slug>][<username>] = {"role"}``
- ``data.infracalc.rules[<slug>][<rule_id>] = {"host", "wildcard", "ports", "methods", "path_prefixes",
  "expires_at_ns"}``: the project's approved egress rules only (never requested, denied or revoked
  ones); an expired rule stays until revoked, and the policy compares its expiry with the clock
- ``data.infracalc.rule_hosts[<slug>] = {<host>: {<rule_id>: true}}``: the same rules keyed by their
  (normalised) host, a wildcard rule under its base domain. The egress policy finds a project's rules
  through it only, by key, instead of a pass over all of them; it uses an entry only when the rule
  exists in ``rules[<slug>]`` and carries that host, so the index can hide a rule but never widen one.
  It is pushed after the rules, from the same rows.
- ``data.infracalc.bubbles[<bubble_id>] = {"project", "username", "token_sha256"}``: the bubbles
  whose tokens are valid (registered and not revoked), so that the egress proxy authenticates a
  bubble and gets its decision in one question (``infracalc.egress.connection``). Only the digest
  of each token's secret is there, as in the database.
- ``data.infracalc.users[<username>] = {"networks": [<cidr>, ...]}``: the networks each person registered,
  for ``infracalc.login``; only people who registered at least one are there. No revision: the egress
  proxy does not read it, and a login is decided afresh each time.
- ``data.infracalc.revisions[<slug>] = {"revision": <random id>}``: written last by every push of a project (and
  of a bubble, under its project), so that the egress proxy, which polls this small document,
  knows which projects changed and re-decides their open tunnels.
- ``data.infracalc.sync = {"generation": <random id>}``: written last by a full resync. OPA keeps
  data in memory only, so after a restart the marker is gone; :meth:`PolicyData.watch` notices
  within a second and resyncs, without restarting the service.

After each committed change the service calls :meth:`PolicyData.push_project` (:meth:`~PolicyData.push_bubble`,
:meth:`~PolicyData.push_user`) before answering.
Pushes are serialised, and each reads the project's current rows in a fresh session, so two
concurrent changes cannot leave OPA with the older one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.db import (
    Bubble,
    EgressRule,
    EgressRuleStatus,
    Import,
    ImportState,
    Member,
    Project,
    Sensitivity,
    UserNetwork,
)
from infracalc.policy.opa import PolicyClient, PolicyUnavailable

logger = logging.getLogger(__name__)

#: Where the documents live under OPA's ``/v1/data``.
PROJECTS, MEMBERS, RULES, SYNC = "infracalc/projects", "infracalc/members", "infracalc/rules", "infracalc/sync"
RULE_HOSTS, BUBBLES, REVISIONS = "infracalc/rule_hosts", "infracalc/bubbles", "infracalc/revisions"
USERS = "infracalc/users"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def project_document(project: Project, *, sensitive_data: bool = False) -> dict[str, Any]:
    """What the policies know of one project; ``sensitive_data``: it holds released data classed sensitive."""
    return {"title": project.title, "governance": project.governance.value, "sensitive_data": sensitive_data}


def _sensitive_projects(slug: str | None = None) -> Select[str]:
    """The projects holding a released import classed sensitive (or only ``slug``, if it does)."""
    query = (
        select(Import.project_id)
        .where(Import.state == ImportState.RELEASED, Import.sensitivity == Sensitivity.SENSITIVE)
        .distinct()
    )
    return query if slug is None else query.where(Import.project_id == slug)


def rule_document(rule: EgressRule) -> dict[str, Any]:
    """What ``infracalc.egress`` knows of one approved rule."""
    return {
        "host": rule.host,
        "wildcard": rule.wildcard,
        "ports": list(rule.ports),
        "mode": rule.mode.value,
        "methods": list(rule.methods),
        "path_prefixes": list(rule.path_prefixes),
        "max_request_bytes": rule.max_request_bytes,
        "daily_upload_bytes": rule.daily_upload_bytes,
        "max_response_bytes": rule.max_response_bytes,
        # Integer arithmetic: a float timestamp would round the microseconds away.
        "expires_at_ns": (rule.expires_at - _EPOCH) // timedelta(microseconds=1) * 1000,
    }


def bubble_document(bubble: Bubble) -> dict[str, Any]:
    """What ``infracalc.egress.connection`` knows of one valid bubble."""
    return {"project": bubble.project_id, "username": bubble.username, "token_sha256": bubble.token_sha256}


def user_documents(networks: Iterable[UserNetwork]) -> dict[str, dict[str, Any]]:
    """What ``infracalc.login`` knows of people: ``{username: {"networks": [cidr, ...]}}``, networks sorted."""
    documents: dict[str, dict[str, Any]] = {}
    for network in sorted(networks, key=lambda row: (row.username, network_order(row.cidr))):
        documents.setdefault(network.username, {"networks": []})["networks"].append(network.cidr)
    return documents


def network_order(cidr: str) -> tuple[int, int, int]:
    """Sort key of a network in normal form: IPv4 first, then by address and prefix length."""
    network = ipaddress.ip_network(cidr)
    return network.version, int(network.network_address), network.prefixlen


def host_index(rules: Iterable[EgressRule]) -> dict[str, dict[str, bool]]:
    """The host index of one project's approved rules: ``{host: {rule_id: True}}``.

    Keyed by the rule's host as pushed in :func:`rule_document` (a wildcard rule under its base
    domain, ``example.org`` for ``*.example.org``); the policy looks up the request host and each of
    its parent domains.
    """
    index: dict[str, dict[str, bool]] = {}
    for rule in rules:
        index.setdefault(rule.host, {})[rule.id] = True
    return index


def _approved(slug: str | None = None) -> Select[EgressRule]:
    query = select(EgressRule).where(EgressRule.status == EgressRuleStatus.APPROVED)
    return query if slug is None else query.where(EgressRule.project_id == slug)


class PolicyData:
    """Pushes the service's state to OPA: one project after a change, everything after a restart."""

    def __init__(self, policy: PolicyClient, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.policy = policy
        self.sessions = sessions
        self.generation: str | None = None
        self._lock = asyncio.Lock()

    async def push_project(self, slug: str) -> None:
        """Copy one project, its members and its approved egress rules, as committed, to OPA.

        Raises:
            PolicyUnavailable: OPA did not take the data; the next watch tick resyncs everything.
        """
        async with self._lock:
            async with self.sessions() as session:
                project = await session.get(Project, slug)
                members = (await session.scalars(select(Member).where(Member.project_id == slug))).all()
                rules = (await session.scalars(_approved(slug))).all()
                sensitive = (await session.scalar(_sensitive_projects(slug))) is not None
            try:
                if project is not None:
                    await self.policy.put_data(
                        f"{PROJECTS}/{slug}", project_document(project, sensitive_data=sensitive)
                    )
                    await self.policy.put_data(
                        f"{MEMBERS}/{slug}", {member.username: {"role": member.role.value} for member in members}
                    )
                    await self.policy.put_data(f"{RULES}/{slug}", {rule.id: rule_document(rule) for rule in rules})
                    await self.policy.put_data(f"{RULE_HOSTS}/{slug}", host_index(rules))
                    await self._bump(slug)
            except PolicyUnavailable:
                self.generation = None  # force a full resync as soon as OPA answers again
                raise

    async def push_bubble(self, bubble_id: str) -> None:
        """Copy one bubble, as committed, to OPA: its token digest while valid, nothing once revoked.

        Raises:
            PolicyUnavailable: OPA did not take the change; the next watch tick resyncs everything.
        """
        async with self._lock:
            async with self.sessions() as session:
                bubble = await session.get(Bubble, bubble_id)
            if bubble is None:
                return
            try:
                if bubble.revoked_at is None:
                    await self.policy.put_data(f"{BUBBLES}/{bubble.id}", bubble_document(bubble))
                else:
                    await self.policy.delete_data(f"{BUBBLES}/{bubble.id}")
                await self._bump(bubble.project_id)
            except PolicyUnavailable:
                self.generation = None
                raise

    async def push_user(self, username: str) -> None:
        """Copy one person's registered networks, as committed, to OPA (none: the person's document is removed).

        Raises:
            PolicyUnavailable: OPA did not take the change; the next watch tick resyncs everything.
        """
        async with self._lock:
            async with self.sessions() as session:
                networks = (await session.scalars(select(UserNetwork).where(UserNetwork.username == username))).all()
            document = user_documents(networks).get(username)
            # OPA decodes each segment: a username holding @ or + is one key still.
            path = f"{USERS}/{quote(username, safe='')}"
            try:
                if document is None:
                    await self.policy.delete_data(path)
                else:
                    await self.policy.put_data(path, document)
            except PolicyUnavailable:
                self.generation = None
                raise

    async def _bump(self, slug: str) -> None:
        await self.policy.put_data(f"{REVISIONS}/{slug}", {"revision": secrets.token_hex(8)})

    async def resync(self) -> None:
        """Replace every document with the database's state, then write a fresh sync marker.

        Raises:
            PolicyUnavailable: OPA did not take the data.
        """
        async with self._lock:
            async with self.sessions() as session:
                projects = (await session.scalars(select(Project))).all()
                members = (await session.scalars(select(Member))).all()
                rules = (await session.scalars(_approved())).all()
                bubbles = (await session.scalars(select(Bubble).where(Bubble.revoked_at.is_(None)))).all()
                networks = (await session.scalars(select(UserNetwork))).all()
                sensitive = set((await session.scalars(_sensitive_projects())).all())
            member_documents: dict[str, dict[str, Any]] = {project.id: {} for project in projects}
            for member in members:
                member_documents.setdefault(member.project_id, {})[member.username] = {"role": member.role.value}
            rule_documents: dict[str, dict[str, Any]] = {project.id: {} for project in projects}
            rules_by_project: dict[str, list[EgressRule]] = {project.id: [] for project in projects}
            for rule in rules:
                rule_documents.setdefault(rule.project_id, {})[rule.id] = rule_document(rule)
                rules_by_project.setdefault(rule.project_id, []).append(rule)
            generation = secrets.token_hex(8)
            try:
                await self.policy.put_data(
                    PROJECTS,
                    {
                        project.id: project_document(project, sensitive_data=project.id in sensitive)
                        for project in projects
                    },
                )
                await self.policy.put_data(MEMBERS, member_documents)
                await self.policy.put_data(RULES, rule_documents)
                await self.policy.put_data(
                    RULE_HOSTS, {slug: host_index(owned) for slug, owned in rules_by_project.items()}
                )
                await self.policy.put_data(BUBBLES, {bubble.id: bubble_document(bubble) for bubble in bubbles})
                await self.policy.put_data(USERS, user_documents(networks))
                await self.policy.put_data(REVISIONS, {project.id: {"revision": generation} for project in projects})
                await self.policy.put_data(SYNC, {"generation": generation})
            except PolicyUnavailable:
                self.generation = None
                raise
            self.generation = generation
            logger.info(
                "policy data resynced: %d projects, %d memberships, %d egress rules, %d bubbles, %d users' networks",
                len(projects),
                len(members),
                len(rules),
                len(bubbles),
                len(networks),
            )

    async def in_sync(self) -> bool:
        """Whether OPA still holds the data of our last resync (``False`` after an OPA restart).

        Raises:
            PolicyUnavailable: OPA did not answer.
        """
        if self.generation is None:
            return False
        marker = await self.policy.get_data(SYNC)
        return isinstance(marker, dict) and marker.get("generation") == self.generation

    async def watch(self, interval: float = 1.0) -> None:
        """Forever: resync whenever OPA lost our data (restart) or missed a push. Cancel to stop."""
        while True:
            try:
                if not await self.in_sync():
                    await self.resync()
            except PolicyUnavailable as error:
                logger.warning("policy data not in sync, OPA unavailable: %s", error)
            await asyncio.sleep(interval)
