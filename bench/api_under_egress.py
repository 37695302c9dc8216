"""Whether the service stays responsive while the egress proxy refuses connections by the thousand.

Run with ``.venv/bin/python bench/api_under_egress.py`` (options: ``--clients N``, ``--seconds S``).
It starts one uvicorn worker of the service on SQLite, a real OPA, and ``infracalc egress-proxy``
reporting to that service (``POST /api/v1/egress/events``, which records each decision in the
audit log), then measures a person's requests from one client, first with the proxy idle, then
while ``--clients`` processes (8) each open connections through the proxy as fast as they can,
every one refused by the policy (``CONNECT`` to a host no rule allows, with a valid bubble's
credentials: a decision, its audit event, its line):

- ``GET /api/v1/projects/{id}`` (a read): p50 and p99 of 300 sequential requests;
- ``DELETE /api/v1/projects/{id}/egress-rules/{rule}`` (a write: revoking a rule, in the database,
  the audit log and OPA's data before the answer), one rule each time: p50 and p99 of 40 sequential
  requests;

and the proxy's refused decisions per second meanwhile, from its metrics (the target asks for at
least 1,000). Targets (issue 15): under that load, the read's p99 at most 50 ms and the write's
at most 300 ms; the idle figures of the same run are the baseline.

Each load client is a bubble of its own (eight bubbles, so that the per-bubble rate of new
connections, 100 a second by default, is raised to let one client go as fast as it can: the load
is what the service must take, not what the limits would let through). The person's tokens are
signed by a key of this run, published where the service expects Keycloak's keys (as in
``bench/service_auth.py``): a Keycloak that takes minutes to start would add nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.server
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from service_auth import Jwks  # the run's key, published where the service looks for the realm's keys

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.db import DatabaseSettings, Governance, Project, create_engine, session_factory, upgrade
from infracalc.db.models import Bubble, EgressRule, EgressRuleStatus, Member, MemberRole
from infracalc.identity import bubble_tokens, proxy_secret
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerSpec
from infracalc.stack.servers import opa_spec
from infracalc.tools import install

PROJECT = "bench-egress-load"
MEMBER = "dora"
READS, WRITES = 300, 40
#: Requests of the warm-up, not counted.
WARM_READS, WARM_WRITES = 20, 5
#: A host no rule allows: every connection is a refused decision.
DENIED_TARGET = b"CONNECT api.denied.test:443 HTTP/1.1\r\n"
LOGS = SOURCE_ROOT / "test-artifacts" / "logs"


def tokens(keycloak_url: str) -> dict[str, str]:
    """A staff person's token (two-factor), signed by a key of this run published at ``keycloak_url``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    Jwks.document = json.dumps({"keys": [{**public, "kid": "bench", "use": "sig", "alg": "RS256"}]}).encode()
    now = int(time.time())
    claims = {
        "iss": f"{keycloak_url}/realms/infracalc",
        "aud": "infracalc-api",
        "typ": "Bearer",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "acr": "mfa",
    }
    staff = {**claims, "sub": "claire", "preferred_username": "claire", "realm_access": {"roles": ["casd-staff"]}}
    return {"staff": jwt.encode(staff, key, algorithm="RS256", headers={"kid": "bench"})}


def rule_ids() -> list[str]:
    """The approved rules the writes revoke, one each."""
    return [f"bench-rule-{n:04d}" for n in range(WARM_WRITES + 2 * WRITES)]


async def prepare_database(url: str, bubbles: Sequence[bubble_tokens.MintedToken]) -> None:
    """The project, its member, its rules, one bubble per load client (the service pushes them to OPA at start)."""
    await upgrade(url)
    engine = create_engine(DatabaseSettings.from_url(url))
    async with session_factory(engine)() as session, session.begin():
        session.add(Project(id=PROJECT, title="Egress load", governance=Governance.INFRACALC))
        await session.flush()
        session.add(Member(project_id=PROJECT, username=MEMBER, role=MemberRole.MEMBER))
        for minted in bubbles:
            session.add(Bubble(id=minted.bubble_id, project_id=PROJECT, username=MEMBER, token_sha256=minted.digest))
        expiry = datetime.now(UTC) + timedelta(days=30)
        for n, rule_id in enumerate(rule_ids()):
            session.add(
                EgressRule(
                    id=rule_id,
                    project_id=PROJECT,
                    host=f"api-{n}.example.org",
                    wildcard=False,
                    ports=[443],
                    methods=[],
                    path_prefixes=[],
                    justification="a rule the bench revokes, to time a write",
                    expires_at=expiry,
                    status=EgressRuleStatus.APPROVED,
                    requested_by=MEMBER,
                )
            )
    await engine.dispose()


def refuse_forever(port: int, credentials: str, stop: Any, done: Any) -> None:
    """One load client: connections refused by the policy, one after the other, until ``stop`` is set."""
    request = DENIED_TARGET + f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode()
    count = 0
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request)
            answer = connection.recv(4096)
        if not answer.startswith(b"HTTP/1.1 403 "):
            raise SystemExit(f"the proxy answered {answer[:200]!r}, not a refusal")
        count += 1
    done.put(count)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def timed(session: requests.Session, method: str, url: str, **options: Any) -> float:
    started = time.perf_counter()
    answer = session.request(method, url, timeout=60, **options)
    elapsed = time.perf_counter() - started
    if answer.status_code >= 300:
        raise SystemExit(f"{method} {url} answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def measure(
    service: str, headers: dict[str, str], rules: list[str], *, reads: int = READS, writes: int = WRITES
) -> dict[str, tuple[float, float]]:
    """p50 and p99 of the read and of the write (each revoking the next of ``rules``), one request at a time."""
    project = f"{service}/api/v1/projects/{PROJECT}"
    with requests.Session() as session:
        session.headers.update(headers)
        read_times = [timed(session, "GET", project) for _ in range(reads)]
        write_times = [timed(session, "DELETE", f"{project}/egress-rules/{rules.pop(0)}") for _ in range(writes)]
    return {"read": percentiles(read_times), "write": percentiles(write_times)}


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the proxy's metrics (0 when absent)."""
    wanted = name + ("{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}")
    for line in requests.get(url, timeout=10).text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0


def start(spec: ServerSpec, stop_later: list[Callable[[], object]]) -> ManagedProcess:
    process = ManagedProcess(spec, LOGS / f"bench-api-under-egress-{spec.name}.log")
    stop_later.append(lambda: process.stop(5.0))
    process.start()
    process.wait_healthy()
    return process


def under_load(
    service: str,
    headers: dict[str, str],
    rules: list[str],
    proxy_port: int,
    metrics_url: str,
    *,
    bubbles: Sequence[bubble_tokens.MintedToken],
    seconds: float,
) -> tuple[dict[str, tuple[float, float]], float, float, float]:
    """Measure with one load client per bubble: the figures, refused decisions a second, seconds, events pending."""
    stop, done = multiprocessing.Event(), multiprocessing.Queue()
    loaders = [
        multiprocessing.Process(
            target=refuse_forever,
            args=(proxy_port, base64.b64encode(f"{m.bubble_id}:{m.token}".encode()).decode(), stop, done),
        )
        for m in bubbles
    ]
    for loader in loaders:
        loader.start()
    time.sleep(2.0)  # the load settles
    denied = {"result": "deny", "reason": "policy_denied"}
    before, started = metric(metrics_url, "infracalc_egress_decisions_total", **denied), time.monotonic()
    loaded = measure(service, headers, rules)
    while time.monotonic() < started + seconds:
        time.sleep(0.2)
    refused = metric(metrics_url, "infracalc_egress_decisions_total", **denied) - before
    elapsed = time.monotonic() - started
    stop.set()
    for loader in loaders:
        loader.join(30)
    return loaded, refused / elapsed, elapsed, metric(metrics_url, "infracalc_egress_events_pending")


def run(clients: int, seconds: float) -> None:
    """Start everything, measure idle then under load, print the table."""
    tools = install(ToolSettings.from_env(), report=lambda _line: None)
    work = Path(tempfile.mkdtemp(prefix="infracalc-bench-api-egress-"))
    jwks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    keycloak_url = f"http://127.0.0.1:{jwks.server_address[1]}"
    token = tokens(keycloak_url)["staff"]
    bubbles = [bubble_tokens.mint() for _ in range(clients)]
    database = f"sqlite:///{work / 'bench.db'}"
    asyncio.run(prepare_database(database, bubbles))
    secret = proxy_secret.mint()
    stop_later: list[Callable[[], object]] = []
    try:
        opa_port, service_port = free_port(), free_port()
        start(opa_spec(tools.opa, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies"), stop_later)
        service = f"http://127.0.0.1:{service_port}"
        service_env = {
            "INFRACALC_HOME": str(work),
            "INFRACALC_DATABASE_URL": database,
            "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
            "INFRACALC_KEYCLOAK_URL": keycloak_url,
            "INFRACALC_API_CLIENT_SECRET": "unused-by-these-routes",
            "INFRACALC_SERVICE_PORT": str(service_port),
            "INFRACALC_EGRESS_PROXY_SECRET_SHA256": proxy_secret.digest(secret),
        }
        start(
            ServerSpec(
                name="service",
                argv=[sys.executable, "-m", "infracalc", "serve"],
                env=service_env,
                health_url=f"{service}/health",
                start_timeout=60.0,
            ),
            stop_later,
        )
        proxy_port, metrics_port = free_port(), free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        start(
            ServerSpec(
                name="egress-proxy",
                argv=[sys.executable, "-m", "infracalc", "egress-proxy"],
                env={
                    "INFRACALC_EGRESS_PROXY_PORT": str(proxy_port),
                    "INFRACALC_EGRESS_METRICS_PORT": str(metrics_port),
                    "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
                    "INFRACALC_SERVICE_URL": service,
                    "INFRACALC_EGRESS_PROXY_SECRET": secret,
                    # One client per bubble, as fast as it goes: the per-bubble rate would cap the load.
                    "INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE": "100000",
                    "INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST": "100000",
                    "INFRACALC_EGRESS_CONNECTION_RATE": "100000",
                    "INFRACALC_EGRESS_CONNECTION_BURST": "100000",
                },
                health_url=metrics_url,
                start_timeout=60.0,
            ),
            stop_later,
        )
        headers = {"Authorization": f"Bearer {token}"}
        rules = rule_ids()
        measure(service, headers, rules, reads=WARM_READS, writes=WARM_WRITES)  # connections, caches, the token
        idle = measure(service, headers, rules)
        loaded, rate, elapsed, pending = under_load(
            service, headers, rules, proxy_port, metrics_url, bubbles=bubbles, seconds=seconds
        )
    finally:
        for stop_one in reversed(stop_later):
            stop_one()
        jwks.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"A person's requests to the service (one uvicorn worker, SQLite), one at a time: idle, then while "
        f"{clients} clients open connections through the egress proxy, each refused by the policy "
        f"({rate:,.0f} refused decisions a second over {elapsed:.0f} s; {pending:.0f} events pending at the end); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'':<46} {'idle p50':>9} {'idle p99':>9} {'load p50':>9} {'load p99':>9} {'target':>12}")
    targets = {"read": 50.0, "write": 300.0}
    labels = {
        "read": f"GET /api/v1/projects/{{id}} ({READS})",
        "write": f"DELETE /api/v1/projects/{{id}}/egress-rules/{{r}} ({WRITES})",
    }
    for kind, label in labels.items():
        (idle50, idle99), (load50, load99) = idle[kind], loaded[kind]
        verdict = "met" if load99 <= targets[kind] else "NOT MET"
        print(
            f"  {label:<46} {idle50:8.1f}  {idle99:8.1f}  {load50:8.1f}  {load99:8.1f}  "
            f"p99 <= {targets[kind]:.0f} ms: {verdict}"
        )
    print(f"  load of at least 1,000 refused decisions a second: {'met' if rate >= 1000 else 'NOT MET'} ({rate:,.0f})")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=8, help="load clients, one bubble each (8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="least seconds of load measured (20)")
    arguments = parser.parse_args(argv)
    run(arguments.clients, arguments.seconds)


if __name__ == "__main__":
    main()
