"""The Litestar application: ``create_app()`` wires settings, collaborators, routes and errors.

At start-up the service migrates the database, opens its OPA connection, pushes its data to OPA
(and keeps watching for an OPA that restarted and lost it), and loads the realm's keys. At
shutdown it closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy.exc import SQLAlchemyError

from infracalc import __version__
from infracalc.audit import AuditLog
from infracalc.casd.objects import ObjectStore, ObjectStoreError
from infracalc.casd.risk_model import RiskAssessor
from infracalc.db import create_engine, session_factory, upgrade
from infracalc.identity import JwksUnavailable, TokenVerifier
from infracalc.identity.directory import KeycloakDirectory
from infracalc.policy import PolicyClient, PolicyUnavailable
from infracalc.policy.sync import PolicyData
from infracalc.service.audit_routes import AuditController
from infracalc.service.auth import (
    BubbleScheme,
    CredentialScheme,
    KeycloakScheme,
    ProxyScheme,
    TokenAuthenticationMiddleware,
)
from infracalc.service.bubbles.controller import BubbleController
from infracalc.service.bubbles.hub import HubServers
from infracalc.service.context import ServiceContext
from infracalc.service.demo import DEMO_PROJECT, seed_demo_project
from infracalc.service.egress_events import EgressEventController
from infracalc.service.egress_rules import EgressRequestController, EgressRuleController
from infracalc.service.enrollments import EnrollmentController
from infracalc.service.errors import EXCEPTION_HANDLERS, BadRequest, InvalidInput
from infracalc.service.exports import ExportController, ProjectExportController
from infracalc.service.health import HealthController
from infracalc.service.imports import ImportReviewController, ProjectImportController, recovery
from infracalc.service.json_input import JsonRefused, check_json
from infracalc.service.openapi import document_errors
from infracalc.service.projects import MeController, ProjectController
from infracalc.service.request_ids import RequestIdentity, RequestIdFilter
from infracalc.service.session_code import SessionCodeController
from infracalc.service.session_routes import SessionController
from infracalc.service.settings import API_AUDIENCE, REALM, ServiceSettings
from infracalc.service.users import UserController
from infracalc.storage import make_s3_client
from infracalc.web import csrf_config, template_config, web_routes
from infracalc.web.errors import error_pages
from infracalc.web.login import id_token_verifier

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def _context(state: State) -> ServiceContext:
    context: ServiceContext = state.context
    return context


@contextlib.asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    await upgrade(settings.database)
    # Writes, reads and the hottest reads on engines of their own (see infracalc.db.engine): on SQLite,
    # writes queue for one connection; hot reads run one statement without a transaction.
    engine = create_engine(settings.database, writer=True)
    read_engine = create_engine(settings.database)
    hot_engine = create_engine(settings.database, one_statement=True)
    policy = PolicyClient(settings.opa)
    await policy.open()
    sessions = session_factory(engine)
    s3 = make_s3_client(settings.s3) if settings.s3 is not None else None
    read_sessions = session_factory(read_engine, read_only=True)
    policy_data = PolicyData(policy, read_sessions)
    verifier: TokenVerifier = app.state.verifier
    objects = (
        None
        if s3 is None or settings.s3 is None
        else ObjectStore(s3, settings.s3.bucket, part_client=make_s3_client(settings.s3, sign_payload=False))
    )
    context = ServiceContext(
        settings=settings,
        sessions=sessions,
        read_sessions=read_sessions,
        reads=hot_engine,
        policy=policy,
        policy_data=policy_data,
        audit_log=AuditLog.from_settings(settings.audit),
        verifier=verifier,
        directory=KeycloakDirectory(settings.keycloak_internal_url, REALM, API_AUDIENCE, settings.api_client_secret),
        s3=s3,
        objects=objects,
        export_sampler=settings.exports.sampler(),
        risk_assessor=RiskAssessor(objects),
        hub_servers=_hub_servers(settings),
    )
    app.state.context = context
    if context.objects is not None:
        try:
            await context.objects.ensure_bucket()
        except ObjectStoreError as error:
            logger.warning(
                "bucket %s not ready at start (%s); imports and exports fail until it is", context.objects.bucket, error
            )
    if await seed_demo_project(context, settings.demo_members):
        logger.info("created the demo project %r for %s", DEMO_PROJECT, ", ".join(u for u, _ in settings.demo_members))
    try:
        await policy_data.resync()
    except PolicyUnavailable as error:
        logger.warning("OPA unavailable at start (%s); requests answer 503 until it is back", error)
    try:
        await asyncio.to_thread(verifier.refresh_keys)
    except JwksUnavailable as error:
        logger.warning("Keycloak's keys unavailable at start (%s); they are fetched at the first request", error.detail)
    tasks = [
        asyncio.create_task(policy_data.watch(), name="opa-data-watch"),
        asyncio.create_task(_seal_quiet_log(context), name="audit-checkpoints"),
        # At start and periodically: what crashed imports (and lost aborts) left in the store.
        asyncio.create_task(recovery.sweep_periodically(context), name="upload-recovery"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A last checkpoint, so that a clean shutdown leaves the whole log sealed.
        await _checkpoint(context)
        if context.hub_servers is not None:
            await context.hub_servers.close()
        await policy.close()
        for each in (engine, read_engine, hot_engine):
            await each.dispose()


def _hub_servers(settings: ServiceSettings) -> HubServers | None:
    if settings.hub_api_url is None or settings.hub_api_token is None:
        logger.warning(
            "INFRACALC_HUB_API_URL or INFRACALC_HUB_API_TOKEN is unset: the hub is not asked to stop the servers of "
            "bubbles the service revokes (their credentials are refused all the same)"
        )
        return None
    return HubServers(settings.hub_api_url, settings.hub_api_token)


#: Methods whose requests carry a body.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def _check_json_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a body that is not JSON with 415, and unsound JSON with 400 or 422, before a route decodes it.

    A route that takes another kind of body (a file upload) says so with ``opt={"raw_body": True}``.
    JSON bodies are read here (Litestar keeps the bytes for the route) and checked by
    :func:`~infracalc.service.json_input.check_json`: nesting, duplicate keys.
    """
    if request.method not in _BODY_METHODS or request.route_handler.opt.get("raw_body"):
        return
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            status_code=415, detail=f"send JSON (Content-Type: application/json), not {media_type or 'no type'}"
        )
    body = await request.body()
    if not body:
        return
    try:
        check_json(body)
    except JsonRefused as refusal:
        raise (BadRequest if refusal.reason == "malformed" else InvalidInput)(str(refusal)) from None


async def _seal_quiet_log(context: ServiceContext) -> None:
    """Every ``INFRACALC_AUDIT_CHECKPOINT_SECONDS``, seal the events written since the last checkpoint.

    Appends seal by count or age as they happen; this timer seals a log that went quiet.
    """
    while True:
        await asyncio.sleep(context.settings.audit.checkpoint_seconds)
        await _checkpoint(context)


async def _checkpoint(context: ServiceContext) -> None:
    try:
        async with context.sessions() as session, session.begin():
            await context.audit_log.checkpoint_now(session)
    except SQLAlchemyError as error:
        logger.warning("audit checkpoint not written (the database failed): %s", error)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    credential_schemes: list[CredentialScheme] | None = None,
) -> Litestar:
    """The INFRACALC service.

    Args:
        settings: defaults to :meth:`ServiceSettings.from_env`.
        verifier: the token verifier; defaults to one for ``settings``' realm and the ``infracalc-api`` audience.
        credential_schemes: how callers prove who they are, tried in order; defaults to Keycloak tokens (people
            and the hub), bubble tokens, and the egress proxy's secret.
    """
    settings = settings or ServiceSettings.from_env()
    verifier = verifier or TokenVerifier(settings.issuer, audience=API_AUDIENCE, jwks_url=settings.jwks_url)
    schemes = (
        credential_schemes
        if credential_schemes is not None
        else [KeycloakScheme(verifier), BubbleScheme(), ProxyScheme(settings.egress_proxy_secret_sha256)]
    )
    authentication = DefineMiddleware(TokenAuthenticationMiddleware)
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            MeController,
            ProjectController,
            AuditController,
            BubbleController,
            EgressRuleController,
            EgressRequestController,
            EgressEventController,
            SessionController,
            SessionCodeController,
            UserController,
            EnrollmentController,
            ProjectImportController,
            ImportReviewController,
            ProjectExportController,
            ExportController,
        ],
        middleware=[authentication],
        security=[{"keycloak": []}],
        before_request=_check_json_body,
    )
    openapi = OpenAPIConfig(
        title="INFRACALC",
        version=__version__,
        description=(
            "Projects, governance, allowlists, bubbles, egress events, sessions, users' networks, enrollments,"
            " imports, exports and the audit log."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                "keycloak": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="A Keycloak access token of realm infracalc (audience infracalc-api, acr mfa).",
                )
            }
        ),
    )
    app = Litestar(
        route_handlers=[HealthController, api, *web_routes()],
        dependencies={"context": Provide(_context, sync_to_thread=False)},
        # JSON for the API; an HTML page for a browser asking for any other path.
        exception_handlers=error_pages(EXCEPTION_HANDLERS),
        lifespan=[_lifespan],
        openapi_config=openapi,
        request_max_body_size=settings.json_limit,
        state=State(
            {
                "settings": settings,
                "verifier": verifier,
                "credential_schemes": schemes,
                "id_verifier": id_token_verifier(settings),
            }
        ),
        on_app_init=[_log_config],
        logging_config=_logging_config(),
        template_config=template_config(),
        csrf_config=csrf_config(settings.web_secret, secure=settings.web_url.startswith("https://")),
    )
    document_errors(app)
    # Outside Litestar's own handler, so that every answer has an id, an unknown route's or a 500's too.
    app.asgi_handler = RequestIdentity(app.asgi_handler)
    return app


def _logging_config() -> LoggingConfig:
    """Litestar's logging set-up (a queue, so that no request waits for the terminal), each line with its request id."""
    handler = {"level": "DEBUG", "formatter": "standard", "filters": ["request_id"]}
    return LoggingConfig(
        formatters={"standard": {"format": "%(asctime)s %(levelname)s %(name)s [request %(request_id)s] %(message)s"}},
        filters={"request_id": {"()": RequestIdFilter}},
        handlers={
            "console": {"class": "logging.StreamHandler", **handler},
            "queue_listener": {"class": "litestar.logging.standard.QueueListenerHandler", **handler},
        },
    )


def _log_config(config: AppConfig) -> AppConfig:
    logging.getLogger("infracalc").setLevel(logging.INFO)
    return config


__all__ = ["API_PREFIX", "create_app"]
