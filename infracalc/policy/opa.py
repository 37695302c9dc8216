"""Ask OPA for decisions and keep its data, failing closed.

Every allow/deny in INFRACALC is an OPA decision: an object ``{"allow": bool, "reason": str, ...}``
returned by the rule ``decision`` of a package under ``policies/``. This module is the one place
that talks to OPA's REST API: decisions and data writes through one aiohttp session kept open
with keep-alive connections, the health check through opa-python-client. It never guesses: a
result that is missing (undefined), malformed, or that could not be obtained at all is a denial,
and an unreachable OPA raises :class:`PolicyUnavailable`, which the service turns into 503.

Decisions asked with ``cached=True`` may be answered from memory for at most
``INFRACALC_OPA_DECISION_CACHE_SECONDS`` (default 1, at most 1, 0 turns it off): the same question
within that time gets the same answer without a round trip. Every data write made through this
client empties the cache once OPA has taken it, and an answer that was on its way during a write
is not kept, so a change made by this process (a member removed, a bubble revoked) applies to the
very next question. Only writes by another process (another replica of the service) can be
missed, and for at most the cache's lifetime. The same bound holds for an OPA that stops: a
question answered less than a second ago keeps its answer until the cache entry is a second old
or until any question finds OPA gone (the service's data watch asks every second), which empties
the cache; every question after that fails closed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from opa_client.opa_async import AsyncOpaClient

from infracalc.config import SettingError
from infracalc.errors import InfracalcError


def msgspec_json_text(value: object) -> str:
    """JSON text of ``value`` (msgspec is several times faster than the standard library here)."""
    return msgspec.json.encode(value).decode()


class PolicyError(InfracalcError):
    """Base class of the policy client's errors."""


class PolicyUnavailable(PolicyError):
    """OPA could not be asked (down, timed out, or answered with an error): nothing is allowed."""


class DocumentMissing(PolicyUnavailable):
    """A patch named a document OPA does not hold (restarted, never synced): nothing of it was applied."""


def pointer(*keys: str) -> str:
    """The JSON Pointer (RFC 6901) of ``keys``, each escaped (``~`` as ``~0``, ``/`` as ``~1``)."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


@dataclass(frozen=True, slots=True)
class Decision:
    """One policy decision. ``extra`` holds any other field the policy returned (``rule_id``, ``from``...)."""

    allow: bool
    reason: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: object) -> Decision:
        """Read OPA's ``result``; anything but a well-formed decision object is a denial."""
        if not isinstance(result, dict):
            return cls(False, "the policy gave no decision (undefined): denied")
        allow, reason = result.get("allow"), result.get("reason")
        if not isinstance(allow, bool) or not isinstance(reason, str):
            return cls(False, "the policy gave a malformed decision: denied")
        extra = {key: value for key, value in result.items() if key not in {"allow", "reason"}}
        return cls(allow, reason, extra)


@dataclass(frozen=True, slots=True)
class OpaSettings:
    """Where OPA is and how long to wait for it."""

    #: ``INFRACALC_OPA_URL``: OPA's base URL.
    url: str = "http://127.0.0.1:8181"
    #: ``INFRACALC_OPA_TIMEOUT``: seconds to wait for one answer before failing closed.
    timeout: float = 2.0
    #: ``INFRACALC_OPA_DECISION_CACHE_SECONDS``: how long a decision asked with ``cached=True`` may be
    #: reused (0 to 1; 0 asks OPA every time).
    decision_cache_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpaSettings:
        """Read the OPA settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        cache_seconds = float(env.get("INFRACALC_OPA_DECISION_CACHE_SECONDS", "1"))
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            raise SettingError(
                f"INFRACALC_OPA_DECISION_CACHE_SECONDS must be between 0 and {MAX_CACHE_SECONDS}, got {cache_seconds}"
            )
        return cls(
            url=env.get("INFRACALC_OPA_URL", "http://127.0.0.1:8181").rstrip("/"),
            timeout=float(env.get("INFRACALC_OPA_TIMEOUT", "2.0")),
            decision_cache_seconds=cache_seconds,
        )


#: The longest a decision may be reused: revocations must not wait longer.
MAX_CACHE_SECONDS = 1.0
#: Decisions kept at most; the cache is emptied beyond (a burst of distinct questions).
MAX_CACHED_DECISIONS = 10_000


class DecisionCache:
    """Decisions by question, each kept ``seconds``; :meth:`forget` empties it and voids answers in flight."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Decision]] = {}
        #: Moves on every :meth:`forget`; an answer asked under an older generation is not kept.
        self.generation = 0

    def get(self, question: bytes) -> Decision | None:
        """The decision kept for ``question``, if it is still fresh."""
        entry = self._entries.get(question)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[question]
            return None
        return entry[1]

    def put(self, question: bytes, decision: Decision, generation: int) -> None:
        """Keep ``decision``, unless the data changed since the question was asked (``generation``)."""
        if self.seconds <= 0 or generation != self.generation:
            return
        if len(self._entries) >= MAX_CACHED_DECISIONS:
            self._entries.clear()
        self._entries[question] = (self._clock() + self.seconds, decision)

    def forget(self) -> None:
        """Drop every decision: the data they were made on changed."""
        self.generation += 1
        self._entries.clear()


class PolicyClient:
    """An open connection to OPA: decisions, data documents, health. Use as an async context manager."""

    def __init__(self, settings: OpaSettings) -> None:
        parts = urlsplit(settings.url)
        self.settings = settings
        # No retries: a decision that cannot be made now is a denial now, not a slow request.
        self._client = AsyncOpaClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            retries=0,
            timeout=settings.timeout,
        )
        self._queries: aiohttp.ClientSession | None = None
        self.cache = DecisionCache(settings.decision_cache_seconds)

    async def __aenter__(self) -> PolicyClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the connection pools."""
        await self._client._init_session()  # what the client's own __aenter__ does
        self._queries = aiohttp.ClientSession(
            base_url=self.settings.url,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            json_serialize=msgspec_json_text,
        )

    async def close(self) -> None:
        """Close the connection pools."""
        await self._client.close_connection()
        if self._queries is not None:
            await self._queries.close()
            self._queries = None

    async def decide(
        self, package: str, payload: Mapping[str, Any], rule: str = "decision", *, cached: bool = False
    ) -> Decision:
        """Ask ``package``'s ``rule`` about ``payload``; with ``cached``, a fresh cached answer may do.

        Only questions whose answer depends on OPA's data and the input alone may be cached (not on
        the time: the egress policy compares expiries with the clock).

        Raises:
            PolicyUnavailable: OPA did not answer with a result document.
        """
        if not cached:
            return Decision.from_result(await self.query(package, rule, payload))
        question = msgspec.json.encode((package, rule, payload))
        decision = self.cache.get(question)
        if decision is None:
            generation = self.cache.generation
            decision = Decision.from_result(await self.query(package, rule, payload))
            self.cache.put(question, decision, generation)
        return decision

    async def query(self, package: str, rule: str, payload: Mapping[str, Any]) -> object:
        """The raw result of any rule (for sets such as ``visible_projects``); ``None`` when undefined.

        Decisions sit on every request's path, so they go through a plain keep-alive aiohttp
        session rather than opa-python-client's retrying wrapper (measured: about 0.25 ms less
        per decision on loopback).

        Raises:
            PolicyUnavailable: OPA did not answer.
        """
        if self._queries is None:
            raise PolicyUnavailable("the policy client is not open")
        path = f"/v1/data/{package.replace('.', '/')}/{rule}"
        try:
            async with self._queries.post(path, json={"input": payload}) as answer:
                body = await answer.read()
                status = answer.status
        except (TimeoutError, aiohttp.ClientError) as error:
            self.cache.forget()  # an OPA that is gone may come back without its data
            raise PolicyUnavailable(f"OPA at {self.settings.url} did not answer: {error!r}") from error
        if status != 200:  # noqa: PLR2004 - OPA answers 200 with a result document, or an error
            self.cache.forget()
            raise PolicyUnavailable(f"OPA at {self.settings.url} answered {status} for {path}")
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise PolicyUnavailable(f"OPA at {self.settings.url} gave an unreadable answer") from error
        return document.get("result") if isinstance(document, dict) else None

    async def put_data(self, path: str, document: dict[str, Any]) -> None:
        """Replace the data document at ``path`` (slash-separated, under ``/v1/data/``), creating its parents.

        Raises:
            PolicyUnavailable: OPA did not accept the document.
        """
        await self._write("PUT", path, document, "application/json")

    async def patch_data(self, path: str, operations: list[dict[str, Any]]) -> None:
        """Apply JSON Patch ``operations`` (RFC 6902: ``add``, ``remove``, ``replace``) to the document at ``path``.

        One request, one write transaction in OPA: every operation is applied, or none is (OPA
        refuses the whole patch when one fails). ``add`` replaces a member that exists; its parent
        must exist. Paths are JSON Pointers relative to ``path`` (see :func:`pointer`).

        Raises:
            DocumentMissing: OPA holds no document at ``path``, at an ``add``'s parent or at a ``remove``'s
                target; nothing was changed.
            PolicyUnavailable: OPA did not answer, or refused the patch otherwise.
        """
        await self._write("PATCH", path, operations, "application/json-patch+json")

    async def _write(self, method: str, path: str, body: object, content_type: str) -> None:
        if self._queries is None:
            raise PolicyUnavailable("the policy client is not open")
        try:
            async with self._queries.request(
                method, f"/v1/data/{path}", data=msgspec.json.encode(body), headers={"Content-Type": content_type}
            ) as answer:
                status = answer.status
                text = "" if status == 204 else (await answer.text())[:300]  # noqa: PLR2004 - 204 No Content: taken
        except (TimeoutError, aiohttp.ClientError) as error:
            raise PolicyUnavailable(f"OPA at {self.settings.url} did not answer: {error!r}") from error
        finally:
            # Taken or not (a timeout may hide a write that happened), the cached decisions may be stale.
            self.cache.forget()
        if status == 404 and method == "PATCH":  # noqa: PLR2004 - HTTP Not Found
            raise DocumentMissing(f"OPA at {self.settings.url} holds no document the patch of {path} needs: {text}")
        if status != 204:  # noqa: PLR2004 - HTTP No Content
            raise PolicyUnavailable(f"OPA at {self.settings.url} answered {status} to {method} {path}: {text}")

    async def delete_data(self, path: str) -> None:
        """Remove the data document at ``path``; removing one that does not exist is not an error.

        Raises:
            PolicyUnavailable: OPA did not answer, or refused.
        """
        if self._queries is None:
            raise PolicyUnavailable("the policy client is not open")
        try:
            async with self._queries.delete(f"/v1/data/{path}") as answer:
                status = answer.status
        except (TimeoutError, aiohttp.ClientError) as error:
            raise PolicyUnavailable(f"OPA at {self.settings.url} did not answer: {error!r}") from error
        finally:
            self.cache.forget()
        if status not in (204, 404):
            raise PolicyUnavailable(f"OPA at {self.settings.url} answered {status} deleting {path}")

    async def get_data(self, path: str) -> object:
        """The data document at ``path``, or ``None`` when it does not exist.

        Raises:
            PolicyUnavailable: OPA did not answer.
        """
        package, _, rule = path.replace("/", ".").rpartition(".")
        return await self.query(package, rule, {})

    async def healthy(self) -> bool:
        """Whether OPA answers its health endpoint now (the client turns every failure into ``False``)."""
        return bool(await self._client.check_health())
