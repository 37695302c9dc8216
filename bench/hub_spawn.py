"""Sign-in to JupyterLab loaded in the browser, 20 concurrent spawns, and the bubbles' and hub's memory.

Runs the whole local stack (``infracalc up --detach`` in a temporary home, on free ports), makes a
project and 20 researchers in it, then:

- **sequential**: for each researcher, in headless Chromium (Debian's, driven by Playwright), sign in
  through Keycloak's forms (password, one-time code), open the project's spawn page, press Start, and
  wait until JupyterLab has drawn its launcher; the time from the first request to the launcher, p50
  and p90 over 20; the bubble's memory then (resident memory of its single-user process tree); then
  stop it;
- **concurrent**: the 20 researchers start their bubbles at once through the hub's API; each one's
  time from the start request until its JupyterLab page (``/lab``) is served (p50, p90), and the
  time until all are; the bubbles' memory then;
- **baselines**, in the same run: the bare single-user server (``jupyter_server``, what a bubble was
  before JupyterLab) and JupyterLab (``jupyter lab`` with the bubbles' configuration) started directly
  as plain processes (no hub, no namespace, no registration) until they answer: what Jupyter costs;
- **memory**: resident memory of the hub, its proxy (configurable-http-proxy) and the egress proxy
  at the end.

Needs root (bubbles get network namespaces), Debian's Chromium, and a machine where ``infracalc up``
works. Run from the repository root: ``.venv/bin/python bench/hub_spawn.py`` (about 8 minutes on two
cores).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests
from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infracalc.bubble import JUPYTER_CONFIG_DIR  # noqa: E402
from infracalc.identity import DemoAccount, new_account, user_representation  # noqa: E402
from infracalc.stack.ports import free_port  # noqa: E402
from infracalc.stack.secrets import LocalSecrets  # noqa: E402
from infracalc.stack.up import KEYCLOAK_ADMIN_USERNAME  # noqa: E402
from tests.support import jupyterlab  # noqa: E402
from tests.support.hub_browser import HubApi  # noqa: E402
from tests.support.oidc_browser import OidcBrowser  # noqa: E402

PROJECT = "bench"
#: A bubble's server, as the local spawner starts it (``infracalc.bubble.singleuser``) or as Jupyter names it.
SINGLE_USER = re.compile(r"jupyterhub-singleuser|infracalc\.bubble\.singleuser")
PORT_VARIABLES = (
    "INFRACALC_KEYCLOAK_PORT",
    "INFRACALC_KEYCLOAK_MANAGEMENT_PORT",
    "INFRACALC_OPA_PORT",
    "INFRACALC_S3_PORT",
    "INFRACALC_SERVICE_PORT",
    "INFRACALC_HUB_PORT",
    "INFRACALC_HUB_API_PORT",
    "INFRACALC_CHP_API_PORT",
    "INFRACALC_EGRESS_PROXY_PORT",
    "INFRACALC_EGRESS_METRICS_PORT",
    "INFRACALC_MAILBOX_SMTP_PORT",
    "INFRACALC_MAILBOX_PORT",
)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Stack:
    """The local stack, started detached in a temporary home."""

    def __init__(self, home: Path, first_port: int | None = None) -> None:
        self.env = {**os.environ, "INFRACALC_HOME": str(home)}
        if first_port is None:
            self.env.update({name: str(free_port()) for name in PORT_VARIABLES})
        else:
            self.env.update({name: str(first_port + index) for index, name in enumerate(PORT_VARIABLES)})
        self.home = home

    def up(self) -> dict[str, Any]:
        subprocess.run([sys.executable, "-m", "infracalc", "up", "--detach"], env=self.env, check=True, cwd=REPO)
        described: dict[str, Any] = json.loads((self.home / "stack.json").read_text())
        return described

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "infracalc", "down"], env=self.env, check=False, cwd=REPO)


class Realm:
    """What the bench needs of Keycloak: admin calls, new researchers, and sign-ins for API tokens."""

    def __init__(self, description: dict[str, Any], local: LocalSecrets) -> None:
        self.base_url = str(description["urls"]["keycloak"])
        self.hub_url = str(description["urls"]["hub"])
        self.local = local

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        form = {
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": KEYCLOAK_ADMIN_USERNAME,
            "password": self.local.keycloak_admin_password,
        }
        token_url = f"{self.base_url}/realms/master/protocol/openid-connect/token"
        token = requests.post(token_url, data=form, timeout=30).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(
            method, f"{self.base_url}/admin/realms/infracalc{path}", headers=headers, timeout=30, **kwargs
        )

    def add_researcher(self, index: int) -> DemoAccount:
        username = f"bench{index:02d}-{secrets.token_hex(3)}"
        account = new_account(secrets.SystemRandom(), username, ("researcher",), first_name="Bench", last_name=username)
        users = [user_representation(account)]
        self.admin("POST", "/partialImport", json={"ifResourceExists": "FAIL", "users": users}).raise_for_status()
        return account

    def api_token(self, account: DemoAccount) -> str:
        """An access token of ``account`` (password and one-time code, through the hub's client)."""
        browser = OidcBrowser(
            self.base_url,
            "infracalc",
            "jupyterhub",
            self.local.realm.jupyterhub_client_secret,
            f"{self.hub_url}/hub/oauth_callback",
        )
        return browser.login(account.username, account.password, account.totp().now()).tokens.access_token


#: What each baseline starts directly, the path that answers once it is up, and the server extensions it
#: leaves off (with JupyterLab installed, jupyter_server loads it too: the bare server must not).
BASELINES = {
    "bare single-user server (jupyter_server)": (["-m", "jupyter_server"], "/api", ("jupyterlab", "notebook_shim")),
    "JupyterLab (jupyter lab)": (["-m", "jupyter", "lab"], "/lab", ()),
}


def baseline_start(runs: int, arguments: list[str], ready_path: str, switched_off: Sequence[str]) -> list[float]:
    """Seconds until a directly started Jupyter server answers ``ready_path`` (no hub involved)."""
    times = []
    for _ in range(runs):
        port = free_port()
        with tempfile.TemporaryDirectory() as home:
            extensions = {"ServerApp": {"jpserver_extensions": dict.fromkeys(switched_off, False)}}
            Path(home, "jupyter_server_config.json").write_text(json.dumps(extensions))
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, *arguments, f"--port={port}", "--ip=127.0.0.1", "--allow-root",
                 "--IdentityProvider.token=bench", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={home}"],
                env={**os.environ, "HOME": home, "JUPYTER_CONFIG_PATH": f"{home}{os.pathsep}{JUPYTER_CONFIG_DIR}"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                while True:
                    try:
                        url = f"http://127.0.0.1:{port}{ready_path}?token=bench"
                        if requests.get(url, timeout=1).ok:
                            break
                    except requests.ConnectionError:
                        time.sleep(0.05)
                times.append(time.perf_counter() - started)
            finally:
                process.terminate()
                process.wait(timeout=30)
    return times


def sign_in_to_jupyterlab(browser: Browser, hub_url: str, account: DemoAccount, project: str) -> tuple[float, HubApi]:
    """Seconds from the hub's login to JupyterLab's launcher drawn in the browser; the user's hub API."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        started = time.perf_counter()
        jupyterlab.sign_in(page, hub_url, account.username, account.password, account.totp().now())
        jupyterlab.start_bubble(page, hub_url, account.username, project)
        seconds = time.perf_counter() - started
        api = HubApi(hub_url, jupyterlab.hub_api_token(page, hub_url, account.username))
    finally:
        context.close()
    return seconds, api


def _start(api: HubApi, username: str, project: str) -> None:
    answer = api.start(username, project)
    if answer.status_code not in (201, 202):
        raise RuntimeError(f"the hub refused to start {username}'s bubble: {answer.status_code} {answer.text}")


def _wait_lab_page(api: HubApi, username: str, project: str) -> None:
    lab = requests.get(f"{api.hub_url}/user/{username}/{project}/lab", headers=api.headers, timeout=120)
    if lab.status_code != 200 or "jupyter-config-data" not in lab.text:
        raise RuntimeError(f"JupyterLab's page: {lab.status_code}")


def start_to_lab(api: HubApi, username: str, project: str) -> float | None:
    """Seconds from the start request until the bubble serves JupyterLab's page; ``None`` when it failed."""
    started = time.perf_counter()
    try:
        _start(api, username, project)
        api.wait_ready(username, project, timeout=600)
        _wait_lab_page(api, username, project)
    except (AssertionError, RuntimeError, requests.RequestException) as error:
        print(f"  {username}: start failed: {error}", flush=True)
        return None
    return time.perf_counter() - started


def bubble_trees_mb() -> list[float]:
    """Resident memory of each running bubble: its single-user server and every process under it."""
    trees = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if not SINGLE_USER.search(" ".join(process.info["cmdline"] or [])):
                continue
            parent = process.parent()
            if parent is not None and SINGLE_USER.search(" ".join(parent.cmdline())):
                continue  # counted with the top of its tree
            members = [process, *process.children(recursive=True)]
            trees.append(sum(member.memory_info().rss for member in members) / 1e6)
        except psutil.NoSuchProcess:
            continue
    return trees


def rss_mb(match: str) -> float:
    total = 0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        command = " ".join(process.info["cmdline"] or [])
        if match in command and "bench/hub_spawn.py" not in command:
            total += process.info["memory_info"].rss
    return total / 1e6


@dataclass
class Figures:
    """What one run measured, in seconds and megabytes."""

    baselines: dict[str, list[float]]
    sequential: list[float]
    concurrent: list[float]
    all_ready: float
    memory: dict[str, float]
    bubble_alone: list[float]
    bubbles_at_once: list[float]


def prepare(description: dict[str, Any], home: Path, users: int) -> tuple[Realm, list[DemoAccount]]:
    """A project ``bench`` under INFRACALC governance with ``users`` new researchers in it."""
    local = LocalSecrets.from_json(json.loads((home / "secrets.json").read_text()))
    realm = Realm(description, local)
    api_url = str(description["urls"]["api"])
    staff = next(account for account in local.accounts if "casd-staff" in account.roles)
    headers = {"Authorization": f"Bearer {realm.api_token(staff)}"}
    body = {"id": PROJECT, "title": "Bench", "governance": "INFRACALC"}
    requests.post(f"{api_url}/projects", headers=headers, json=body, timeout=30).raise_for_status()
    researchers = [realm.add_researcher(index) for index in range(users)]
    for account in researchers:
        member = f"{api_url}/projects/{PROJECT}/members/{account.username}"
        requests.put(member, headers=headers, json={"role": "member"}, timeout=30).raise_for_status()
    return realm, researchers


def measure(realm: Realm, researchers: list[DemoAccount]) -> Figures:
    """The baselines, the sequential sign-ins to JupyterLab, then the concurrent starts and the memory."""
    runs = min(len(researchers), 10)
    baselines = {}
    for name, (arguments, ready_path, switched_off) in BASELINES.items():
        print(f"baseline: {runs} starts of the {name} ...", flush=True)
        baselines[name] = baseline_start(runs, arguments, ready_path, switched_off)
    print(f"sequential: {len(researchers)} sign-ins to JupyterLab in Chromium ...", flush=True)
    sequential, apis, bubble_alone = [], [], []
    with jupyterlab.chromium() as browser:
        for account in researchers:
            seconds, api = sign_in_to_jupyterlab(browser, realm.hub_url, account, PROJECT)
            sequential.append(seconds)
            bubble_alone.extend(bubble_trees_mb())
            print(f"  {account.username}: {seconds:.2f} s", flush=True)
            apis.append(api)
            api.stop(account.username, PROJECT)
            api.wait_stopped(account.username, PROJECT)
    print(f"concurrent: {len(researchers)} bubble starts at once, until JupyterLab's page is served ...", flush=True)
    pairs = list(zip(apis, researchers, strict=True))
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        outcomes = list(pool.map(lambda pair: start_to_lab(pair[0], pair[1].username, PROJECT), pairs))
    all_ready = time.perf_counter() - started
    concurrent_times = [seconds for seconds in outcomes if seconds is not None]
    if len(concurrent_times) < len(outcomes):
        print(f"  {len(outcomes) - len(concurrent_times)} of {len(outcomes)} concurrent starts failed", flush=True)
    bubbles_at_once = bubble_trees_mb()
    memory = {
        "hub": rss_mb("-m jupyterhub"),
        "configurable-http-proxy": rss_mb("configurable-http-proxy"),
        "egress proxy": rss_mb("egress-proxy"),
    }
    for api, account in pairs:
        api.stop(account.username, PROJECT)
    return Figures(baselines, sequential, concurrent_times, all_ready, memory, bubble_alone, bubbles_at_once)


def report(figures: Figures) -> None:
    """The table: each figure beside the bare server's start measured in the same run."""
    base = statistics.median(next(iter(figures.baselines.values())))
    print()
    print(f"{'measure':62} {'p50 s':>8} {'p90 s':>8} {'p50 / bare':>11}")
    print("-" * 92)
    rows = [
        *((f"baseline: {name}, started directly", values) for name, values in figures.baselines.items()),
        ("sign-in to JupyterLab loaded in Chromium (one at a time)", figures.sequential),
        (f"start to JupyterLab's page, {len(figures.concurrent)} at once (those that started)", figures.concurrent),
    ]
    for name, values in rows:
        if not values:
            print(f"{name:62} {'—':>8}")
            continue
        p50, p90 = statistics.median(values), percentile(values, 0.9)
        print(f"{name:62} {p50:8.2f} {p90:8.2f} {p50 / base:11.1f}")
    print(f"{len(figures.concurrent)} concurrent starts, until all served JupyterLab: {figures.all_ready:.1f} s")
    if figures.bubble_alone:
        print(f"one bubble with JupyterLab loaded, no kernel (single-user process tree): p50 "
              f"{statistics.median(figures.bubble_alone):.0f} MB, max {max(figures.bubble_alone):.0f} MB")  # fmt: skip
    if figures.bubbles_at_once:
        print(f"{len(figures.bubbles_at_once)} bubbles at once: {sum(figures.bubbles_at_once):.0f} MB in all, "
              f"p50 {statistics.median(figures.bubbles_at_once):.0f} MB each")  # fmt: skip
    print("resident memory at the end: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in figures.memory.items()))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: Sequence[str] | None = None) -> None:
    """Start the stack, measure, stop it, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="researchers and spawns (20)")
    parser.add_argument(
        "--first-port", type=int, help="give the stack's servers consecutive ports from this one (default: free ports)"
    )
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the local spawner gives each bubble a network namespace")
    missing = jupyterlab.chromium_missing()
    if missing is not None:
        raise SystemExit(missing)
    with tempfile.TemporaryDirectory(prefix="infracalc-bench-") as directory:
        home = Path(directory)
        stack = Stack(home, options.first_port)
        print("starting the local stack (infracalc up --detach) ...", flush=True)
        description = stack.up()
        try:
            realm, researchers = prepare(description, home, options.users)
            figures = measure(realm, researchers)
        finally:
            print("stopping the local stack ...", flush=True)
            stack.down()
    report(figures)


if __name__ == "__main__":
    main()
