"""The pinned external tools (Keycloak, OPA, Regal, versitygw, configurable-http-proxy): install and locate.

Smokescreen, a benchmark contender only, has its own :func:`install_smokescreen`.
"""

from __future__ import annotations

from infracalc.tools.install import (
    MissingPrerequisite,
    ToolError,
    Tools,
    find_java_home,
    install,
    install_smokescreen,
    locate,
)

__all__ = ["MissingPrerequisite", "ToolError", "Tools", "find_java_home", "install", "install_smokescreen", "locate"]
