"""What authentication and OPA authorization add to a request, measured beside the same route without them.

Run with ``make bench`` (or ``.venv/bin/python bench/service_auth.py``). It starts, each with one
uvicorn worker on loopback and sharing one SQLite database and one real OPA:

- ``full``: the service as deployed: the bearer token is verified (RS256 signature with the
  realm's keys, issuer, audience, expiry, acr) and ``infracalc.authz`` is asked over REST, its
  answers reused for up to a second (the policy client's decision cache, emptied by every data write);
- ``full-uncached``: the same with the decision cache off (``INFRACALC_OPA_DECISION_CACHE_SECONDS=0``):
  one OPA round trip per request;
- ``baseline``: the same app and route, with a fixed caller and no policy query.

The tokens are signed by a key of this run, whose JWKS a small local server publishes where the
service expects Keycloak's: the verification work is the one a Keycloak token costs (a Keycloak
that takes a minute to start would only slow the run down). ``GET /api/v1/projects/{id}`` is then
timed from one client connection (p50, p99) and from eight (requests per second).
Target: authentication plus authorization add at most 1 ms at p50.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.db import DatabaseSettings, Governance, Project, create_engine, session_factory, upgrade
from infracalc.policy import Decision
from infracalc.service.app import create_app
from infracalc.service.auth import CredentialScheme
from infracalc.service.context import ServiceContext
from infracalc.service.principals import Person
from infracalc.service.settings import ServiceSettings
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerSpec
from infracalc.stack.servers import opa_spec
from infracalc.tools import install

PROJECT = "bench-project"
SEQUENTIAL = 2000
CONCURRENCY = 8
CONCURRENT_SECONDS = 5.0


def serve(mode: str) -> None:
    """Run one server (in its own process): the real app, or the baseline without auth and authz."""

    settings = ServiceSettings.from_env()
    schemes: list[CredentialScheme] | None = None

    class FixedCaller:
        def recognises(self, credential: str) -> bool:
            return True

        async def authenticate(self, credential: str, context: ServiceContext) -> Person:
            return Person(username="bench", roles=frozenset({"casd-staff"}), acr="mfa", subject="bench")

    async def allow(self: ServiceContext, *_: Any, **__: Any) -> Decision:
        return Decision(True, "benchmark baseline: no policy query")

    if mode in {"baseline", "authentication"}:
        ServiceContext.authorize = allow  # type: ignore[method-assign]
    if mode in {"baseline", "authorization"}:
        schemes = [FixedCaller()]
    app = create_app(settings, credential_schemes=schemes)
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)


class Jwks(http.server.BaseHTTPRequestHandler):
    """Publishes the run's public key where the service looks for the realm's keys."""

    document = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *_: Any) -> None:
        pass


def publish_signing_key() -> tuple[rsa.RSAPrivateKey, str, http.server.ThreadingHTTPServer]:
    """A key of this run, its JWKS served on loopback (in a thread): the key, the server's URL, the server."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    Jwks.document = json.dumps({"keys": [{**public, "kid": "bench", "use": "sig", "alg": "RS256"}]}).encode()
    jwks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    return key, f"http://127.0.0.1:{jwks.server_address[1]}", jwks


async def timed(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as answer:
        await answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url} answered {answer.status}: {await answer.text()}")
    return time.perf_counter() - started


#: The sequential samples are taken in rounds, each server in turn, so that a change of load
#: during the run (these machines are shared) weighs on every server alike.
ROUNDS = 10


async def requests_per_second(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    """Requests answered per second by ``CONCURRENCY`` connections for ``CONCURRENT_SECONDS``."""
    count = 0
    deadline = time.perf_counter() + CONCURRENT_SECONDS

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await timed(session, url, headers)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - started)


async def measure_all(urls: dict[str, str], headers: dict[str, str]) -> dict[str, dict[str, float]]:
    """p50 and p99 of sequential requests (interleaved rounds), then requests per second with 8 connections."""
    sessions = {mode: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) for mode in urls}
    try:
        samples: dict[str, list[float]] = {mode: [] for mode in urls}
        for mode, url in urls.items():
            for _ in range(200):  # warm-up: connections, caches, the first verification
                await timed(sessions[mode], url, headers)
        for _ in range(ROUNDS):
            for mode, url in urls.items():
                samples[mode] += [await timed(sessions[mode], url, headers) for _ in range(SEQUENTIAL // ROUNDS)]
        results = {}
        for mode, url in urls.items():
            ordered = sorted(samples[mode])
            results[mode] = {
                "p50": statistics.median(ordered),
                "p99": ordered[int(len(ordered) * 0.99) - 1],
                "rps": await requests_per_second(sessions[mode], url, headers),
            }
        return results
    finally:
        for session in sessions.values():
            await session.close()


async def prepare_database(url: str) -> None:
    await upgrade(url)
    engine = create_engine(DatabaseSettings.from_url(url))
    async with session_factory(engine)() as session, session.begin():
        session.add(Project(id=PROJECT, title="Benchmark", governance=Governance.INFRACALC))
    await engine.dispose()


def main() -> None:
    tools = install(ToolSettings.from_env(), report=lambda _line: None)
    logs = SOURCE_ROOT / "test-artifacts" / "logs"
    work = Path(tempfile.mkdtemp(prefix="infracalc-bench-"))
    key, keycloak_url, jwks = publish_signing_key()
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": f"{keycloak_url}/realms/infracalc",
            "aud": "infracalc-api",
            "sub": "bench-user",
            "typ": "Bearer",
            "acr": "mfa",
            "preferred_username": "claire",
            "realm_access": {"roles": ["casd-staff"]},
            "iat": now,
            "exp": now + 3600,
        },
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    database = f"sqlite:///{work / 'bench.db'}"
    asyncio.run(prepare_database(database))

    opa_port = free_port()
    opa = ManagedProcess(
        opa_spec(tools.opa, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies"),
        logs / "bench-opa.log",
    )
    servers: dict[str, ManagedProcess] = {}
    base_env = {
        "INFRACALC_HOME": str(work),
        "INFRACALC_DATABASE_URL": database,
        "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
        "INFRACALC_KEYCLOAK_URL": keycloak_url,
        "INFRACALC_API_CLIENT_SECRET": "unused-by-this-route",
    }
    try:
        opa.start()
        opa.wait_healthy()
        for mode in ("baseline", "authentication", "authorization", "full-uncached", "full"):
            port = free_port()
            cache = {"INFRACALC_OPA_DECISION_CACHE_SECONDS": "0" if mode != "full" else "1"}
            spec = ServerSpec(
                name=f"service-{mode}",
                argv=[sys.executable, str(Path(__file__).resolve()), "--serve", mode],
                env={
                    **base_env,
                    **cache,
                    "INFRACALC_SERVICE_PORT": str(port),
                    "PYTHONPATH": os.pathsep.join(sys.path),
                },
                health_url=f"http://127.0.0.1:{port}/health",
            )
            servers[mode] = ManagedProcess(spec, logs / f"bench-service-{mode}.log")
            servers[mode].start()
            servers[mode].wait_healthy()
        headers = {"Authorization": f"Bearer {token}"}
        urls = {
            mode: f"{process.spec.health_url.removesuffix('/health')}/api/v1/projects/{PROJECT}"
            for mode, process in servers.items()
        }
        results = asyncio.run(measure_all(urls, headers))
    finally:
        for process in servers.values():
            process.stop()
        opa.stop()
        jwks.shutdown()
        shutil.rmtree(work, ignore_errors=True)  # the database and the audit key of this run
    full, baseline = results["full"], results["baseline"]
    added = (full["p50"] - baseline["p50"]) * 1000
    labels = {
        "baseline": "baseline (no auth, no authz)",
        "authentication": "token verification only",
        "authorization": "OPA authorization only",
        "full-uncached": "full, no decision cache",
        "full": "full (token + OPA, cached 1 s)",
    }
    print("GET /api/v1/projects/{id}, one uvicorn worker, SQLite, real OPA over loopback REST")
    print(f"  {'':<32} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p50 vs baseline':>16}")
    for mode, label in labels.items():
        row = results[mode]
        print(
            f"  {label:<32} {row['p50'] * 1000:8.2f} {row['p99'] * 1000:8.2f} {row['rps']:8.0f}"
            f" {(row['p50'] - baseline['p50']) * 1000:+13.2f} ms"
        )
    print(f"  full / baseline: p50 x{full['p50'] / baseline['p50']:.2f}, req/s x{full['rps'] / baseline['rps']:.2f}")
    print(f"  authentication + authorization add {added:.2f} ms at p50 (target: at most 1 ms)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main()
