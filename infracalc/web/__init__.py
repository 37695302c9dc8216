"""The web pages served by the service: server-rendered, French by default, CSRF-protected.

The remote-enrollment pages (:mod:`.enroll`), the console's login (:mod:`.login`, sessions in
:mod:`.sessions`) and the console's pages (:mod:`.console`), on one layout, catalogue and set of
helpers (:mod:`.pages`, :mod:`.i18n`).
"""

from __future__ import annotations

from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from infracalc.web.backchannel import BackchannelLogout
from infracalc.web.console import ConsolePages
from infracalc.web.enroll import EnrollPages
from infracalc.web.login import LoginPages
from infracalc.web.oversight import OversightPages
from infracalc.web.pages import STATIC, csrf_config, template_config
from infracalc.web.project_pages import ProjectPages
from infracalc.web.reviews import ReviewPages
from infracalc.web.risk_models import RiskModelPages
from infracalc.web.staff_enrollments import StaffEnrollmentPages
from infracalc.web.staff_offboarding import StaffOffboardingPages
from infracalc.web.staff_pages import StaffPages
from infracalc.web.uploads import UploadPages


def web_routes() -> list[ControllerRouterHandler]:
    """The pages and their stylesheet (``/static``)."""
    return [
        EnrollPages,
        LoginPages,
        BackchannelLogout,
        ConsolePages,
        ProjectPages,
        StaffPages,
        OversightPages,
        StaffEnrollmentPages,
        StaffOffboardingPages,
        ReviewPages,
        RiskModelPages,
        UploadPages,
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
    ]


__all__ = [
    "ConsolePages",
    "EnrollPages",
    "LoginPages",
    "OversightPages",
    "ProjectPages",
    "ReviewPages",
    "RiskModelPages",
    "StaffEnrollmentPages",
    "StaffOffboardingPages",
    "StaffPages",
    "UploadPages",
    "csrf_config",
    "template_config",
    "web_routes",
]
