"""The service under load: reads and writes from one client and from many, beside a route that does nothing.

Run with ``make bench`` (or ``.venv/bin/python bench/api_load.py [--backend sqlite|postgresql]
[--events N]``). For each database (SQLite; PostgreSQL when ``INFRACALC_TEST_POSTGRES_URL`` names
a server, on a database of the run's own) and each state of it:

- **fresh**: one project with a lead and a member, an empty audit log;
- **grown**: the same, plus 1,000 other projects of five members each (so that OPA holds a
  sizeable data set) and an audit log of a million events with a signed checkpoint every 100,
  made directly in the tables by :mod:`audit_fill` (same encoding and key as the service's own);

it starts the service as deployed (one uvicorn worker, a real OPA over loopback REST, tokens signed
by a key of this run and published where the service looks for Keycloak's) and times:

- **nothing**: ``GET /bench/nothing``, a route this bench mounts on the app it builds (no
  authentication, no database, no OPA), answering ``{}``: the framework's own cost, the baseline;
- **read**: ``GET /api/v1/projects/<id>`` by a member of the project (token verified, OPA asked
  through the decision cache, the project and its members read from the database);
- **write**: ``POST /api/v1/projects/<id>/egress-requests`` by CASD staff: the authorization, the
  row and its audit event in one transaction, and the project pushed to OPA before the answer.

Reads and the baseline are timed from one client (interleaved rounds: p50, p99) and from 20
(requests per second, p99). Writes are timed from one client (p50, p99) and in bursts of 50 sent
at once (p50, p99 of every request, and the burst's wall time): bursts at one project (pushes of one
project are serialised) and bursts spread over 50 projects. Afterwards ``infracalc audit verify``
must find the log intact, the bench's own million events included.

Targets (issue 18): a write p50 at most 10 ms, 50 concurrent writes p99 at most 300 ms, the grown
figures within 20 % of the fresh ones; a read with 20 clients at least half the requests per
second of the do-nothing route.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import uvicorn
from audit_fill import fill_audit_log
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import get
from service_auth import publish_signing_key
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from infracalc.audit import AuditSettings, CheckpointSigner
from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.db import (
    DatabaseSettings,
    Governance,
    Member,
    MemberRole,
    Project,
    create_engine,
    normalise_url,
    upgrade,
)
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerSpec
from infracalc.stack.servers import opa_spec
from infracalc.tools import install

PROJECT = "bench-project"
STAFF, MEMBER = "claire", "rita"
#: Extra projects of the grown state, and members each.
GROWN_PROJECTS, GROWN_MEMBERS = 1000, 5
GROWN_EVENTS = 1_000_000
#: The grown log of ``--short``.
SHORT_EVENTS = 100_000
#: Sequential samples per route are taken in rounds alternating the routes (the machine's load drifts).
ROUNDS = 5
CLIENTS, BURST = 20, 50


@dataclass(frozen=True)
class Plan:
    """How many samples a run takes."""

    #: Sequential samples per route (reads and the baseline), and seconds of 20 clients per route.
    sequential: int = 1000
    concurrent_seconds: float = 5.0
    #: Sequential writes, and bursts of 50 writes (of each kind).
    writes: int = 200
    bursts: int = 6


#: ``--short``: a quick look (about a minute per database and state), noisier figures.
SHORT = Plan(sequential=250, concurrent_seconds=2.0, writes=50, bursts=2)


def serve() -> None:
    """Run the service (in its own process) with the do-nothing route mounted beside it."""

    @get("/bench/nothing", sync_to_thread=False, include_in_schema=False)
    def nothing() -> dict[str, Any]:
        return {}

    settings = ServiceSettings.from_env()
    app = create_app(settings)
    app.register(nothing)
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)


@dataclass
class Figures:
    """Latencies (seconds) and rates measured for one route and one way of sending."""

    latencies: list[float] = field(default_factory=list)
    rate: float = 0.0
    wall: list[float] = field(default_factory=list)
    #: CPU seconds the service's process (all its threads) and OPA spent on these requests.
    cpu: float = 0.0
    opa_cpu: float = 0.0

    def cpu_ms(self, seconds: float) -> float:
        """``seconds`` of CPU per request, in milliseconds."""
        return seconds / len(self.latencies) * 1000

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000


class Client:
    """One aiohttp session with enough connections for the largest burst."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.headers = {who: {"Authorization": f"Bearer {token}"} for who, token in tokens.items()}
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends them under a request.
        connector = aiohttp.TCPConnector(limit=BURST + CLIENTS, keepalive_timeout=3)
        self.session = aiohttp.ClientSession(connector=connector)
        self.counter = 0

    async def close(self) -> None:
        await self.session.close()

    async def nothing(self) -> float:
        return await self._timed("GET", "/bench/nothing", None, None)

    async def read(self) -> float:
        return await self._timed("GET", f"/api/v1/projects/{PROJECT}", MEMBER, None)

    async def write(self, project: str = PROJECT) -> float:
        self.counter += 1
        body = {"host": f"api{self.counter}.example.org", "justification": "Load bench: a request for a host."}
        return await self._timed("POST", f"/api/v1/projects/{project}/egress-requests", STAFF, body)

    async def _timed(self, method: str, path: str, who: str | None, body: object) -> float:
        started = time.perf_counter()
        headers = self.headers[who] if who else None
        async with self.session.request(method, self.base + path, headers=headers, json=body) as answer:
            await answer.read()
            if answer.status not in {200, 201}:
                raise SystemExit(f"{method} {path} answered {answer.status}: {await answer.text()}")
        return time.perf_counter() - started


async def sustained(call: Callable[[], Awaitable[float]], clients: int, seconds: float) -> Figures:
    """``clients`` loops sending ``call`` for ``seconds``: their latencies and the requests answered per second."""
    figures = Figures()
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            figures.latencies.append(await call())

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    figures.rate = len(figures.latencies) / (time.perf_counter() - started)
    return figures


class CpuMeter:
    """CPU time used by processes (``/proc``), so that a figure says what a request costs whatever the load."""

    def __init__(self, service: int, opa: int) -> None:
        self.service, self.opa = service, opa

    @staticmethod
    def seconds(pid: int) -> float:
        """User and system CPU seconds of ``pid`` and its direct children (py-spy's child, when profiling)."""
        pids = [pid]
        with contextlib.suppress(OSError):
            pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        total = 0
        for each in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / os.sysconf("SC_CLK_TCK")

    @contextlib.contextmanager
    def counting(self, figures: Figures) -> Iterator[None]:
        """Add the CPU the block used to ``figures``."""
        service, opa = self.seconds(self.service), self.seconds(self.opa)
        yield
        figures.cpu += self.seconds(self.service) - service
        figures.opa_cpu += self.seconds(self.opa) - opa


async def measure(client: Client, spread: list[str], cpu: CpuMeter, plan: Plan) -> dict[str, Figures]:
    """Every figure of one service run (see the module docstring)."""
    for _ in range(200):  # warm-up: connections, the token cache, the first decisions
        await client.nothing()
        await client.read()
    for _ in range(20):
        await client.write()
    results = {name: Figures() for name in ("nothing 1", "read 1", "nothing 20", "read 20")}
    for _ in range(ROUNDS):
        for name, call in (("nothing 1", client.nothing), ("read 1", client.read)):
            with cpu.counting(results[name]):
                results[name].latencies += [await call() for _ in range(plan.sequential // ROUNDS)]
    for _ in range(2):  # two rounds each, alternated, plan.concurrent_seconds / 2 per round
        for name, call in (("nothing 20", client.nothing), ("read 20", client.read)):
            with cpu.counting(results[name]):
                figures = await sustained(call, CLIENTS, plan.concurrent_seconds / 2)
            results[name].latencies += figures.latencies
            results[name].rate += figures.rate / 2
    results["write 1"] = Figures()
    with cpu.counting(results["write 1"]):
        results["write 1"].latencies = [await client.write() for _ in range(plan.writes)]
    for name, projects in (("write 50, one project", [PROJECT] * BURST), ("write 50, 50 projects", spread)):
        figures = results[name] = Figures()
        for _ in range(plan.bursts):
            started = time.perf_counter()
            with cpu.counting(figures):
                figures.latencies += await asyncio.gather(*(client.write(project) for project in projects))
            figures.wall.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
    return results


async def prepare(settings: DatabaseSettings, home: Path, *, grown: bool, events: int) -> float:
    """Migrate, add the bench's projects and people (and, grown, the crowd and the long log); return fill seconds."""
    await upgrade(settings)
    signer = CheckpointSigner.load_or_create(AuditSettings.from_env({"INFRACALC_HOME": str(home)}).key_path)
    now = datetime.now(UTC)
    projects = [{"id": PROJECT, "title": "Load bench", "governance": Governance.INFRACALC, "created_at": now}]
    projects += [
        {"id": f"spread-{i}", "title": "Load bench", "governance": Governance.INFRACALC, "created_at": now}
        for i in range(BURST)
    ]
    members = [
        {"project_id": PROJECT, "username": "bruno", "role": MemberRole.LEAD, "added_at": now},
        {"project_id": PROJECT, "username": MEMBER, "role": MemberRole.MEMBER, "added_at": now},
    ]
    if grown:
        projects += [
            {"id": f"crowd-{i}", "title": f"Project {i}", "governance": Governance.CASD, "created_at": now}
            for i in range(GROWN_PROJECTS)
        ]
        members += [
            {"project_id": f"crowd-{i}", "username": f"person{i}-{j}", "role": MemberRole.MEMBER, "added_at": now}
            for i in range(GROWN_PROJECTS)
            for j in range(GROWN_MEMBERS)
        ]
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Project), projects)
            await connection.execute(insert(Member), members)
    finally:
        await engine.dispose()
    return await fill_audit_log(settings, signer, events) if grown else 0.0


async def postgres_database(server_url: str, *, drop: str | None = None) -> str:
    """Create a database of this run on the server (or drop ``drop``); return its URL."""
    base = normalise_url(server_url)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    name = drop or f"{base.database or 'infracalc'}_bench_{secrets.token_hex(4)}"
    try:
        async with admin.connect() as connection:
            if drop:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    return base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)


@dataclass
class Run:
    """What one backend and state gave."""

    backend: str
    state: str
    fill_seconds: float
    figures: dict[str, Figures]
    verify: str
    #: The machine's one-minute load average before and after the measurements (it is shared).
    load: tuple[float, float]


@dataclass(frozen=True)
class Setup:
    """What every run shares: where to work and log, the service's environment, the tokens, OPA's process."""

    work: Path
    logs: Path
    env: dict[str, str]
    tokens: dict[str, str]
    opa_pid: int
    events: int
    profile: Path | None
    plan: Plan


def run_state(backend: str, state: str, setup: Setup) -> Run:
    """Prepare one database, run the service on it, measure, verify the log, and tear everything down."""
    work, logs, env, profile = setup.work, setup.logs, setup.env, setup.profile
    home = work / f"{backend}-{state}"
    home.mkdir()
    postgres = os.environ.get("INFRACALC_TEST_POSTGRES_URL", "")
    url = f"sqlite:///{home / 'infracalc.db'}" if backend == "sqlite" else asyncio.run(postgres_database(postgres))
    try:
        settings = DatabaseSettings.from_url(url)
        fill = asyncio.run(prepare(settings, home, grown=state == "grown", events=setup.events))
        port = free_port()
        service_env = {**env, "INFRACALC_HOME": str(home), "INFRACALC_DATABASE_URL": url}
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            record = [str(Path(sys.executable).with_name("py-spy")), "record", "--idle", "--format", "raw"]
            argv = [*record, "-o", str(profile / f"{backend}-{state}.txt"), "--", *argv]
        spec = ServerSpec(
            name=f"service-{backend}-{state}",
            argv=argv,
            env={**service_env, "INFRACALC_SERVICE_PORT": str(port), "PYTHONPATH": os.pathsep.join(sys.path)},
            health_url=f"http://127.0.0.1:{port}/health",
        )
        service = ManagedProcess(spec, logs / f"bench-api-load-{backend}-{state}.log")
        service.start()
        try:
            service.wait_healthy()
            meter = CpuMeter(service.pid or 0, setup.opa_pid)
            load_before = os.getloadavg()[0]
            figures = asyncio.run(measure_service(f"http://127.0.0.1:{port}", setup.tokens, meter, setup.plan))
            load_after = os.getloadavg()[0]
        finally:
            if profile is not None and service.pid is not None:
                os.kill(service.pid, signal.SIGINT)  # py-spy writes its profile on SIGINT
                time.sleep(10)
            service.stop()
        verified = subprocess.run(
            [sys.executable, "-m", "infracalc", "audit", "verify"],
            env={**os.environ, **service_env},
            capture_output=True,
            text=True,
            check=False,
        )
        verdict = (verified.stdout or verified.stderr).strip().splitlines()[0] if verified.returncode == 0 else ""
        if verified.returncode != 0:
            raise SystemExit(
                f"audit verify failed after the {backend} {state} run:\n{verified.stdout}{verified.stderr}"
            )
        return Run(backend, state, fill, figures, verdict, (load_before, load_after))
    finally:
        if backend == "postgresql":
            asyncio.run(postgres_database(postgres, drop=DatabaseSettings.from_url(url).url.database))


async def measure_service(base: str, tokens: dict[str, str], cpu: CpuMeter, plan: Plan) -> dict[str, Figures]:
    client = Client(base, tokens)
    try:
        return await measure(client, [f"spread-{i}" for i in range(BURST)], cpu, plan)
    finally:
        await client.close()


def signed_tokens(issuer: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    """An access token for CASD staff and one for a member, as Keycloak would sign them (acr mfa)."""
    now = int(time.time())
    tokens = {}
    for who, roles in ((STAFF, ["casd-staff"]), (MEMBER, ["researcher"])):
        claims = {
            "iss": issuer,
            "aud": "infracalc-api",
            "sub": f"bench-{who}",
            "typ": "Bearer",
            "acr": "mfa",
            "preferred_username": who,
            "realm_access": {"roles": roles},
            "iat": now,
            "exp": now + 7200,
        }
        tokens[who] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    return tokens


def report(runs: list[Run]) -> None:
    """Print every run's figures, then the targets' verdicts."""
    print(f"API under load: one uvicorn worker, real OPA over loopback REST; load average {os.getloadavg()[0]:.1f}")
    for run in runs:
        f = run.figures
        fill = f", log filled in {run.fill_seconds:.0f} s" if run.fill_seconds else ""
        load = f"load average {run.load[0]:.1f} before, {run.load[1]:.1f} after"
        print(f"\n{run.backend}, {run.state}{fill}; {load}; after the run, audit verify: {run.verify}")
        print(
            f"  {'':<24} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'burst ms':>9}"
            f" {'CPU ms/req: service':>20} {'OPA':>6}"
        )
        for name, figures in f.items():
            rate = f"{figures.rate:7.0f}" if figures.rate else f"{'':>7}"
            wall = f"{statistics.median(figures.wall) * 1000:9.0f}" if figures.wall else f"{'':>9}"
            print(
                f"  {name:<24} {figures.p50:8.2f} {figures.percentile(0.99):8.2f} {rate} {wall}"
                f" {figures.cpu_ms(figures.cpu):20.2f} {figures.cpu_ms(figures.opa_cpu):6.2f}"
            )
        ratio = f["read 20"].rate / f["nothing 20"].rate
        print(f"  read ÷ nothing with {CLIENTS} clients: {ratio:.2f} of the requests per second (target: at least 0.5)")
        print(
            f"  one client, p50 ÷ nothing's p50: read x{f['read 1'].p50 / f['nothing 1'].p50:.1f},"
            f" write x{f['write 1'].p50 / f['nothing 1'].p50:.1f}"
        )
        print(
            f"  write p50 {f['write 1'].p50:.1f} ms (target: at most 10); 50 at once p99 "
            f"{f['write 50, one project'].percentile(0.99):.0f} ms one project, "
            f"{f['write 50, 50 projects'].percentile(0.99):.0f} ms 50 projects (target: at most 300)"
        )
    by_key = {(run.backend, run.state): run for run in runs}
    for backend in dict.fromkeys(run.backend for run in runs):
        fresh, grown = by_key.get((backend, "fresh")), by_key.get((backend, "grown"))
        if fresh is None or grown is None:
            continue
        print(f"\n{backend}: grown ÷ fresh (target: writes within 1.2)")
        for name in ("write 1", "write 50, one project", "write 50, 50 projects"):
            print(
                f"  {name:<26} p50 x{grown.figures[name].p50 / fresh.figures[name].p50:.2f}, "
                f"p99 x{grown.figures[name].percentile(0.99) / fresh.figures[name].percentile(0.99):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--state", choices=["fresh", "grown"], action="append")
    parser.add_argument("--events", type=int, help=f"events in the grown state's audit log (default {GROWN_EVENTS:,})")
    parser.add_argument(
        "--short",
        action="store_true",
        help=f"fewer samples, and {SHORT_EVENTS:,} events in the grown log unless --events says otherwise",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record each service run with py-spy (--idle) into this directory (collapsed stacks)",
    )
    arguments = parser.parse_args()
    plan = SHORT if arguments.short else Plan()
    events = arguments.events or (SHORT_EVENTS if arguments.short else GROWN_EVENTS)
    backends = arguments.backend or ["sqlite", "postgresql"]
    if "postgresql" in backends and not os.environ.get("INFRACALC_TEST_POSTGRES_URL"):
        print("PostgreSQL skipped: INFRACALC_TEST_POSTGRES_URL names no server")
        backends.remove("postgresql")
    tools = install(ToolSettings.from_env(), report=lambda _line: None)
    logs = SOURCE_ROOT / "test-artifacts" / "logs"
    work = Path(tempfile.mkdtemp(prefix="infracalc-api-load-"))
    key, keycloak_url, jwks = publish_signing_key()
    opa_port = free_port()
    opa = ManagedProcess(
        opa_spec(tools.opa, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies"),
        logs / "bench-api-load-opa.log",
    )
    env = {
        "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
        "INFRACALC_KEYCLOAK_URL": keycloak_url,
        "INFRACALC_API_CLIENT_SECRET": "unused-by-these-routes",
    }
    tokens = signed_tokens(f"{keycloak_url}/realms/infracalc", key)
    runs = []
    try:
        for backend in backends:
            for state in arguments.state or ["fresh", "grown"]:
                # A fresh OPA per run: the grown state's data must not stay for the next fresh one.
                opa.start()
                opa.wait_healthy()
                try:
                    setup = Setup(work, logs, env, tokens, opa.pid or 0, events, arguments.profile, plan)
                    runs.append(run_state(backend, state, setup))
                finally:
                    opa.stop()
    finally:
        jwks.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    report(runs)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
