"""Test-wide configuration: the real-server fixtures, server logs shown on failure, the integration mark."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from infracalc.stack.process import tail

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.keycloak",
    "tests.fixtures.database",
    "tests.fixtures.service",
    "tests.fixtures.egress",
    "tests.fixtures.live_service",
    "tests.fixtures.hub",
    "tests.fixtures.enrollment",
]


#: Every test under this directory talks to real servers and must say so (``make test-unit`` leaves them out).
INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run when a test under ``tests/integration/`` lacks the ``integration`` mark."""
    unmarked = sorted(
        {
            str(item.path.relative_to(config.rootpath))
            for item in items
            if item.path.is_relative_to(INTEGRATION_DIR) and item.get_closest_marker("integration") is None
        }
    )
    if unmarked:
        raise pytest.UsageError(
            "tests under tests/integration/ must be marked integration "
            "(pytestmark = pytest.mark.integration); not marked: " + ", ".join(unmarked)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """When a test fails, attach the last log lines of every server fixture it used."""
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets fixtures see how the test went (screenshots)
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            log_path = getattr(value, "log_path", None)
            if isinstance(log_path, Path):
                report.sections.append((f"{name} server log ({log_path})", tail(log_path, 60)))
    return report
