"""The ``infracalc`` command line: a thin layer over the package's functions.

Every error INFRACALC raises on purpose is an :class:`~infracalc.errors.InfracalcError`; the CLI
prints its message (no traceback) and exits with status 1.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
import uvicorn

from infracalc.audit import AuditSettings, load_public_key, verify_database
from infracalc.config import StackSettings, ToolSettings
from infracalc.db import DatabaseSettings
from infracalc.errors import InfracalcError
from infracalc.import_client import upload_file
from infracalc.proxy.settings import ProxySettings
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from infracalc.stack.up import run_detached, run_down, run_up
from infracalc.tools import install, locate
from infracalc.workstation import (
    CredentialStore,
    DeviceAuthorization,
    LoginFailed,
    access_token,
    choose_realm,
    config_folder,
    sign_in,
    sign_out,
)

P = ParamSpec("P")
R = TypeVar("R")


def _clear_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print INFRACALC errors as one clear message and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InfracalcError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.version_option(package_name="infracalc")
def main() -> None:
    """INFRACALC: secure, API-enabled research computing."""


@main.group()
def tools() -> None:
    """The pinned external servers and linters (Keycloak, OPA, Regal, versitygw, configurable-http-proxy)."""


@tools.command("install")
@_clear_errors
def tools_install() -> None:
    """Install every pinned tool that is missing into INFRACALC_TOOLS_DIR (default .tools/)."""
    found = install(ToolSettings.from_env(), report=click.echo)
    click.echo(f"tools ready in {found.root} (Keycloak runs with {found.java_home})")


@tools.command("path")
@click.argument("tool", type=click.Choice(["keycloak", "opa", "regal", "versitygw", "configurable-http-proxy", "java"]))
@_clear_errors
def tools_path(tool: str) -> None:
    """Print where TOOL is installed (for scripts and the Makefile)."""
    found = locate(ToolSettings.from_env())
    paths = {
        "keycloak": found.keycloak_home,
        "opa": found.opa,
        "regal": found.regal,
        "versitygw": found.versitygw,
        "configurable-http-proxy": found.configurable_http_proxy,
        "java": found.java_home,
    }
    click.echo(str(paths[tool]))


@main.command()
@click.option("--detach", is_flag=True, help="Run the stack in the background; stop it with `infracalc down`.")
@_clear_errors
def up(detach: bool) -> None:
    """Start the whole platform on this machine, on embedded defaults, bound to 127.0.0.1."""
    settings = StackSettings.from_env()
    if detach:
        run_detached(settings, report=click.echo)
    else:
        run_up(settings, ToolSettings.from_env(), report=click.echo)


@main.command()
@_clear_errors
def down() -> None:
    """Stop a stack started with `infracalc up --detach` (or one running in another terminal)."""
    run_down(StackSettings.from_env(), report=click.echo)


@main.group()
def audit() -> None:
    """The sealed audit log of every state change."""


@audit.command("verify")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of the trusted checkpoint key (public or private); default: INFRACALC_AUDIT_KEY.",
)
@_clear_errors
def audit_verify(public_key: Path | None) -> None:
    """Recompute the audit log's hash chain and check its signed checkpoints.

    Reads INFRACALC_DATABASE_URL; exits 0 when the log is intact, 1 with the first bad sequence
    number and the problem when it is not.
    """
    key = load_public_key(public_key if public_key is not None else AuditSettings.from_env().key_path)
    report = asyncio.run(verify_database(DatabaseSettings.from_env(), key))
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@main.group()
def risk() -> None:
    """Colysée: the exports' disclosure risk learnt from the reviewers' decisions (CASD staff, on the service's host).

    Reads the service's settings: INFRACALC_DATABASE_URL, INFRACALC_S3_*, INFRACALC_AUDIT_KEY and
    INFRACALC_EXPORT_SAMPLE_RATE. Every change is audited in the name given by --by.
    """


def _by_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--by",
        "actor",
        default=getpass.getuser,
        show_default="your login",
        help="Who the audit log names (the CASD staff member acting).",
    )(command)


def _reason_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option("--reason", required=True, help="Why; it goes to the audit log.")(command)


@risk.command("train")
@_by_option
@click.option(
    "--medium",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="Probability from which the model says medium (a person looks before release).",
)
@click.option(
    "--high",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="Probability from which the model says high (two reviewers).",
)
@_clear_errors
def risk_train(actor: str, medium: float, high: float) -> None:
    """Train a model on every review so far (past 75 %, tested on the newest 25 %) and put it in shadow."""
    from infracalc import risk_commands  # noqa: PLC0415 - loads the database and S3 clients only when run

    async def run() -> None:
        async with risk_commands.collaborators() as found:
            record = await risk_commands.train(found, actor=actor, medium=medium, high=high, progress=click.echo)
        click.echo(f"model {record.id} (v{record.version}) trained and in shadow; sha256 {record.sha256}")
        for line in risk_commands.metric_lines(record.metrics):
            click.echo(f"  {line}")
        click.echo(f"promote it after comparing it in shadow: infracalc risk promote {record.id} --reason ...")

    if medium > high:
        raise click.BadParameter("--medium cannot be above --high")
    asyncio.run(run())


@risk.command("report")
@_clear_errors
def risk_report() -> None:
    """Print the models in force and in shadow with their measured figures, the recall bar and the history."""
    from infracalc import risk_commands  # noqa: PLC0415

    async def run() -> list[str]:
        async with risk_commands.collaborators() as found:
            return await risk_commands.report_lines(found)

    for line in asyncio.run(run()):
        click.echo(line)


@risk.command("promote")
@click.argument("model_id")
@_by_option
@_reason_option
@_clear_errors
def risk_promote(model_id: str, actor: str, reason: str) -> None:
    """Put the shadow model MODEL_ID in force once it has decided enough exports beside the one in force."""
    from infracalc import risk_commands  # noqa: PLC0415

    async def run() -> None:
        async with risk_commands.collaborators() as found:
            record = await risk_commands.promote(found, model_id, actor=actor, reason=reason)
        click.echo(f"model {record.id} (v{record.version}) is in force")

    asyncio.run(run())


@risk.command("retire")
@_by_option
@_reason_option
@_clear_errors
def risk_retire(actor: str, reason: str) -> None:
    """Take the model in force out of routing: the rules alone decide again."""
    from infracalc import risk_commands  # noqa: PLC0415

    async def run() -> str:
        async with risk_commands.collaborators() as found:
            return await risk_commands.retire(found, actor=actor, reason=reason)

    click.echo(f"model {asyncio.run(run())} retired: the rules alone decide")


@risk.command("bar")
@click.argument("recall")
@_by_option
@_reason_option
@_clear_errors
def risk_bar(recall: str, actor: str, reason: str) -> None:
    """Set the recall (0.5 to 1, or "off") a model must have measured before it may lower a level by one."""
    from infracalc import risk_commands  # noqa: PLC0415

    try:
        bar = None if recall.strip().lower() == "off" else float(recall)
    except ValueError:
        raise click.BadParameter(f"RECALL must be a number between 0.5 and 1, or off; got {recall!r}") from None

    async def run() -> None:
        async with risk_commands.collaborators() as found:
            await risk_commands.set_bar(found, bar, actor=actor, reason=reason)

    asyncio.run(run())
    click.echo("recall bar off: no model lowers a level" if bar is None else f"recall bar set to {bar:.0%}")


@main.command("egress-proxy")
@_clear_errors
def egress_proxy() -> None:
    """Run the egress proxy: the bubbles' only way out, asking OPA about every new connection.

    Settings come from the environment: INFRACALC_EGRESS_PROXY_HOST/PORT, INFRACALC_EGRESS_METRICS_PORT,
    INFRACALC_OPA_URL, INFRACALC_SERVICE_URL, INFRACALC_EGRESS_PROXY_SECRET (required) and the limits
    INFRACALC_EGRESS_* (see the settings reference, docs/reference/settings.md).
    """
    from infracalc.proxy import run  # noqa: PLC0415 - the service's commands need none of it

    run.main(ProxySettings.from_env())


@main.group("egress-ca")
def egress_ca() -> None:
    """The platform's egress CA, with which the egress proxy inspects HTTPS through inspect rules."""


@egress_ca.command("init")
@click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path), help="Where the CA goes."
)
@click.option(
    "--public-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write what bubbles may have here: the certificate and the bubble bundle (system CAs and it).",
)
@_clear_errors
def egress_ca_init(directory: Path, public_dir: Path | None) -> None:
    """Make the egress CA: DIR/ca-cert.pem (for bubbles) and DIR/ca-key.pem (mode 0600, the proxy's only).

    Never overwrites: to rotate, make a new one elsewhere (README, "The egress CA").
    """
    from infracalc.proxy.authority import create_authority, publish  # noqa: PLC0415 - the CA tool only

    files = create_authority(directory)
    click.echo(f"egress CA made: {files.cert_path} (give it to bubbles), {files.key_path} (the proxy's only, 0600)")
    if public_dir is not None:
        click.echo(f"bubble bundle: {publish(files, public_dir)}")


@main.command()
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="The address both servers bind.")
@click.option("--smtp-port", type=int, required=True, help="Where senders deliver (plain SMTP, no login).")
@click.option("--web-port", type=int, required=True, help="Where people read the messages.")
@_clear_errors
def mailbox(directory: Path, host: str, smtp_port: int, web_port: int) -> None:
    """Run the local stack's mailbox: SMTP in, every message kept in DIR and readable on a web page."""
    from infracalc.stack import mailbox as local_mailbox  # noqa: PLC0415 - only the local stack runs it

    asyncio.run(local_mailbox.serve(directory, host=host, smtp_port=smtp_port, web_port=web_port))


@main.command()
@_clear_errors
def serve() -> None:
    """Run the INFRACALC service (API and health routes) with uvicorn, one worker.

    Settings come from the environment: INFRACALC_HOST, INFRACALC_SERVICE_PORT, INFRACALC_DATABASE_URL,
    INFRACALC_OPA_URL, INFRACALC_KEYCLOAK_URL, INFRACALC_S3_* and INFRACALC_AUDIT_* (see the settings
    reference, docs/reference/settings.md).
    """
    settings = ServiceSettings.from_env()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False)


def _keycloak_url_option(command: Callable[P, R]) -> Callable[P, R]:
    """``--keycloak-url``, shared by the commands that sign in or need a person's token."""
    return click.option(
        "--keycloak-url",
        envvar="INFRACALC_KEYCLOAK_URL",
        show_envvar=True,
        help="Keycloak's URL (https://id.example.org). Default: the one you signed in to last, else the local"
        " stack's http://127.0.0.1:8080.",
    )(command)


def _store() -> CredentialStore:
    return CredentialStore(config_folder())


@main.command()
@_keycloak_url_option
@_clear_errors
def login(keycloak_url: str | None) -> None:
    """Sign in from this computer: open the page shown, in any browser, with your password and one-time code.

    Keeps the sign-in (a refresh token, never printed) in your configuration folder, readable by you only,
    for the commands that act in your name (`infracalc import`, `infracalc token`). It lasts as long as a
    Keycloak session: 30 minutes without use, 10 hours at most. `infracalc logout` ends it.
    """
    store = _store()
    realm = choose_realm(keycloak_url, store)

    def show(authorization: DeviceAuthorization) -> None:
        minutes = max(1, authorization.expires_in // 60)
        click.echo("To sign in to INFRACALC, open this page in a browser (on this computer or another one):")
        click.echo("")
        click.echo(f"    {authorization.verification_uri_complete}")
        click.echo("")
        click.echo(f"(or open {authorization.verification_uri} and type the code {authorization.user_code}),")
        click.echo("sign in with your password and one-time code, and grant access to INFRACALC CLI.")
        click.echo(f"Waiting (the code expires in {minutes} minutes; Ctrl-C cancels)...")

    try:
        signed_in = sign_in(realm, store, show)
    except KeyboardInterrupt:
        raise LoginFailed("sign-in cancelled; nothing was kept") from None
    credential = signed_in.credential
    click.echo(f"Signed in as {credential.username} (password and one-time code) at {realm.issuer}.")
    click.echo(f"The sign-in is kept in {store.path}, readable by you only; `infracalc logout` ends it.")
    if credential.expires_at is not None:
        click.echo(
            f"Unused, it lapses at {credential.expires_at.astimezone():%H:%M}; each command extends it, within"
            " Keycloak's session limit."
        )


@main.command()
@_keycloak_url_option
@_clear_errors
def logout(keycloak_url: str | None) -> None:
    """Sign out: revoke the kept sign-in at Keycloak and remove it from this computer."""
    store = _store()
    realm = choose_realm(keycloak_url, store)
    credential = sign_out(realm, store)
    if credential is None:
        click.echo(f"Not signed in to {realm.issuer}; nothing to do.")
    else:
        click.echo(f"Signed out: {credential.username}'s sign-in to {realm.issuer} is revoked and removed.")


@main.command()
@_keycloak_url_option
@_clear_errors
def token(keycloak_url: str | None) -> None:
    """Print a fresh access token (valid 5 minutes) from your sign-in, for scripts.

    For example: `curl -H "Authorization: Bearer $(infracalc token)" ...`. Never paste it anywhere else.
    """
    store = _store()
    fresh, _ = access_token(choose_realm(keycloak_url, store), store)
    click.echo(fresh)


@main.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--api",
    default=lambda: os.environ.get("INFRACALC_API_URL", "http://127.0.0.1:8001/api/v1"),
    show_default="INFRACALC_API_URL, else http://127.0.0.1:8001/api/v1",
    help="The service's API base URL.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="A file holding an access token (default: the INFRACALC_TOKEN variable, else your `infracalc login`).",
)
@_keycloak_url_option
@_clear_errors
def import_file(project: str, file: Path, api: str, token_file: Path | None, keycloak_url: str | None) -> None:
    """Import FILE into PROJECT: stream it to the service, then print the import's id and state.

    The file goes into quarantine; a small code file of a project under INFRACALC governance is
    released at once, anything else waits for CASD staff's review. Acts in your name: with the token
    of --token-file or INFRACALC_TOKEN when given, else with your sign-in (`infracalc login`).
    """
    #: ``INFRACALC_TOKEN``: an access token ``infracalc import`` uses instead of your sign-in (scripts).
    token = token_file.read_text().strip() if token_file is not None else os.environ.get("INFRACALC_TOKEN", "")
    if not token:
        store = _store()
        token, _ = access_token(choose_realm(keycloak_url, store), store)
    size = file.stat().st_size
    with click.progressbar(length=size, label=f"importing {file.name}", file=sys.stderr, show_pos=True) as bar:
        imported = upload_file(api, token, project, file, progress=bar.update)
    click.echo(f"{imported['id']} {imported['state']}")
    click.echo(f"  {imported['name']}: {imported['size']} bytes, sha256 {imported['sha256']}", err=True)
    click.echo(f"  {imported['routing']}", err=True)


@main.command("export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--justification", required=True, help="What the file holds and why it may leave (20 characters or more)."
)
@click.option(
    "--contributors",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file {"<row label>|<column name>": [values...]} for the dominance and p-ratio checks.',
)
@click.option("--new-version-of", "export_id", help="Submit FILE as a new version of this export (changes requested).")
@_clear_errors
def export(file: Path, justification: str, contributors: Path | None, export_id: str | None) -> None:
    """Submit FILE for export from inside a bubble: checked, then released or reviewed as governance requires.

    Reads INFRACALC_API_URL, INFRACALC_BUBBLE_TOKEN and INFRACALC_PROJECT (set by the hub in every bubble).
    Prints the export's id, its state and the checks' findings.
    """
    from infracalc.bubble.client import BubbleSettings  # noqa: PLC0415 - bubble only
    from infracalc.bubble.exports import bubble_project, progress_bar, submit_export  # noqa: PLC0415

    answer = submit_export(
        BubbleSettings.from_env(),
        bubble_project(),
        file,
        justification=justification,
        contributors=contributors,
        export_id=export_id,
        progress=progress_bar(lambda line: click.echo(line, err=True, nl=False)),
    )
    click.echo("", err=True)
    click.echo(f"export {answer['id']} (version {answer['current_version']}): {answer['state']}")
    click.echo(
        f"risk: {answer['risk_level']} ({answer['risk_score']:.2f}); reviewers needed: {answer['required_reviews']}"
    )
    for reason in answer.get("reasons", []):
        click.echo(f"  - {reason}")
