"""The pinned versions of every external server and linter the project runs.

Change a version here and nowhere else: the installer, ``infracalc up`` and the test fixtures
all read these names.
"""

from __future__ import annotations

#: Keycloak, from Maven Central's ``org.keycloak:keycloak-quarkus-dist`` (runs on Java 21 or 25).
KEYCLOAK_VERSION = "26.7.3"
#: The oldest Java major version this Keycloak runs on.
KEYCLOAK_MIN_JAVA = 21

#: Open Policy Agent, built with ``go`` from the Go module proxy.
OPA_MODULE = "github.com/open-policy-agent/opa"
OPA_VERSION = "v1.22.3"

#: Regal, the Rego linter.
REGAL_MODULE = "github.com/open-policy-agent/regal"
REGAL_VERSION = "v0.38.1"
#: The variable Regal's release builds set, so that ``regal version`` tells the truth.
REGAL_VERSION_VARIABLE = "github.com/open-policy-agent/regal/pkg/version.Version"

#: versitygw, an S3-compatible gateway over a POSIX directory.
VERSITYGW_MODULE = "github.com/versity/versitygw"
VERSITYGW_PACKAGE = "cmd/versitygw"
VERSITYGW_VERSION = "v1.8.0"
VERSITYGW_VERSION_VARIABLE = "main.Version"

#: Stripe's Smokescreen egress proxy: a benchmark contender only, not part of the default install.
SMOKESCREEN_MODULE = "github.com/stripe/smokescreen"
SMOKESCREEN_VERSION = "v0.1.0"

#: JupyterHub's proxy, from the npm registry.
CHP_PACKAGE = "configurable-http-proxy"
CHP_VERSION = "5.3.0"
