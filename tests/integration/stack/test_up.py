"""``infracalc up`` and ``down`` on real servers: health, ``stack.json``, clean stop, clear port errors."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psutil
import pyotp
import pytest
import requests

from infracalc.config import StackSettings
from infracalc.stack import records
from infracalc.stack.ports import free_port
from infracalc.tools import Tools
from tests.support.hub_browser import HubApi, HubBrowser, run_code
from tests.support.oidc_browser import ClientRedirect, KeycloakPage, OidcBrowser

pytestmark = pytest.mark.integration

START_TIMEOUT = 420.0


@pytest.fixture(scope="module")
def stack_env(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for an `infracalc up` of its own: a fresh home and free ports (shared by this module)."""
    home = tmp_path_factory.mktemp("stack-home")
    env = {
        **os.environ,
        "INFRACALC_HOME": str(home),
        "INFRACALC_TOOLS_DIR": str(tools.root),
        "INFRACALC_JAVA_HOME": str(tools.java_home),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    # Every port the stack binds, so that a stack of the developer's own (on the defaults) never clashes.
    for setting in StackSettings.PORT_SETTINGS.values():
        env[setting] = str(free_port())
    return env


def stack_json(env: dict[str, str]) -> Path:
    return Path(env["INFRACALC_HOME"]) / "stack.json"


def infracalc(env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infracalc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_stack(env: dict[str, str], supervisor: subprocess.Popen[str]) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            output = supervisor.stdout.read() if supervisor.stdout else ""
            pytest.fail(f"infracalc up exited with {supervisor.returncode}:\n{output}")
        if stack_json(env).is_file():
            description: dict[str, Any] = json.loads(stack_json(env).read_text())
            return description
        time.sleep(0.5)
    pytest.fail("infracalc up did not write stack.json in time")


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _gone, alive = psutil.wait_procs(processes, timeout=30)
    assert alive == [], f"left running: {[(p.pid, p.name()) for p in alive]}"


def assert_stack_serves(description: dict[str, Any]) -> None:
    urls = description["urls"]
    assert requests.get(f"{urls['opa']}/health", timeout=5).status_code == 200
    assert requests.get(f"{urls['s3']}/health", timeout=5).status_code == 200
    issuer = requests.get(f"{urls['oidc_issuer']}/.well-known/openid-configuration", timeout=5).json()["issuer"]
    assert issuer == urls["oidc_issuer"]
    ready = requests.get(f"{urls['service']}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert requests.get(f"{urls['api']}/projects", timeout=5).status_code == 401  # the API wants a token


@pytest.fixture
def foreground(stack_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "infracalc", "up"],
        env=stack_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    yield supervisor
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=120)


def test_up_serves_everything_and_ctrl_c_leaves_nothing(
    stack_env: dict[str, str], foreground: subprocess.Popen[str]
) -> None:
    description = wait_for_stack(stack_env, foreground)
    assert_stack_serves(description)
    assert stat.S_IMODE(stack_json(stack_env).stat().st_mode) == 0o600
    children = psutil.Process(foreground.pid).children(recursive=True)
    names = " ".join(" ".join(child.cmdline()) for child in children)
    for server in ("opa", "versitygw", "keycloak", "infracalc serve"):
        assert server in names

    foreground.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output, _ = foreground.communicate(timeout=120)
    assert foreground.returncode == 0, output
    assert_all_gone(children)
    assert not stack_json(stack_env).exists()
    assert "keycloak: healthy after" in output
    assert "opa: healthy after" in output
    assert "s3: healthy after" in output
    assert "service: healthy after" in output
    assert "stopped." in output


def test_stack_json_lists_demo_accounts_with_working_totp(stack_env: dict[str, str]) -> None:
    result = infracalc(stack_env, "up", "--detach", timeout=START_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    secrets_file = Path(stack_env["INFRACALC_HOME"]) / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    description = json.loads(stack_json(stack_env).read_text())
    try:
        roles = {account["username"]: account["roles"] for account in description["accounts"]}
        assert set(roles) == {"alice", "bruno", "claire"}
        assert "casd-staff" in roles["claire"]
        for account in description["accounts"]:
            parsed = pyotp.parse_uri(account["otpauth_uri"])
            assert parsed.secret == account["totp_secret"]
            assert parsed.now() == pyotp.TOTP(account["totp_secret"]).now()
            assert account["password"] in result.stdout  # printed with the login instructions
        sign_in_to_account_console(description, description["accounts"][0])
        keycloak_mails_reach_the_local_mailbox(description, description["accounts"][0])
        lead = next(account for account in description["accounts"] if account["username"] == "bruno")
        open_the_demo_bubble(description, lead)
    finally:
        supervisor = psutil.Process(description["pid"])
        children = supervisor.children(recursive=True)
        down = infracalc(stack_env, "down")
        assert down.returncode == 0, down.stderr
        assert_all_gone([supervisor, *children])
    assert not stack_json(stack_env).exists()
    assert "no stack is running" in infracalc(stack_env, "down").stdout


def sign_in_to_account_console(description: dict[str, Any], account: dict[str, Any]) -> None:
    """What the README tells a person to do: password, then the authenticator's code, in the account console."""
    browser = OidcBrowser(
        description["urls"]["keycloak"],
        "infracalc",
        client_id="account-console",
        client_secret="",
        redirect_uri=description["urls"]["account_console"],
        acr_values=None,  # the account console asks for nothing: the realm's flow must still demand OTP
    )
    after_password = browser.submit_password(browser.start(), account["username"], account["password"])
    assert isinstance(after_password, KeycloakPage), "a password alone opened the account console"
    assert after_password.kind == "otp", after_password.describe()
    after_otp = browser.submit_otp(after_password, pyotp.TOTP(account["totp_secret"]).now())
    assert isinstance(after_otp, ClientRedirect), after_otp.describe()
    code = after_otp.code
    assert code is not None
    tokens = browser.exchange(code)
    claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
    assert claims["preferred_username"] == account["username"]


def keycloak_mails_reach_the_local_mailbox(description: dict[str, Any], account: dict[str, Any]) -> None:
    """Enrollment needs Keycloak's e-mail (its link to set a password and TOTP): the realm sends it to the mailbox."""
    keycloak, admin = description["urls"]["keycloak"], description["keycloak_admin"]
    token = requests.post(
        f"{keycloak}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", **admin},
        timeout=30,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    users = f"{keycloak}/admin/realms/infracalc/users"
    (user,) = requests.get(
        users, params={"username": account["username"], "exact": "true"}, headers=headers, timeout=30
    ).json()
    sent = requests.put(
        f"{users}/{user['id']}/execute-actions-email", json=["UPDATE_PASSWORD"], headers=headers, timeout=30
    )
    assert sent.status_code == 204, sent.text
    mailbox = description["urls"]["mailbox"]
    listing = requests.get(f"{mailbox}/", timeout=10).text
    assert account["email"] in listing
    (name,) = re.findall(r'href="/messages/([^"]+)"', listing)
    message = requests.get(f"{mailbox}/messages/{name}", timeout=10).text
    assert f"{keycloak}/realms/infracalc/login-actions/action-token?key=" in html.unescape(message)


def open_the_demo_bubble(description: dict[str, Any], account: dict[str, Any]) -> None:
    """The issue's "done when": sign in to the hub with both factors and start a bubble, with nothing set up by hand."""
    hub_url = description["urls"]["hub"]
    browser = HubBrowser(hub_url, description["urls"]["keycloak"])
    page = browser.login(account["username"], account["password"], pyotp.TOTP(account["totp_secret"]).now())
    assert page.status == 200, (page.url, page.text[:500])
    assert browser.signed_in()
    username = account["username"]
    token = browser.api_token(username)
    hub = HubApi(hub_url, token)
    started = hub.start(username, "demo")
    assert started.status_code in (201, 202), started.text
    hub.wait_ready(username, "demo")
    project = run_code(f"{hub_url}/user/{username}/demo", token, "import os; print(os.environ['INFRACALC_PROJECT'])")
    assert project.strip() == "demo"
    assert hub.stop(username, "demo").status_code in (202, 204)
    hub.wait_stopped(username, "demo")


def test_port_in_use_is_named_with_its_setting(stack_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = infracalc({**stack_env, "INFRACALC_OPA_PORT": str(port)}, "up")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use; stop what holds it or choose another port "
        f"with INFRACALC_OPA_PORT=<port>"
    )
    assert not stack_json(stack_env).exists()


def test_a_supervisor_killed_with_sigkill_leaves_servers_that_down_stops(stack_env: dict[str, str]) -> None:
    try:
        result = infracalc(stack_env, "up", "--detach", timeout=START_TIMEOUT)
        assert result.returncode == 0, result.stdout + result.stderr
        description = json.loads(stack_json(stack_env).read_text())
        supervisor = psutil.Process(description["pid"])
        servers = supervisor.children(recursive=True)
        supervisor.kill()  # SIGKILL: it stops nothing
        supervisor.wait(timeout=30)
        assert all(server.is_running() for server in servers)
        assert requests.get(f"{description['urls']['opa']}/health", timeout=5).status_code == 200

        down = infracalc(stack_env, "down")

        assert down.returncode == 0, down.stderr
        assert "its servers still run" in down.stdout
        for name in ("keycloak", "opa", "s3", "service", "egress-proxy", "jupyterhub", "mailbox"):
            assert f"{name} (pid " in down.stdout, down.stdout
        assert_all_gone(servers)
        for url in (description["urls"]["opa"], description["urls"]["service"], description["urls"]["keycloak"]):
            with pytest.raises(requests.ConnectionError):
                requests.get(url, timeout=5)
        assert not list((Path(stack_env["INFRACALC_HOME"]) / "servers").glob("*.json"))
    finally:
        # Whatever failed above (a start too slow included), nothing of this stack is left for the next test.
        last = infracalc(stack_env, "down")
    assert "no stack is running" in last.stdout


def test_up_stops_stray_servers_of_its_home_before_anything_else(stack_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    stray = subprocess.Popen(["sleep", "600"], start_new_session=True)
    records.record(home / records.FOLDER, "opa", stray.pid, ["sleep", "600"])
    with socket.socket() as squatter:  # up stops at the port check, after dealing with strays
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = {**stack_env, "INFRACALC_HOME": str(home), "INFRACALC_OPA_PORT": str(squatter.getsockname()[1])}
        result = infracalc(env, "up")
    assert f"its servers still run: opa (pid {stray.pid}); stopping them" in result.stdout
    assert stray.wait(timeout=30) == -signal.SIGTERM
    assert result.returncode == 1  # the port, then
