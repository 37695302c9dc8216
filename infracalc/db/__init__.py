"""The service's database: settings, engine and sessions, tables, and migrations.

SQLite (WAL) is the embedded default and PostgreSQL the production database; the same code and
the same Alembic revisions serve both. Typical start-up::

    settings = DatabaseSettings.from_env()
    await upgrade(settings)
    engine = create_engine(settings)
    sessions = session_factory(engine)
"""

from __future__ import annotations

from infracalc.db.base import Base, UtcDateTime, utc_now
from infracalc.db.engine import create_engine, session_factory
from infracalc.db.migrate import alembic_config, upgrade
from infracalc.db.models import (
    SEARCH_STRUCTURES,
    Bubble,
    EgressMode,
    EgressRule,
    EgressRuleStatus,
    EndedSession,
    Enrollment,
    EnrollmentState,
    Export,
    ExportReview,
    ExportState,
    ExportVersion,
    Governance,
    GovernanceChange,
    Import,
    ImportState,
    ImportUpload,
    Member,
    MemberRole,
    Project,
    ReviewVerdict,
    RiskDecision,
    RiskModelRecord,
    RiskModelStatus,
    RiskRouting,
    Sensitivity,
    SessionEvent,
    SessionRecord,
    UserNetwork,
    WebSession,
    is_modelled,
)
from infracalc.db.settings import DatabaseError, DatabaseSettings, DatabaseUrlError, normalise_url

__all__ = [
    "SEARCH_STRUCTURES",
    "Base",
    "Bubble",
    "DatabaseError",
    "DatabaseSettings",
    "DatabaseUrlError",
    "EgressMode",
    "EgressRule",
    "EgressRuleStatus",
    "EndedSession",
    "Enrollment",
    "EnrollmentState",
    "Export",
    "ExportReview",
    "ExportState",
    "ExportVersion",
    "Governance",
    "GovernanceChange",
    "Import",
    "ImportState",
    "ImportUpload",
    "Member",
    "MemberRole",
    "Project",
    "ReviewVerdict",
    "RiskDecision",
    "RiskModelRecord",
    "RiskModelStatus",
    "RiskRouting",
    "Sensitivity",
    "SessionEvent",
    "SessionRecord",
    "UserNetwork",
    "UtcDateTime",
    "WebSession",
    "alembic_config",
    "create_engine",
    "is_modelled",
    "normalise_url",
    "session_factory",
    "upgrade",
    "utc_now",
]
