"""The data the service keeps in OPA (``data.store.infracalc``), rebuilt from the database.

The database is the source of truth; OPA holds a copy the policies read, under a root of its own
where no policy package lives (:mod:`infracalc.policy.store` says why: a write under a package's
prefix costs OPA work proportional to the data there):

- ``data.store.infracalc.projects[<slug>] = {"title", "governance", "sensitive_data"}``: ``sensitive_data`` is
  true when the project has a released import classed ``sensitive`` (the governance policy then keeps
  it under CASD); an approval pushes the project again
- ``data.store.infracalc.members[<slug>][<username>] = {"role"}``
- ``data.store.infracalc.rules[<slug>][<rule_id>] = {"host", "wildcard", "ports", "methods", "path_prefixes",
  "expires_at_ns"}``: the project's approved egress rules only (never requested, denied or revoked
  ones); an expired rule stays until revoked, and the policy compares its expiry with the clock
- ``data.store.infracalc.rule_hosts[<slug>] = {<host>: {<rule_id>: true}}``: the same rules keyed by their
  (normalised) host, a wildcard rule under its base domain. The egress policy finds a project's rules
  through it only, by key, instead of a pass over all of them; it uses an entry only when the rule
  exists in ``rules[<slug>]`` and carries that host, so the index can hide a rule but never widen one.
  It is pushed after the rules, from the same rows.
- ``data.store.infracalc.bubbles[<bubble_id>] = {"project", "username", "token_sha256", "address"}``: the
  bubbles whose tokens are valid (registered and not revoked), so that the egress proxy authenticates
  a bubble and gets its decision in one question (``infracalc.egress.connection``). Only the digest
  of each token's secret is there, as in the database; ``address`` is where the bubble's connections
  must come from (``null`` until the hub knows it: the bubble then goes nowhere).
- ``data.store.infracalc.users[<username>] = {"networks": [<cidr>, ...]}``: the networks each person registered,
  for ``infracalc.login``; only people who registered at least one are there. No revision: the egress
  proxy does not read it, and a login is decided afresh each time.
- ``data.store.infracalc.revisions[<slug>] = {"revision": <random id>}``: written last by every push of a project (and
  of a bubble, under its project), so that the egress proxy, which polls this small document,
  knows which projects changed and re-decides their open tunnels.
- ``data.store.infracalc.sync = {"generation": <random id>}``: written last by a full resync. OPA keeps
  data in memory only, so after a restart the marker is gone; :meth:`PolicyData.watch` notices
  within a second and resyncs, without restarting the service.

After each committed change the service calls :meth:`PolicyData.push_project` (:meth:`~PolicyData.push_bubble`,
:meth:`~PolicyData.push_user`) before answering; it returns once OPA holds the committed rows.

How pushes are written (one request per change, or fewer):

- one writer at a time: a push waits for a *batch* that starts after it was asked for, and the
  batch reads the current rows of every project, bubble and person asked for in one session, then
  writes them to OPA in one JSON Patch (``PATCH /v1/data/store/infracalc``), which OPA applies in
  one transaction, all or nothing. The revisions of the projects concerned are the patch's last
  operations, so the egress proxy never sees a revision before the data it announces.
- pushes asked for while a batch is on its way join the next batch: fifty concurrent changes
  make a few requests, not fifty, and never wait behind fifty.
- since batches run one after another and each reads the rows after its callers committed, two
  concurrent changes cannot leave OPA with the older one.
- a patch needs its parents (``projects``, ``members``...) to exist. When OPA lacks them (it
  restarted and lost its data), the batch writes everything instead (:meth:`PolicyData.resync`),
  which holds the change too. A removal (a revoked bubble, a person without networks) of a
  document OPA does not hold makes the patch fail as a whole: the batch then deletes its removals
  one by one (absent is fine) before sending the rest.
- a full resync is one ``PUT`` of the whole ``data.store.infracalc`` document, made by the same
  writer, so it never interleaves with a push.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.db import (
    Bubble,
    EgressMode,
    EgressRule,
    EgressRuleStatus,
    Governance,
    Import,
    ImportState,
    Member,
    MemberRole,
    Project,
    Sensitivity,
    UserNetwork,
)
from infracalc.policy.opa import DocumentMissing, PolicyClient, PolicyUnavailable, pointer
from infracalc.policy.store import ROOT, SYNC

logger = logging.getLogger(__name__)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProjectRow(Protocol):
    """What a project's document is made of (a row of :data:`_PROJECTS`, or a :class:`~infracalc.db.Project`)."""

    id: str
    title: str
    governance: Governance


class MemberRow(Protocol):
    """What a membership's document is made of."""

    project_id: str
    username: str
    role: MemberRole


class RuleRow(Protocol):
    """What an approved rule's document is made of."""

    id: str
    project_id: str
    host: str
    wildcard: bool
    ports: list[int]
    mode: EgressMode
    methods: list[str]
    path_prefixes: list[str]
    max_request_bytes: int
    daily_upload_bytes: int
    max_response_bytes: int
    expires_at: datetime


# What the project documents are read from: plain rows, not ORM objects (a push follows every change,
# and loading objects costs several times the query). ``:slugs`` narrows them to the projects pushed.
_SLUGS: BindParameter[list[str]] = bindparam("slugs", expanding=True)
_PROJECTS = select(Project.id, Project.title, Project.governance)
_MEMBERS = select(Member.project_id, Member.username, Member.role)
_APPROVED_RULES = select(
    EgressRule.id,
    EgressRule.project_id,
    EgressRule.host,
    EgressRule.wildcard,
    EgressRule.ports,
    EgressRule.mode,
    EgressRule.methods,
    EgressRule.path_prefixes,
    EgressRule.max_request_bytes,
    EgressRule.daily_upload_bytes,
    EgressRule.max_response_bytes,
    EgressRule.expires_at,
).where(EgressRule.status == EgressRuleStatus.APPROVED)
#: The projects holding a released import classed sensitive.
_SENSITIVE = (
    select(Import.project_id)
    .where(Import.state == ImportState.RELEASED, Import.sensitivity == Sensitivity.SENSITIVE)
    .distinct()
)
_PROJECTS_OF = _PROJECTS.where(Project.id.in_(_SLUGS))
_MEMBERS_OF = _MEMBERS.where(Member.project_id.in_(_SLUGS))
_APPROVED_RULES_OF = _APPROVED_RULES.where(EgressRule.project_id.in_(_SLUGS))
_SENSITIVE_OF = _SENSITIVE.where(Import.project_id.in_(_SLUGS))


def project_document(project: ProjectRow, *, sensitive_data: bool = False) -> dict[str, Any]:
    """What the policies know of one project; ``sensitive_data``: it holds released data classed sensitive."""
    return {"title": project.title, "governance": project.governance.value, "sensitive_data": sensitive_data}


def rule_document(rule: RuleRow) -> dict[str, Any]:
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
    return {
        "project": bubble.project_id,
        "username": bubble.username,
        "token_sha256": bubble.token_sha256,
        "address": bubble.address,
    }


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


def host_index(rules: Iterable[RuleRow]) -> dict[str, dict[str, bool]]:
    """The host index of one project's approved rules: ``{host: {rule_id: True}}``.

    Keyed by the rule's host as pushed in :func:`rule_document` (a wildcard rule under its base
    domain, ``example.org`` for ``*.example.org``); the policy looks up the request host and each of
    its parent domains.
    """
    index: dict[str, dict[str, bool]] = {}
    for rule in rules:
        index.setdefault(rule.host, {})[rule.id] = True
    return index


#: What a push is about: ``("project", slug)``, ``("bubble", id)``, ``("user", username)``, or :data:`EVERYTHING`.
PushKey = tuple[str, str]
#: The key of a full resync.
EVERYTHING: PushKey = ("everything", "")


class PolicyData:
    """Pushes the service's state to OPA: what a change touched, after it; everything, after a restart."""

    def __init__(self, policy: PolicyClient, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.policy = policy
        self.sessions = sessions
        self.generation: str | None = None
        #: Pushes asked for and not yet taken by a batch, each with the callers waiting for it.
        self._pending: dict[PushKey, list[asyncio.Future[None]]] = {}
        self._writer: asyncio.Task[None] | None = None
        #: Requests sent to OPA to write data, for tests and the bench (one per batch, more when one fell back).
        self.writes = 0

    async def push_project(self, slug: str) -> None:
        """Copy one project, its members and its approved egress rules, as committed, to OPA.

        Raises:
            PolicyUnavailable: OPA did not take the data; the next watch tick resyncs everything.
        """
        await self._push(("project", slug))

    async def push_bubble(self, bubble_id: str) -> None:
        """Copy one bubble, as committed, to OPA: its token digest while valid, nothing once revoked.

        Raises:
            PolicyUnavailable: OPA did not take the change; the next watch tick resyncs everything.
        """
        await self._push(("bubble", bubble_id))

    async def push_user(self, username: str) -> None:
        """Copy one person's registered networks, as committed, to OPA (none: the person's document is removed).

        Raises:
            PolicyUnavailable: OPA did not take the change; the next watch tick resyncs everything.
        """
        await self._push(("user", username))

    async def resync(self) -> None:
        """Replace every document with the database's state, and a fresh sync marker, in one request.

        Raises:
            PolicyUnavailable: OPA did not take the data.
        """
        await self._push(EVERYTHING)

    async def _push(self, key: PushKey) -> None:
        """Wait until a batch that started after this call has written ``key``'s rows to OPA."""
        done = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(done)
        if self._writer is None:
            # A task of its own: a caller that goes away (client disconnected) does not stop the others' batch.
            self._writer = asyncio.create_task(self._write_batches(), name="opa-data-push")
        await done

    async def _write_batches(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    await self._write(set(batch))
                except Exception as error:  # noqa: BLE001 - handed to every caller of the batch, who raises it
                    outcome: BaseException | None = error
                else:
                    outcome = None
                for waiters in batch.values():
                    for waiter in waiters:
                        if waiter.done():  # its caller was cancelled
                            continue
                        if outcome is None:
                            waiter.set_result(None)
                        else:
                            waiter.set_exception(outcome)
        finally:
            self._writer = None

    async def _write(self, keys: set[PushKey]) -> None:
        try:
            if EVERYTHING in keys:
                await self._write_everything()
                return
            removals, additions = await self._operations(keys)
            if removals or additions:
                await self._patch(removals, additions)
        except PolicyUnavailable:
            self.generation = None  # force a full resync as soon as OPA answers again
            raise

    async def _operations(self, keys: set[PushKey]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
        """What copies the rows of ``keys``: the documents to remove, and ``add`` operations (revisions last)."""
        slugs = sorted(name for kind, name in keys if kind == "project")
        bubble_ids = sorted(name for kind, name in keys if kind == "bubble")
        usernames = sorted(name for kind, name in keys if kind == "user")
        projects: Sequence[ProjectRow] = ()
        members: Sequence[MemberRow] = ()
        rules: Sequence[RuleRow] = ()
        bubbles: Sequence[Bubble] = ()
        networks: Sequence[UserNetwork] = ()
        sensitive: set[str] = set()
        async with self.sessions() as session:
            if slugs:
                # Core statements on the session's connection (and transaction): rows, not objects.
                connection = await session.connection()
                projects = (await connection.execute(_PROJECTS_OF, {"slugs": slugs})).all()
                members = (await connection.execute(_MEMBERS_OF, {"slugs": slugs})).all()
                rules = (await connection.execute(_APPROVED_RULES_OF, {"slugs": slugs})).all()
                sensitive = set((await connection.execute(_SENSITIVE_OF, {"slugs": slugs})).scalars())
            if bubble_ids:
                bubbles = (await session.scalars(select(Bubble).where(Bubble.id.in_(bubble_ids)))).all()
            if usernames:
                networks = (await session.scalars(select(UserNetwork).where(UserNetwork.username.in_(usernames)))).all()
        removals: list[tuple[str, str]] = []
        additions: list[dict[str, Any]] = []
        revised: set[str] = set()
        documents = _project_documents(projects, members, rules, sensitive)
        for slug, project_documents in documents.items():
            additions += [_add(name, slug, document) for name, document in project_documents.items()]
            revised.add(slug)
        for bubble in bubbles:
            if bubble.revoked_at is None:
                additions.append(_add("bubbles", bubble.id, bubble_document(bubble)))
            else:
                removals.append(("bubbles", bubble.id))
            revised.add(bubble.project_id)
        people = user_documents(networks)
        for username in usernames:
            if username in people:
                additions.append(_add("users", username, people[username]))
            else:
                removals.append(("users", username))
        additions += [_add("revisions", slug, {"revision": secrets.token_hex(8)}) for slug in sorted(revised)]
        return removals, additions

    async def _patch(self, removals: list[tuple[str, str]], additions: list[dict[str, Any]]) -> None:
        """Send one patch; when OPA lacks a document it names, fall back as the module docstring says."""
        self.writes += 1
        try:
            operations = [{"op": "remove", "path": pointer(*removal)} for removal in removals]
            await self.policy.patch_data(ROOT, [*operations, *additions])
        except DocumentMissing:
            if not removals:
                await self._write_everything()
                return
        else:
            return
        for removal in removals:  # before the additions: the revisions come last
            self.writes += 1
            # OPA decodes each path segment: a username holding / or @ is one key still.
            await self.policy.delete_data("/".join((ROOT, *(quote(part, safe="") for part in removal))))
        if additions:
            self.writes += 1
            try:
                await self.policy.patch_data(ROOT, additions)
            except DocumentMissing:
                await self._write_everything()

    async def _write_everything(self) -> None:
        async with self.sessions() as session:
            connection = await session.connection()
            projects: Sequence[ProjectRow] = (await connection.execute(_PROJECTS)).all()
            members: Sequence[MemberRow] = (await connection.execute(_MEMBERS)).all()
            rules: Sequence[RuleRow] = (await connection.execute(_APPROVED_RULES)).all()
            sensitive = set((await connection.execute(_SENSITIVE)).scalars())
            bubbles = (await session.scalars(select(Bubble).where(Bubble.revoked_at.is_(None)))).all()
            networks = (await session.scalars(select(UserNetwork))).all()
        generation = secrets.token_hex(8)
        store: dict[str, dict[str, Any]] = {
            name: {} for name in ("projects", "members", "rules", "rule_hosts", "bubbles", "users", "revisions")
        }
        for slug, project_documents in _project_documents(projects, members, rules, sensitive).items():
            for name, document in project_documents.items():
                store[name][slug] = document
            store["revisions"][slug] = {"revision": generation}
        store["bubbles"] = {bubble.id: bubble_document(bubble) for bubble in bubbles}
        store["users"] = user_documents(networks)
        store["sync"] = {"generation": generation}
        self.writes += 1
        await self.policy.put_data(ROOT, store)
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


def _add(document: str, key: str, value: object) -> dict[str, Any]:
    return {"op": "add", "path": pointer(document, key), "value": value}


def _project_documents(
    projects: Sequence[ProjectRow], members: Sequence[MemberRow], rules: Sequence[RuleRow], sensitive: set[str]
) -> dict[str, dict[str, Any]]:
    """Per project: its ``projects``, ``members``, ``rules`` and ``rule_hosts`` documents, from its rows."""
    documents = {
        project.id: {
            "projects": project_document(project, sensitive_data=project.id in sensitive),
            "members": {},
            "rules": {},
            "rule_hosts": {},
        }
        for project in projects
    }
    for member in members:
        if member.project_id in documents:
            documents[member.project_id]["members"][member.username] = {"role": member.role.value}
    owned: dict[str, list[RuleRow]] = {}
    for rule in rules:
        if rule.project_id in documents:
            documents[rule.project_id]["rules"][rule.id] = rule_document(rule)
            owned.setdefault(rule.project_id, []).append(rule)
    for slug, project_rules in owned.items():
        documents[slug]["rule_hosts"] = host_index(project_rules)
    return documents
