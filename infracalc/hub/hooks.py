"""What the hub does around each bubble: the spawn page, registration before start, revocation after stop.

One bubble per (user, project): the hub's named servers, the server name being the project id.
``jupyterhub_config.py`` wires these functions::

    c.Spawner.options_form = hooks.options_form
    c.Spawner.pre_spawn_hook = hooks.pre_spawn_hook
    c.Spawner.post_stop_hook = hooks.post_stop_hook

and sets :data:`service` (a :class:`~infracalc.hub.bubbles.ServiceClient`) and the URLs bubbles
use, with :func:`configure`. The spawners call :func:`bind_address` once they know where a bubble
runs (registration gives no address: a container's is known only once it started).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any

from tornado import web

from infracalc.hub.bubbles import BubbleRegistration, ServiceClient, ServiceRefused, bubble_environment

logger = logging.getLogger("infracalc.hub")


@dataclass(frozen=True, slots=True)
class BubbleEndpoints:
    """The service and the egress proxy as a bubble reaches them (production: by service name)."""

    api_url: str
    proxy_url: str
    no_proxy: tuple[str, ...]


@dataclass
class _Wiring:
    service: ServiceClient | None = None
    endpoints: BubbleEndpoints | None = None


_wiring = _Wiring()


def configure(service: ServiceClient, endpoints: BubbleEndpoints | None) -> None:
    """Give the hooks the service client and the bubbles' view of the network (called by the hub config)."""
    _wiring.service = service
    _wiring.endpoints = endpoints


def _service() -> ServiceClient:
    if _wiring.service is None:
        raise web.HTTPError(503, "the hub is not connected to the INFRACALC service (configure() was not called)")
    return _wiring.service


async def options_form(spawner: Any) -> str:
    """The spawn page: the user's projects with their governance; the bubble being started is the server's name."""
    try:
        projects = await _service().user_projects(spawner.user.name)
    except ServiceRefused as error:
        return f"<p class='alert alert-danger'>Your projects cannot be listed: {html.escape(error.message)}</p>"
    if not projects:
        return "<p>You are not a member of any project yet: ask a project lead or CASD staff to add you.</p>"
    rows = []
    for project in projects:
        if project.id == spawner.name:
            action = "<b>this bubble</b>"
        else:
            action = f"<a href='/hub/spawn/{spawner.user.escaped_name}/{html.escape(project.id)}'>start its bubble</a>"
        rows.append(
            f"<tr><td>{html.escape(project.id)}</td><td>{html.escape(project.title)}</td>"
            f"<td>{html.escape(project.governance)}</td><td>{html.escape(project.role)}</td><td>{action}</td></tr>"
        )
    intro = (
        f"<p>Start the bubble of project <b>{html.escape(spawner.name)}</b>.</p>"
        if spawner.name
        else "<p>Choose the project whose bubble to start:</p>"
    )
    return (
        intro
        + "<table class='table'><tr><th>project</th><th>title</th><th>governance</th><th>your role</th><th></th></tr>"
        + "".join(rows)
        + "</table><p>Under CASD governance a bubble calls no external API.</p>"
    )


async def pre_spawn_hook(spawner: Any) -> None:
    """Register the bubble with the service (which checks membership and opens its session); set its environment.

    Raises:
        tornado.web.HTTPError: 400 for a server without a project name, 403 when the user is not a member,
            404 for an unknown project, 503 when the service cannot be reached. JupyterHub shows the message.
    """
    project = str(spawner.name or "")
    if not project:
        raise web.HTTPError(
            400, "Choose a project: each bubble belongs to one project (open /hub/spawn/<you>/<project>)."
        )
    try:
        bubble = await _service().register_bubble(spawner.user.name, project)
    except ServiceRefused as error:
        if error.status == 403:  # noqa: PLR2004
            raise web.HTTPError(403, f"You are not a member of project {project}: {error.message}") from None
        if error.status == 404:  # noqa: PLR2004
            raise web.HTTPError(404, f"There is no project {project}.") from None
        raise web.HTTPError(503, f"The bubble cannot be registered now: {error.message}") from None
    spawner.bubble = bubble
    endpoints = _wiring.endpoints
    if endpoints is not None:
        spawner.environment.update(
            bubble_environment(
                bubble, api_url=endpoints.api_url, proxy_url=endpoints.proxy_url, no_proxy=endpoints.no_proxy
            )
        )
    logger.info("bubble %s registered for %s in project %s", bubble.bubble_id, bubble.username, project)
    await _report(bubble, "hub.login", f"{bubble.username} signed in with two factors", await _sign_in(spawner))
    await _report(bubble, "hub.spawn", f"{bubble.username} started the bubble of project {project}")


async def bind_address(spawner: Any, address: str) -> None:
    """Tell the service where the bubble runs (its namespace's, container's or pod's address), before it works.

    The spawners call this as soon as they know the address: the local one before the server starts
    in its namespace, the Docker one once the container has its address. Until then the egress proxy
    refuses the bubble's credentials, and from then on it refuses them from any other address.

    Raises:
        tornado.web.HTTPError: 503 when the service did not record it (the spawn fails; nothing goes out).
    """
    bubble: BubbleRegistration | None = getattr(spawner, "bubble", None)
    if bubble is None:
        return
    try:
        await _service().bind_address(bubble.bubble_id, address)
    except ServiceRefused as error:
        raise web.HTTPError(503, f"The bubble's address cannot be registered now: {error.message}") from None
    logger.info("bubble %s runs at %s", bubble.bubble_id, address)


async def post_stop_hook(spawner: Any) -> None:
    """Revoke the bubble's token and close its session (the proxy then refuses its credentials)."""
    bubble: BubbleRegistration | None = getattr(spawner, "bubble", None)
    if bubble is None:
        return
    await _report(bubble, "hub.stop", f"the bubble of project {bubble.project} stopped")
    try:
        await _service().revoke_bubble(bubble.bubble_id)
    except ServiceRefused as error:
        logger.error("bubble %s could not be revoked: %s", bubble.bubble_id, error.message)  # noqa: TRY400
        return
    spawner.bubble = None
    logger.info("bubble %s revoked", bubble.bubble_id)


async def _sign_in(spawner: Any) -> dict[str, Any]:
    """What the authenticator verified of the sign-in behind this start: the level and its time."""
    auth_state = await spawner.user.get_auth_state() or {}
    return {"acr": auth_state.get("acr"), "auth_time": auth_state.get("auth_time")}


async def _report(bubble: BubbleRegistration, kind: str, summary: str, details: dict[str, Any] | None = None) -> None:
    """Add a hub event to the bubble's session; a failure is logged, never blocks the spawn or stop."""
    try:
        await _service().session_event(
            bubble.bubble_id, kind, summary, {"username": bubble.username, **(details or {})}
        )
    except ServiceRefused as error:
        logger.warning("session event %s of bubble %s not recorded: %s", kind, bubble.bubble_id, error.message)
