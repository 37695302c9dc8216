"""How to run Keycloak for the local stack and the tests: ``kc.sh start-dev`` with the realm imported.

Keycloak 26's ``--import-realm`` takes no directory: it reads the ``*.json`` files directly in
``<kc.home.dir>/data/import`` (``ImportRealmMixin`` resolves that path from the ``kc.home.dir``
system property, which ``kc.sh`` sets to the directory above its own, symlinks resolved). Its data
directory (H2 files of ``dev-file``, ``tmp``, transaction logs) and its build output
(``lib/quarkus``, rewritten by the augmentation ``start-dev`` runs) also live under that home.

So each server gets an *instance home* under its ``data_dir``: ``bin/kc.sh``, ``lib/quarkus-run.jar``
and ``lib/quarkus/`` are copied (a few MB), the 170 MB of jars, ``conf``, ``providers`` and
``themes`` are symlinked to the distribution, and ``data/import`` is a symlink to ``import_dir``.
The distribution stays read-only, two servers (the tests' and ``infracalc up``'s) never write the
same build files, and the import directory is whatever the caller chose.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from infracalc.identity.realm import REALM_NAME
from infracalc.stack.process import ServerSpec

#: Heap cap: Keycloak's default takes a share of the machine's memory.
HEAP_OPTIONS = "-Xms64m -Xmx512m"
#: Start-up takes 30-90 s on two idle cores (a build pass runs first, then the import), and past
#: 240 s when other work keeps both cores busy (measured: 93 s of build and 136 s of start at a
#: load average of 10).
START_TIMEOUT = 480.0

_COPIED = ("bin/kc.sh", "lib/quarkus-run.jar")
_LINKED = ("conf", "lib/lib", "lib/app", "providers", "themes")
_MARKER = ".infracalc-keycloak-home"


def instance_home(keycloak_home: Path, data_dir: Path, import_dir: Path) -> Path:
    """Create (or refresh) the instance home of one Keycloak server under ``data_dir``; return it.

    The build output ``lib/quarkus`` is copied only when missing or when ``keycloak_home`` changed,
    so a server restarted with the same options skips most of the build.
    """
    keycloak_home = keycloak_home.resolve()
    home = data_dir.resolve() / "home"
    marker = home / _MARKER
    identity = f"{keycloak_home}\n{(keycloak_home / 'version.txt').read_text(errors='replace').strip()}\n"
    fresh_build = not marker.exists() or marker.read_text() != identity
    for relative in _COPIED:
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(keycloak_home / relative, target)
    for relative in _LINKED:
        _symlink(home / relative, keycloak_home / relative)
    if fresh_build or not (home / "lib" / "quarkus").is_dir():
        shutil.rmtree(home / "lib" / "quarkus", ignore_errors=True)
        shutil.copytree(keycloak_home / "lib" / "quarkus", home / "lib" / "quarkus")
    import_dir.mkdir(parents=True, exist_ok=True)
    (home / "data").mkdir(parents=True, exist_ok=True)
    _symlink(home / "data" / "import", import_dir.resolve())
    marker.write_text(identity)
    return home


def _symlink(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target, target_is_directory=target.is_dir())


def keycloak_spec(
    keycloak_home: Path,
    java_home: Path,
    *,
    host: str,
    port: int,
    management_port: int,
    database: Literal["dev-mem", "dev-file"],
    data_dir: Path,
    import_dir: Path,
    admin_username: str,
    admin_password: str,
) -> ServerSpec:
    """Keycloak in development mode on ``host:port``, importing the realm files of ``import_dir``.

    Side effect: prepares the instance home under ``data_dir`` (see the module documentation).
    ``dev-mem`` starts from an empty database every time; ``dev-file`` keeps its H2 files under
    ``data_dir`` and, like any ``--import-realm``, skips a realm that already exists.

    Args:
        keycloak_home: The unpacked ``keycloak-<version>`` distribution (left unchanged).
        java_home: A JDK Keycloak supports (21, or 25 from Keycloak 26.6).
        host: Address to listen on (loopback for local stacks).
        port: HTTP port.
        management_port: Port of the management interface (its default, 9000, clashes easily).
        database: ``dev-mem`` or ``dev-file``.
        data_dir: Where this server's instance home and data live.
        import_dir: Directory whose ``*.json`` realm files are imported at start.
        admin_username: Temporary bootstrap admin of the master realm.
        admin_password: Its password.
    """
    home = instance_home(keycloak_home, data_dir, import_dir)
    return ServerSpec(
        name="keycloak",
        argv=[
            str(home / "bin" / "kc.sh"),
            "start-dev",
            f"--http-host={host}",
            f"--http-port={port}",
            f"--http-management-port={management_port}",
            f"--db={database}",
            "--import-realm",
        ],
        env={
            "JAVA_HOME": str(java_home),
            "JAVA_OPTS_KC_HEAP": HEAP_OPTIONS,
            "KC_BOOTSTRAP_ADMIN_USERNAME": admin_username,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
        },
        cwd=home,
        health_url=f"http://{host}:{port}/realms/{REALM_NAME}/.well-known/openid-configuration",
        start_timeout=START_TIMEOUT,
    )
