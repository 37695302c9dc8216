"""The pinned tools are installed where :class:`~infracalc.tools.Tools` says, and they run."""

from __future__ import annotations

import subprocess

import pytest

from infracalc.config import ToolSettings
from infracalc.tools import Tools, install, versions

pytestmark = pytest.mark.integration


def version_output(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout + result.stderr


def test_nothing_is_missing_after_install(tools: Tools) -> None:
    assert tools.missing() == []


def test_second_install_reinstalls_nothing(tools: Tools) -> None:
    lines: list[str] = []
    install(ToolSettings(tools_dir=tools.root, java_home=tools.java_home), report=lines.append)
    assert not [line for line in lines if line.startswith("installing")]


def test_pinned_versions_run(tools: Tools) -> None:
    assert versions.OPA_VERSION.lstrip("v") in version_output(str(tools.opa), "version")
    assert versions.REGAL_VERSION.lstrip("v") in version_output(str(tools.regal), "version")
    assert versions.VERSITYGW_VERSION.lstrip("v") in version_output(str(tools.versitygw), "--version")
    assert versions.CHP_VERSION in version_output(str(tools.configurable_http_proxy), "--version")
    assert (tools.keycloak_home / "version.txt").read_text().strip().endswith(versions.KEYCLOAK_VERSION)
