"""The web pages served by the service: server-rendered, French by default, CSRF-protected.

So far the remote-enrollment pages (:mod:`.enroll`); the web console (issue 7) builds on the
same layout, catalogue and helpers (:mod:`.pages`, :mod:`.i18n`).
"""

from __future__ import annotations

from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from infracalc.web.enroll import EnrollPages
from infracalc.web.pages import STATIC, csrf_config, template_config


def web_routes() -> list[ControllerRouterHandler]:
    """The pages and their stylesheet (``/static``)."""
    return [EnrollPages, create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)]


__all__ = ["EnrollPages", "csrf_config", "template_config", "web_routes"]
