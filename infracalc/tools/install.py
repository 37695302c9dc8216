"""Fetch the pinned servers and linters into ``.tools/``, once.

Every download goes through a registry's own client so that its cache outlives a fresh clone:
Maven's local repository for Keycloak, Go's module and build caches for OPA, Regal and
versitygw, npm's cache for configurable-http-proxy. Running :func:`install` again is cheap: a
tool whose pinned version is already in place is left alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infracalc.config import ToolSettings
from infracalc.errors import InfracalcError
from infracalc.tools import versions

#: Where Debian-based machines of this project keep a Java 25 JDK, preferred for Keycloak.
TEMURIN_25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64")

#: How to get each prerequisite program, for the one message a missing one deserves.
HOW_TO_GET = {
    "java": "install a JDK 21 or newer (Debian: apt-get install openjdk-21-jdk-headless, or Temurin 25), "
    "or point INFRACALC_JAVA_HOME at one",
    "mvn": "install Apache Maven (Debian: apt-get install maven)",
    "go": "install Go 1.25 or newer (Debian backports: apt-get install golang, or the official tarball)",
    "npm": "install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)",
}

Report = Callable[[str], None]


class ToolError(InfracalcError):
    """A tool could not be installed or found."""


class MissingPrerequisite(ToolError):
    """A program the installer needs (java, mvn, go, npm) is not on this machine."""

    def __init__(self, program: str, detail: str = "") -> None:
        self.program = program
        super().__init__(f"{program} is required{detail}: {HOW_TO_GET[program]}")


@dataclass(frozen=True, slots=True)
class Tools:
    """Paths of the installed tools; building one does not check that they exist (see :meth:`missing`)."""

    root: Path
    java_home: Path

    @property
    def keycloak_home(self) -> Path:
        """The unpacked Keycloak distribution."""
        return self.root / f"keycloak-{versions.KEYCLOAK_VERSION}"

    @property
    def bin_dir(self) -> Path:
        """Where the Go-built binaries go."""
        return self.root / "bin"

    @property
    def opa(self) -> Path:
        """The ``opa`` binary."""
        return self.bin_dir / "opa"

    @property
    def regal(self) -> Path:
        """The ``regal`` binary."""
        return self.bin_dir / "regal"

    @property
    def versitygw(self) -> Path:
        """The ``versitygw`` binary."""
        return self.bin_dir / "versitygw"

    @property
    def smokescreen(self) -> Path:
        """Stripe's ``smokescreen`` egress proxy, for benchmarks only (see :func:`install_smokescreen`)."""
        return self.bin_dir / "smokescreen"

    @property
    def configurable_http_proxy(self) -> Path:
        """JupyterHub's proxy, as installed by npm."""
        return self.root / "node" / "node_modules" / ".bin" / "configurable-http-proxy"

    def missing(self) -> list[str]:
        """Names of the tools whose pinned version is not installed."""
        checks = {
            "keycloak": (self.keycloak_home / "bin" / "kc.sh").is_file(),
            "opa": _stamp_matches(self.opa, versions.OPA_VERSION),
            "regal": _stamp_matches(self.regal, versions.REGAL_VERSION),
            "versitygw": _stamp_matches(self.versitygw, versions.VERSITYGW_VERSION),
            "configurable-http-proxy": _npm_version(self.root / "node", versions.CHP_PACKAGE) == versions.CHP_VERSION,
        }
        return [name for name, present in checks.items() if not present]


def locate(settings: ToolSettings) -> Tools:
    """The tool paths for ``settings``, with the Java that will run Keycloak.

    Raises:
        MissingPrerequisite: no Java recent enough for the pinned Keycloak was found.
    """
    return Tools(root=settings.tools_dir, java_home=find_java_home(settings))


def install(settings: ToolSettings, report: Report = print) -> Tools:
    """Install every pinned tool that is missing, and return where they are.

    Raises:
        MissingPrerequisite: java, mvn, go or npm is missing.
        ToolError: a download or build failed; the message carries the command's output.
    """
    tools = locate(settings)
    missing = tools.missing()
    needed = {"keycloak": "mvn", "opa": "go", "regal": "go", "versitygw": "go", "configurable-http-proxy": "npm"}
    for program in sorted({needed[name] for name in missing}):
        if shutil.which(program) is None:
            raise MissingPrerequisite(program)
    tools.root.mkdir(parents=True, exist_ok=True)
    steps: dict[str, Callable[[], None]] = {
        "keycloak": lambda: _install_keycloak(tools),
        "opa": lambda: _go_build(tools, versions.OPA_MODULE, versions.OPA_VERSION, ".", tools.opa),
        "regal": lambda: _go_build(
            tools,
            versions.REGAL_MODULE,
            versions.REGAL_VERSION,
            ".",
            tools.regal,
            version_variable=versions.REGAL_VERSION_VARIABLE,
        ),
        "versitygw": lambda: _go_build(
            tools,
            versions.VERSITYGW_MODULE,
            versions.VERSITYGW_VERSION,
            versions.VERSITYGW_PACKAGE,
            tools.versitygw,
            version_variable=versions.VERSITYGW_VERSION_VARIABLE,
        ),
        "configurable-http-proxy": lambda: _npm_install(tools, versions.CHP_PACKAGE, versions.CHP_VERSION),
    }
    for name, step in steps.items():
        if name in missing:
            report(f"installing {name} ...")
            step()
        report(f"{name}: ok")
    return tools


def install_smokescreen(settings: ToolSettings, report: Report = print) -> Tools:
    """Install Stripe's Smokescreen if its pinned version is missing, and return the tool paths.

    A benchmark contender for the egress proxy, not a server of the platform: :func:`install`
    leaves it out, so ``make test`` and ``infracalc up`` never build it.

    Raises:
        MissingPrerequisite: go is missing (or no Java for :func:`locate`).
        ToolError: the download or build failed; the message carries the command's output.
    """
    tools = locate(settings)
    if not _stamp_matches(tools.smokescreen, versions.SMOKESCREEN_VERSION):
        if shutil.which("go") is None:
            raise MissingPrerequisite("go")
        report("installing smokescreen ...")
        _go_build(tools, versions.SMOKESCREEN_MODULE, versions.SMOKESCREEN_VERSION, ".", tools.smokescreen)
    report("smokescreen: ok")
    return tools


def find_java_home(settings: ToolSettings) -> Path:
    """The JDK that runs Keycloak: ``INFRACALC_JAVA_HOME``, else Temurin 25, else the system Java.

    Raises:
        MissingPrerequisite: none of them is a Java recent enough for the pinned Keycloak.
    """
    candidates: list[Path] = []
    if settings.java_home is not None:
        candidates.append(settings.java_home)
    else:
        candidates.append(TEMURIN_25)
        system_java = shutil.which("java")
        if system_java:
            candidates.append(Path(system_java).resolve().parent.parent)
    seen: list[str] = []
    for home in candidates:
        major = java_major_version(home / "bin" / "java")
        if major is None:
            continue
        if major >= versions.KEYCLOAK_MIN_JAVA:
            return home
        seen.append(f"{home} is Java {major}")
    detail = f" (Keycloak {versions.KEYCLOAK_VERSION} needs Java {versions.KEYCLOAK_MIN_JAVA}+"
    detail += f"; {', '.join(seen)})" if seen else ")"
    raise MissingPrerequisite("java", detail)


def java_major_version(java: Path) -> int | None:
    """The major version printed by ``java -version``, or ``None`` when it cannot run."""
    if not java.is_file():
        return None
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older print "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise ToolError(f"{' '.join(argv)} failed with code {result.returncode}:\n" + "\n".join(output[-30:]))
    return result.stdout


def _install_keycloak(tools: Tools) -> None:
    """Fetch the Keycloak distribution through Maven (so ``~/.m2`` caches it) and unpack it."""
    artifact = f"org.keycloak:keycloak-quarkus-dist:{versions.KEYCLOAK_VERSION}:tar.gz"
    downloads = tools.root / "downloads"
    # dependency:copy resolves through the local repository (~/.m2), so a second clone downloads nothing.
    _run(
        [
            "mvn", "--batch-mode", "--quiet",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact={artifact}", f"-DoutputDirectory={downloads}", "-Dmdep.overWriteReleases=true",
        ]
    )  # fmt: skip
    archive = downloads / f"keycloak-quarkus-dist-{versions.KEYCLOAK_VERSION}.tar.gz"
    staging = tools.root / f".keycloak-{versions.KEYCLOAK_VERSION}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    # Unpack aside, then rename: an interrupted install never looks complete.
    (staging / f"keycloak-{versions.KEYCLOAK_VERSION}").rename(tools.keycloak_home)
    staging.rmdir()
    archive.unlink()


def _go_build(
    tools: Tools, module: str, version: str, package: str, binary: Path, *, version_variable: str | None = None
) -> None:
    """Build ``module/package`` at ``version`` from the Go module proxy into ``binary``.

    ``version_variable`` names the string variable a release build sets to the version (OPA's own
    module version needs none), so that the binary reports what it is.

    ``go mod download`` plus ``go build`` instead of ``go install module@version``: the latter also
    asks the proxy for the module's version list (to look for deprecations), which some proxies
    refuse for modules they do serve.
    """
    info = json.loads(_run(["go", "mod", "download", "-json", f"{module}@{version}"]))
    source = Path(info["Dir"])
    tools.bin_dir.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    ldflags = f"-X {version_variable}={version}" if version_variable else ""
    target = f"./{package}" if package != "." else "."
    _run(
        ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), target],
        cwd=source,
        env={"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"},
    )
    partial.rename(binary)
    _stamp_path(binary).write_text(version)


def _npm_install(tools: Tools, package: str, version: str) -> None:
    prefix = tools.root / "node"
    prefix.mkdir(parents=True, exist_ok=True)
    _run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"{package}@{version}"])


def _stamp_path(binary: Path) -> Path:
    return binary.with_name(f".{binary.name}.version")


def _stamp_matches(binary: Path, version: str) -> bool:
    stamp = _stamp_path(binary)
    return binary.is_file() and stamp.is_file() and stamp.read_text().strip() == version


def _npm_version(prefix: Path, package: str) -> str | None:
    manifest = prefix / "node_modules" / package / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None
    return str(version)
