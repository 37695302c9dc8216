"""The pinned external tools (Keycloak, OPA, Regal, versitygw, configurable-http-proxy): install and locate."""

from __future__ import annotations

from infracalc.tools.install import MissingPrerequisite, ToolError, Tools, find_java_home, install, locate

__all__ = ["MissingPrerequisite", "ToolError", "Tools", "find_java_home", "install", "locate"]
