"""``infracalc up`` and ``infracalc down``: the whole platform on one machine, on embedded defaults.

The supervisor (the ``up`` process) starts each server as a child in its own process group, waits
until each is healthy, writes ``.infracalc/stack.json`` for people and tests, and stops every
child when it receives Ctrl-C or SIGTERM, or when one child dies. ``up --detach`` runs the same
supervisor in the background; ``down`` sends it SIGTERM and waits until it is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from infracalc.config import StackSettings, ToolSettings
from infracalc.errors import InfracalcError
from infracalc.identity import DemoAccount, proxy_secret, write_realm_import
from infracalc.mail import MailSettings
from infracalc.proxy.authority import CERT_NAME, create_authority
from infracalc.stack import records
from infracalc.stack.keycloak import keycloak_spec
from infracalc.stack.ports import ensure_ports_free
from infracalc.stack.process import ManagedProcess, ServerSpec, tail
from infracalc.stack.secrets import LocalSecrets
from infracalc.stack.servers import egress_proxy_spec, hub_spec, mailbox_spec, opa_spec, s3_spec, service_spec
from infracalc.tools import Tools, install

Report = Callable[[str], None]

KEYCLOAK_ADMIN_USERNAME = "admin"
REALM = "infracalc"
#: The sender of the local stack's e-mails (they never leave the machine: see :mod:`infracalc.stack.mailbox`).
LOCAL_MAIL_SENDER = "infracalc@infracalc.localhost"


class StackError(InfracalcError):
    """The local stack cannot be started or stopped as asked."""


class _Stop(Exception):
    """Raised inside the supervisor by SIGINT or SIGTERM."""


class StackLayout:
    """Where a local stack keeps its files under ``INFRACALC_HOME``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.stack_json = home / "stack.json"
        self.secrets_json = home / "secrets.json"
        self.pid_file = home / "up.pid"
        #: One record per running server (:mod:`infracalc.stack.records`): how ``down`` finds them without a supervisor.
        self.servers = home / records.FOLDER
        self.logs = home / "logs"
        self.keycloak_data = home / "keycloak"
        self.realm_import = home / "keycloak-import"
        self.s3_data = home / "s3"
        self.mailbox = home / "mailbox"
        #: The egress proxy's forwarded socket, where the hub's forwarders hand bubbles' connections over.
        self.egress_forwarded_socket = home / "egress-forwarded.sock"
        #: The egress CA (made at the first start; its key stays here, mode 0600) and what bubbles get of it.
        self.egress_ca = home / "egress-ca"
        self.egress_ca_public = home / "egress-ca-public"

    def supervisor_pid(self) -> int | None:
        """The pid of a running ``up`` supervisor, or ``None`` (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid


def local_mail(settings: StackSettings) -> MailSettings:
    """How the service and Keycloak send e-mail in the local stack: to its mailbox, plain SMTP on loopback."""
    return MailSettings(host=settings.host, port=settings.mailbox_smtp_port, sender=LOCAL_MAIL_SENDER, starttls=False)


def server_specs(settings: StackSettings, tools: Tools, layout: StackLayout, local: LocalSecrets) -> list[ServerSpec]:
    """Every server of the local stack, in start order (each waits for the ones before it to be healthy)."""
    host = settings.host
    mail = local_mail(settings)
    forwarded_socket = layout.egress_forwarded_socket
    return [
        mailbox_spec(
            host=host, smtp_port=settings.mailbox_smtp_port, web_port=settings.mailbox_port, directory=layout.mailbox
        ),
        opa_spec(tools.opa, host=host, port=settings.opa_port, policies_dir=settings.policies_dir),
        s3_spec(
            tools.versitygw,
            host=host,
            port=settings.s3_port,
            data_dir=layout.s3_data,
            access_key=local.s3_access_key,
            secret_key=local.s3_secret_key,
        ),
        keycloak_spec(
            tools.keycloak_home,
            tools.java_home,
            host=host,
            port=settings.keycloak_port,
            management_port=settings.keycloak_management_port,
            database="dev-file",
            data_dir=layout.keycloak_data,
            import_dir=layout.realm_import,
            admin_username=KEYCLOAK_ADMIN_USERNAME,
            admin_password=local.keycloak_admin_password,
        ),
        # Last: its readiness needs the database, OPA, S3 and Keycloak's keys.
        service_spec(
            host=host,
            port=settings.service_port,
            env={
                "INFRACALC_HOME": str(settings.home),
                "INFRACALC_OPA_URL": f"http://{host}:{settings.opa_port}",
                "INFRACALC_KEYCLOAK_URL": f"http://{host}:{settings.keycloak_port}",
                "INFRACALC_S3_ENDPOINT_URL": f"http://{host}:{settings.s3_port}",
                "INFRACALC_S3_ACCESS_KEY": local.s3_access_key,
                "INFRACALC_S3_SECRET_KEY": local.s3_secret_key,
                "INFRACALC_API_CLIENT_SECRET": local.realm.api_client_secret,
                "INFRACALC_WEB_CLIENT_SECRET": local.realm.web_client_secret,
                "INFRACALC_HUB_URL": settings.hub_url,
                # The service stops the hub's servers of the bubbles it revokes.
                "INFRACALC_HUB_API_URL": f"http://{host}:{settings.hub_api_port}/hub/api",
                "INFRACALC_HUB_API_TOKEN": local.hub_service_token,
                "INFRACALC_EGRESS_PROXY_SECRET_SHA256": proxy_secret.digest(local.egress_proxy_secret),
                "INFRACALC_DEMO_MEMBERS": demo_members(local.accounts),
                "INFRACALC_SMTP_HOST": mail.host,
                "INFRACALC_SMTP_PORT": str(mail.port),
                "INFRACALC_SMTP_FROM": mail.sender,
                "INFRACALC_SMTP_STARTTLS": "false",
            },
        ),
        # After the service, which records every decision it makes.
        egress_proxy_spec(
            host=host,
            port=settings.egress_proxy_port,
            metrics_port=settings.egress_metrics_port,
            env={
                "INFRACALC_OPA_URL": f"http://{host}:{settings.opa_port}",
                "INFRACALC_SERVICE_URL": settings.service_url,
                "INFRACALC_EGRESS_PROXY_SECRET": local.egress_proxy_secret,
                # The hub's forwarders hand bubbles' connections over here, with each bubble's address.
                "INFRACALC_EGRESS_FORWARDED_SOCKET": str(forwarded_socket),
                "INFRACALC_EGRESS_CA_DIR": str(layout.egress_ca),
                "INFRACALC_EGRESS_CA_PUBLIC_DIR": str(layout.egress_ca_public),
            },
        ),
        # Last: the door. Its bubbles need the service and the egress proxy.
        hub_spec(
            config=settings.hub_config,
            data_dir=layout.home / "hub",
            host=host,
            port=settings.hub_port,
            chp=tools.configurable_http_proxy,
            env={
                "INFRACALC_KEYCLOAK_URL": f"http://{host}:{settings.keycloak_port}",
                "INFRACALC_HUB_URL": settings.hub_url,
                "INFRACALC_HUB_API_PORT": str(settings.hub_api_port),
                "INFRACALC_CHP_API_PORT": str(settings.chp_api_port),
                "INFRACALC_SERVICE_URL": settings.service_url,
                "INFRACALC_WEB_URL": settings.service_url,
                "INFRACALC_OPA_URL": f"http://{host}:{settings.opa_port}",
                "INFRACALC_EGRESS_PROXY_URL": settings.egress_proxy_url,
                "INFRACALC_EGRESS_FORWARDED_SOCKET": str(forwarded_socket),
                # Bubbles trust the egress CA: the certificate the proxy published (the hub never reads
                # the key's directory), from which the spawner builds their bundle.
                "INFRACALC_EGRESS_CA_CERT": str(layout.egress_ca_public / CERT_NAME),
                "INFRACALC_JUPYTERHUB_CLIENT_SECRET": local.realm.jupyterhub_client_secret,
                "JUPYTERHUB_CRYPT_KEY": local.hub_crypt_key,
                "INFRACALC_HUB_SERVICE_TOKEN": local.hub_service_token,
            },
        ),
    ]


def demo_members(accounts: Sequence[DemoAccount]) -> str:
    """``INFRACALC_DEMO_MEMBERS`` for the demo accounts: leads lead the demo project, researchers are members."""
    roles = {"project-lead": "lead", "researcher": "member"}
    return ",".join(
        f"{account.username}:{role}"
        for account in accounts
        for realm_role, role in roles.items()
        if realm_role in account.roles
    )


def stack_description(settings: StackSettings, layout: StackLayout, local: LocalSecrets) -> dict[str, Any]:
    """The content of ``stack.json``: every URL the stack serves and the demo accounts."""
    keycloak = f"http://{settings.host}:{settings.keycloak_port}"
    return {
        "status": "running",
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "urls": {
            "keycloak": keycloak,
            "keycloak_admin_console": f"{keycloak}/admin/master/console/",
            "account_console": f"{keycloak}/realms/{REALM}/account/",
            "oidc_issuer": f"{keycloak}/realms/{REALM}",
            "opa": f"http://{settings.host}:{settings.opa_port}",
            "s3": f"http://{settings.host}:{settings.s3_port}",
            "service": settings.service_url,
            "api": f"{settings.service_url}/api/v1",
            "openapi": f"{settings.service_url}/schema",
            "hub": settings.hub_url,
            "egress_proxy": settings.egress_proxy_url,
            "egress_metrics": f"http://{settings.host}:{settings.egress_metrics_port}/metrics",
            "mailbox": settings.mailbox_url,
        },
        "keycloak_admin": {"username": KEYCLOAK_ADMIN_USERNAME, "password": local.keycloak_admin_password},
        "s3": {"access_key": local.s3_access_key, "secret_key": local.s3_secret_key, "region": "us-east-1"},
        "accounts": [
            {
                "username": account.username,
                "password": account.password,
                "totp_secret": account.totp_secret,
                "otpauth_uri": account.otpauth_uri(),
                "roles": list(account.roles),
                "email": account.email,
            }
            for account in local.accounts
        ],
        "logs": str(layout.logs),
        "stack_json": str(layout.stack_json),
    }


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`_Stop` for the duration of the block."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def login_instructions(description: dict[str, Any]) -> str:
    """What ``up`` prints once the stack is healthy: where to go and how to sign in."""
    lines = [
        "",
        "INFRACALC is up. Sign in to Keycloak's account console:",
        f"  {description['urls']['account_console']}",
        "with one of the demo accounts below: the password, then the 6-digit code of an authenticator app",
        "to which you added the TOTP secret (type the base32 secret, or open the otpauth:// URI).",
        "",
    ]
    for account in description["accounts"]:
        lines += [
            f"  {account['username']:<8} roles: {', '.join(account['roles'])}",
            f"           password:    {account['password']}",
            f"           TOTP secret: {account['totp_secret']}",
        ]
    lines += [
        "",
        "From a terminal, `infracalc login` signs you in for `infracalc import` and `infracalc token`.",
        f"E-mails (invitations, Keycloak's links) land in the local mailbox: {description['urls']['mailbox']}.",
        f"Every URL and credential is in {description['stack_json']}.",
        "Stop with Ctrl-C (or `infracalc down` for a detached stack).",
    ]
    return "\n".join(lines)


def run_up(settings: StackSettings, tool_settings: ToolSettings, report: Report = print) -> None:
    """Start the local stack and supervise it until a signal or a child's death; then stop everything.

    Raises:
        StackError: another supervisor runs on the same ``INFRACALC_HOME``, or a server died.
        PortInUse: a port is taken (the message names the setting that changes it).
        ServerFailed: a server did not become healthy.
    """
    layout = StackLayout(settings.home)
    running = layout.supervisor_pid()
    if running is not None and running != os.getpid():
        raise StackError(f"a stack already runs from {settings.home} (pid {running}); stop it with `infracalc down`")
    _stop_strays(layout, report)
    ensure_ports_free(settings.host, settings.ports())
    tools = install(tool_settings, report=lambda line: report(f"  tools: {line}"))
    layout.home.mkdir(parents=True, exist_ok=True)
    children: list[ManagedProcess] = []
    try:
        _write_private(layout.pid_file, str(os.getpid()))
        local = LocalSecrets.load_or_create(layout.secrets_json, hub_url=settings.hub_url, web_url=settings.service_url)
        write_realm_import(layout.realm_import, local.realm, local.accounts, local_mail(settings))
        if not (layout.egress_ca / CERT_NAME).exists():
            create_authority(layout.egress_ca, name="INFRACALC egress CA (local stack)")
        with _stop_on_signals():
            for spec in server_specs(settings, tools, layout, local):
                child = ManagedProcess(spec, layout.logs / f"{spec.name}.log")
                child.start()
                children.append(child)
                if child.pid is not None:
                    records.record(layout.servers, spec.name, child.pid, spec.argv)
            for child in children:
                report(f"  {child.spec.name}: starting (log: {child.log_path})")
                seconds = child.wait_healthy()
                report(f"  {child.spec.name}: healthy after {seconds:.1f} s at {child.spec.health_url}")
            description = stack_description(settings, layout, local)
            _write_private(layout.stack_json, json.dumps(description, indent=2))
            report(login_instructions(description))
            while True:
                for child in children:
                    if not child.running():
                        raise StackError(
                            f"{child.spec.name} stopped unexpectedly; last lines of {child.log_path}:\n"
                            f"{tail(child.log_path)}"
                        )
                time.sleep(0.5)
    except _Stop as stop:
        report(f"received {stop}, stopping ...")
    finally:
        # A second Ctrl-C or SIGTERM must not interrupt the shutdown and orphan a server.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        for child in reversed(children):
            child.stop()
            records.forget(layout.servers, child.spec.name)
        for sig, old in previous.items():
            signal.signal(sig, old)
        with contextlib.suppress(FileNotFoundError):
            layout.stack_json.unlink()
        with contextlib.suppress(FileNotFoundError):
            layout.pid_file.unlink()
    report("stopped.")


def _stop_strays(layout: StackLayout, report: Report) -> bool:
    """Stop the servers of this home left running by a supervisor that died; whether there were any."""
    found = records.strays(layout.servers)
    if not found:
        return False
    report(
        f"the supervisor of the stack in {layout.home} is gone, but {len(found)} of its servers still run: "
        f"{', '.join(str(entry) for entry in found)}; stopping them ..."
    )
    records.stop_strays(layout.servers, found)
    with contextlib.suppress(FileNotFoundError):
        layout.stack_json.unlink()
    with contextlib.suppress(FileNotFoundError):
        layout.pid_file.unlink()
    return True


def run_detached(settings: StackSettings, report: Report = print, timeout: float = 600.0) -> int:
    """Start ``infracalc up`` in the background; return its pid once ``stack.json`` says it is running.

    Raises:
        StackError: the background supervisor exited, or did not get ready in ``timeout`` seconds.
    """
    layout = StackLayout(settings.home)
    running = layout.supervisor_pid()
    if running is not None:
        raise StackError(f"a stack already runs from {settings.home} (pid {running})")
    layout.logs.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        layout.stack_json.unlink()
    log_path = layout.logs / "up.log"
    with log_path.open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "infracalc", "up"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    report(f"starting the stack in the background (pid {supervisor.pid}, log: {log_path}) ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            raise StackError(f"the stack failed to start; last lines of {log_path}:\n{tail(log_path)}")
        if layout.stack_json.is_file():
            description = json.loads(layout.stack_json.read_text())
            report(login_instructions(description))
            return supervisor.pid
        time.sleep(0.5)
    os.killpg(supervisor.pid, signal.SIGTERM)
    raise StackError(f"the stack was not ready after {timeout:.0f} s; see {log_path}")


def run_down(settings: StackSettings, report: Report = print, timeout: float = 90.0) -> bool:
    """Stop the stack running from ``settings.home``; return whether there was one.

    Raises:
        StackError: the supervisor did not exit in ``timeout`` seconds.
    """
    layout = StackLayout(settings.home)
    pid = layout.supervisor_pid()
    if pid is None:
        if _stop_strays(layout, report):
            report("stopped.")
            return True
        report(f"no stack is running from {settings.home}")
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            report("stopped.")
            return True
        time.sleep(0.25)
    raise StackError(f"the stack (pid {pid}) did not stop within {timeout:.0f} s")
