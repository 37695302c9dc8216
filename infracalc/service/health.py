"""``/health`` (the process answers) and ``/ready`` (everything it depends on answers)."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get
from sqlalchemy import text

from infracalc.service.context import Context

logger = logging.getLogger(__name__)

#: Seconds each readiness probe may take.
PROBE_TIMEOUT = 3.0


class Readiness(msgspec.Struct):
    """Each dependency's state (``ok`` or ``down``); ``down`` names those that failed (the log says why)."""

    ready: bool
    checks: dict[str, str]
    down: list[str]


async def _database(context: Context) -> None:
    async with context.read_sessions() as session:
        await session.execute(text("SELECT 1"))


async def _opa(context: Context) -> None:
    if not await context.policy.healthy():
        raise ConnectionError("OPA does not answer /health")
    if not await context.policy_data.in_sync():
        raise ConnectionError("OPA does not hold the service's data yet")


async def _s3(context: Context) -> None:
    if context.s3 is None:
        raise ConnectionError("INFRACALC_S3_ENDPOINT_URL is not set")
    await anyio.to_thread.run_sync(context.s3.list_buckets)


def _fetch_keys(url: str) -> None:
    with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as answer:  # noqa: S310 - our configured Keycloak
        if answer.status != 200:  # noqa: PLR2004 - HTTP OK
            raise ConnectionError(f"Keycloak answered {answer.status}")


async def _keycloak(context: Context) -> None:
    await anyio.to_thread.run_sync(_fetch_keys, context.settings.jwks_url)


PROBES = {"database": _database, "opa": _opa, "s3": _s3, "keycloak_keys": _keycloak}


class HealthController(Controller):
    """Liveness and readiness, outside ``/api/v1`` and without authentication."""

    path = "/"
    tags = ["health"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/health", summary="The process is alive")
    async def health(self) -> dict[str, str]:
        """Always ``{"status": "alive"}`` while the process serves requests."""
        return {"status": "alive"}

    @get("/ready", summary="The database, OPA, S3 and Keycloak's keys all answer")
    async def ready(self, context: Context) -> Response[Readiness]:
        """200 when every dependency answers, else 503 naming those that do not."""

        async def probe(name: str) -> tuple[str, str]:
            try:
                await asyncio.wait_for(PROBES[name](context), PROBE_TIMEOUT)
            except Exception as error:  # noqa: BLE001 - any failure of a probe is what it reports
                # Anyone may ask: the answer names what is down, the log says why (addresses, errno).
                logger.warning("readiness: %s is down: %s", name, error or type(error).__name__)
                return name, "down"
            return name, "ok"

        results: dict[str, Any] = dict(await asyncio.gather(*(probe(name) for name in PROBES)))
        down = sorted(name for name, state in results.items() if state != "ok")
        return Response(Readiness(ready=not down, checks=results, down=down), status_code=503 if down else 200)
