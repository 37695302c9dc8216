"""Stopping the hub's server of a bubble the service revoked, through JupyterHub's REST API.

The service revokes bubbles on its own when a member is removed or a person offboarded; the hub,
which started them, must stop their servers too, or the person could go on using the notebook
(and the project's files) through it. The service is a JupyterHub service for this, as the idle
culler is: the hub's configuration registers it with ``INFRACALC_HUB_SERVICE_TOKEN`` and a role
holding ``delete:servers`` only, and the service sends that token to
``DELETE <INFRACALC_HUB_API_URL>/users/<user>/servers/<project>`` (a bubble is the named server
of its user whose name is its project). Pushing rather than having the hub poll: the stop follows
the revocation at once, the hub needs no new process, and JupyterHub's API already does it (it
also interrupts a start in progress).

The stop is asked right after the revocation reached OPA; the token is refused and the tunnels cut
whatever the hub answers. An unreachable hub is asked again in the background a few times (each
attempt logged), then the failure is logged as an error: the server then runs without credentials
until someone stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from infracalc.errors import InfracalcError

logger = logging.getLogger(__name__)

#: Seconds to wait before each new attempt after a failed stop.
RETRY_DELAYS: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class HubUnavailable(InfracalcError):
    """The hub did not stop the server: unreachable, or it refused the service's token."""


@dataclass
class HubServers:
    """JupyterHub's API, as the service uses it: stop the server of a revoked bubble."""

    api_url: str
    token: str = field(repr=False)
    timeout: float = 10.0
    retry_delays: Sequence[float] = RETRY_DELAYS
    _retries: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    async def stop(self, username: str, server: str) -> bool:
        """Ask the hub to stop ``username``'s server named ``server``; ``False`` when the hub has no such server.

        Raises:
            HubUnavailable: the hub did not answer, or answered with an error.
        """
        url = f"{self.api_url.rstrip('/')}/users/{quote(username, safe='')}/servers/{quote(server, safe='')}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.delete(url, headers={"Authorization": f"token {self.token}"}) as answer,
            ):
                status = answer.status
                text = (await answer.text())[:200]
        except (aiohttp.ClientError, TimeoutError) as error:
            raise HubUnavailable(f"the hub cannot be reached: {error}") from None
        if status in (202, 204):  # stopping, stopped
            return True
        if status == 404:  # noqa: PLR2004 - the hub never started this server, or forgot it
            return False
        raise HubUnavailable(f"the hub answered {status}: {text}")

    async def stop_all(self, servers: Iterable[tuple[str, str]]) -> None:
        """Stop each ``(username, server)``; one that fails is asked again in the background, never raised."""
        for username, server in servers:
            try:
                stopped = await self.stop(username, server)
            except HubUnavailable as error:
                logger.warning("the hub did not stop server %s of %s (%s); asking again", server, username, error)
                self._retry(username, server)
                continue
            logger.info("hub %s server %s of %s", "stopping" if stopped else "has no", server, username)

    def _retry(self, username: str, server: str) -> None:
        task = asyncio.create_task(self._again(username, server), name=f"hub-stop-{username}-{server}")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _again(self, username: str, server: str) -> None:
        for delay in self.retry_delays:
            await asyncio.sleep(delay)
            try:
                await self.stop(username, server)
            except HubUnavailable as error:
                logger.warning("the hub did not stop server %s of %s: %s", server, username, error)
                continue
            logger.info("hub stopping server %s of %s", server, username)
            return
        logger.error(
            "gave up asking the hub to stop server %s of %s: it runs without credentials until stopped by hand",
            server,
            username,
        )

    async def close(self) -> None:
        """Cancel the stops still being retried (at shutdown)."""
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
