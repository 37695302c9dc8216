"""Import throughput through the service against a plain boto3 upload of the same file, and the service's memory.

Run with ``make bench`` (or ``.venv/bin/python bench/import_throughput.py [--mib 512]``). It starts
a real S3 server (versitygw) and a real OPA, then ``infracalc``'s app with one uvicorn worker in a
process of its own, whose caller is fixed to a member of CASD staff (the token check is not what is
measured here; OPA still authorizes the upload). A file of random bytes is then

- uploaded with boto3's ``upload_fileobj`` (its default transfer settings: 8 MiB parts, up to ten
  in parallel) to the same S3 server: the baseline;
- imported through ``POST /api/v1/projects/{id}/imports`` by :func:`infracalc.import_client.upload_file`
  (what ``infracalc import`` does): checks, per-part and whole-file SHA-256, multipart upload to S3,
  the database row and its audit events.

Both run ``--rounds`` times (3), alternating which goes first, each after the objects of the
previous uploads were deleted and the file system flushed (:func:`settle`), so that neither pays for
the other's disk write-back; each round's ratio is printed, then the median of the rounds' ratios
(the figure to compare with the target: a change of load during a run weighs on both uploads of a
round alike) and the best of each. The CPU seconds of each process (the client, which is this
process; the service; the S3 server) are printed for every upload, and ``--profile FILE`` records
the service with py-spy during the first import (collapsed stacks).

While the import runs, the service's resident memory is polled every 20 ms from ``/proc/<pid>/status``;
the peak above its idle level is reported. Targets (issue 6): at least 85 % of the baseline's
throughput, under 150 MB above idle.

Then an office document: an XLSX workbook (openpyxl) holding a picture of random bytes, of
``--office-mib`` MiB (default 64; the service checks documents up to 128 MiB), is imported, and so
is a file of random bytes of the same size named ``.bin``; best of two each, alternating. An office
document is also spooled to a temporary file and checked as a whole package before the upload
completes; the ratio says what that costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import openpyxl
import requests
from botocore.config import Config

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.db import DatabaseSettings, Governance, Project, create_engine, session_factory, upgrade
from infracalc.import_client import upload_file
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerSpec
from infracalc.stack.servers import opa_spec, s3_spec
from infracalc.tools import install

PROJECT = "bench-imports"
MIB = 1024 * 1024


def serve() -> None:
    """Run the service (in its own process) with a fixed caller: a member of CASD staff."""
    import uvicorn  # noqa: PLC0415 - only the server process needs it

    from infracalc.service.app import create_app  # noqa: PLC0415
    from infracalc.service.context import ServiceContext  # noqa: PLC0415
    from infracalc.service.principals import Person  # noqa: PLC0415
    from infracalc.service.settings import ServiceSettings  # noqa: PLC0415

    class FixedCaller:
        def recognises(self, credential: str) -> bool:
            return True

        async def authenticate(self, credential: str, context: ServiceContext) -> Person:
            return Person(username="bench", roles=frozenset({"casd-staff"}), acr="mfa", subject="bench")

    settings = ServiceSettings.from_env()
    app = create_app(settings, credential_schemes=[FixedCaller()])
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (its threads included), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """CPU seconds spent by each named process, and by this one, between entry and exit."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        times = os.times()
        return {"client": times.user + times.system} | {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def __enter__(self) -> CpuWatch:
        self._start = self._now()
        return self

    def __exit__(self, *_: Any) -> None:
        end = self._now()
        self.spent = {name: end[name] - self._start[name] for name in end}

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.spent.items())


class Profile:
    """``py-spy record`` of a process while the block runs, written to ``path`` (collapsed stacks)."""

    def __init__(self, pid: int, path: Path | None) -> None:
        self.pid = pid
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        if self.path is not None:
            py_spy = Path(sys.executable).with_name("py-spy")
            if not py_spy.exists():
                raise SystemExit(f"--profile needs py-spy beside {sys.executable} (pip install py-spy)")
            argv = [str(py_spy), "record", "--pid", str(self.pid), "--format", "raw", "--rate", "250", "--nonblocking"]
            self._process = subprocess.Popen([*argv, "--output", str(self.path), "--threads"])
            time.sleep(1.0)  # py-spy attaches
        return self

    def __exit__(self, *_: Any) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(timeout=60)


class MemoryWatch:
    """Polls a process's resident memory in a thread, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


async def prepare_database(url: str) -> None:
    await upgrade(url)
    engine = create_engine(DatabaseSettings.from_url(url))
    async with session_factory(engine)() as session, session.begin():
        session.add(Project(id=PROJECT, title="Benchmark", governance=Governance.INFRACALC))
    await engine.dispose()


def write_random_file(path: Path, mib: int) -> None:
    with path.open("wb") as file:
        for _ in range(mib):
            file.write(os.urandom(MIB))


def write_workbook(path: Path, mib: int) -> None:
    """An XLSX workbook of about ``mib`` MiB: a small sheet and a picture of random bytes."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if sheet is None:
        raise SystemExit("openpyxl made a workbook without a sheet")
    sheet.append(["region", "n"])
    for number in range(100):
        sheet.append([f"region {number}", 100 + number])
    workbook.save(path)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("xl/media/image1.png", "w") as member,
    ):
        member.write(b"\x89PNG\r\n\x1a\n")
        for _ in range(mib):
            member.write(os.urandom(MIB))


def office_comparison(api: str, work: Path, office_mib: int) -> list[str]:
    """Import an XLSX of ``office_mib`` MiB and random bytes of its size, alternating, best of two each.

    Returns:
        The lines of the report.
    """
    workbook, same = work / "data.xlsx", work / "same.bin"
    write_workbook(workbook, office_mib)
    size = workbook.stat().st_size
    with same.open("wb") as file:
        file.write(os.urandom(size))
    office_seconds: list[float] = []
    plain_seconds: list[float] = []
    for _ in range(2):
        for path, seconds, expected in ((same, plain_seconds, "binary"), (workbook, office_seconds, "xlsx")):
            started = time.perf_counter()
            answer = upload_file(api, "bench", PROJECT, path)
            seconds.append(time.perf_counter() - started)
            if answer.get("detected_type") != expected:
                raise SystemExit(f"the import of {path.name} answered {answer}")
    plain, checked = min(plain_seconds), min(office_seconds)
    mib = size / MIB
    return [
        f"office document of {mib:.1f} MiB (best of two), against random bytes of the same size:",
        f"  random bytes (.bin):             {plain:7.2f} s  {mib / plain:7.1f} MiB/s",
        f"  xlsx, spooled and checked:       {checked:7.2f} s  {mib / checked:7.1f} MiB/s",
        f"  xlsx / random bytes:             {plain / checked:7.1%}",
    ]


@dataclass(frozen=True, slots=True)
class Run:
    """One timed upload."""

    seconds: float
    #: CPU seconds of each process during the upload.
    cpu: str


def settle(client: Any, buckets: tuple[str, ...]) -> None:
    """Delete the objects of earlier uploads, then flush the file system: each upload starts from the same state.

    Otherwise an upload pays for the disk's write-back of the one before it (versitygw's
    ``CompleteMultipartUpload`` copies the parts into the object, and slows down by a factor of
    three to six while the previous object's 512 MiB are still being written), which favoured
    whichever upload ran first.
    """
    for bucket in buckets:
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    os.sync()


def timed_rounds(
    client: Any, api: str, data: Path, rounds: int, *, service_pid: int, s3_pid: int, profile: Path | None
) -> tuple[dict[str, list[Run]], int]:
    """Upload ``data`` with boto3 and through the service, alternately, ``rounds`` times each.

    Returns:
        The runs of each, and the service's peak resident memory (KiB) during its imports.
    """
    size = data.stat().st_size
    runs: dict[str, list[Run]] = {"baseline": [], "service": []}
    peak = 0
    for number in range(rounds):
        # Alternating, each upload after the same settling: neither pays for the other's place in the order.
        for which in ("baseline", "service") if number % 2 == 0 else ("service", "baseline"):
            settle(client, ("bench-baseline", "bench-service"))
            if which == "baseline":
                with data.open("rb") as file, CpuWatch({"S3": s3_pid}) as cpu:
                    started = time.perf_counter()
                    client.upload_fileobj(file, "bench-baseline", "data.bin")
                    seconds = time.perf_counter() - started
            else:
                with (
                    Profile(service_pid, profile if number == 0 else None),
                    MemoryWatch(service_pid) as watch,
                    CpuWatch({"service": service_pid, "S3": s3_pid}) as cpu,
                ):
                    started = time.perf_counter()
                    imported = upload_file(api, "bench", PROJECT, data)
                    seconds = time.perf_counter() - started
                if imported.get("size") != size:
                    raise SystemExit(f"the import answered {imported}")
                peak = max(peak, watch.peak)
            runs[which].append(Run(seconds, cpu.line()))
    return runs, peak


def main(mib: int, office_mib: int, rounds: int = 3, profile: Path | None = None) -> None:
    tools = install(ToolSettings.from_env(), report=lambda _line: None)
    logs = SOURCE_ROOT / "test-artifacts" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="infracalc-bench-imports-"))
    data = work / "data.bin"
    write_random_file(data, mib)
    size = data.stat().st_size
    database = f"sqlite:///{work / 'bench.db'}"
    asyncio.run(prepare_database(database))
    access_key, secret_key = "bench-" + secrets.token_hex(4), secrets.token_urlsafe(24)
    s3_port, opa_port, service_port = free_port(), free_port(), free_port()
    (work / "s3").mkdir()
    s3 = ManagedProcess(
        s3_spec(
            tools.versitygw,
            host="127.0.0.1",
            port=s3_port,
            data_dir=work / "s3",
            access_key=access_key,
            secret_key=secret_key,
        ),
        logs / "bench-imports-s3.log",
    )
    opa = ManagedProcess(
        opa_spec(tools.opa, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies"),
        logs / "bench-imports-opa.log",
    )
    endpoint = f"http://127.0.0.1:{s3_port}"
    service = ManagedProcess(
        ServerSpec(
            name="service-imports",
            argv=[sys.executable, str(Path(__file__).resolve()), "--serve"],
            env={
                "INFRACALC_HOME": str(work),
                "INFRACALC_DATABASE_URL": database,
                "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
                "INFRACALC_KEYCLOAK_URL": "http://127.0.0.1:9",
                "INFRACALC_API_CLIENT_SECRET": "unused-here",
                "INFRACALC_S3_ENDPOINT_URL": endpoint,
                "INFRACALC_S3_ACCESS_KEY": access_key,
                "INFRACALC_S3_SECRET_KEY": secret_key,
                "INFRACALC_S3_BUCKET": "bench-service",
                "INFRACALC_SERVICE_PORT": str(service_port),
                "PYTHONPATH": os.pathsep.join(sys.path),
            },
            health_url=f"http://127.0.0.1:{service_port}/health",
        ),
        logs / "bench-imports-service.log",
    )
    try:
        for server in (s3, opa, service):
            server.start()
            server.wait_healthy()
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        client.create_bucket(Bucket="bench-baseline")
        pid = service.pid or 0
        api = f"http://127.0.0.1:{service_port}/api/v1"
        requests.get(f"{api}/projects/{PROJECT}/imports", headers={"Authorization": "Bearer x"}, timeout=30)
        time.sleep(1.0)
        idle = rss_kib(pid)
        runs, peak = timed_rounds(client, api, data, rounds, service_pid=pid, s3_pid=s3.pid or 0, profile=profile)
        settle(client, ("bench-baseline", "bench-service"))
        office_report = office_comparison(api, work, office_mib)
    finally:
        for server in (service, opa, s3):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)  # the test file, the bucket and the database

    def rate(seconds: float) -> float:
        return size / MIB / seconds

    print(f"import of {mib} MiB of random bytes, {rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    for number, (base, served) in enumerate(zip(runs["baseline"], runs["service"], strict=True), start=1):
        print(f"  round {number}: baseline {rate(base.seconds):6.1f} MiB/s, service {rate(served.seconds):6.1f} MiB/s,")
        print(
            f"           {base.seconds / served.seconds:6.1%}; CPU seconds: baseline {base.cpu}; service {served.cpu}"
        )
    baseline = min(run.seconds for run in runs["baseline"])
    through_service = min(run.seconds for run in runs["service"])
    ratio = statistics.median(
        base.seconds / served.seconds for base, served in zip(runs["baseline"], runs["service"], strict=True)
    )
    print(f"  boto3 upload_fileobj (baseline), best: {baseline:7.2f} s  {rate(baseline):7.1f} MiB/s")
    print(f"  through the service, best:             {through_service:7.2f} s  {rate(through_service):7.1f} MiB/s")
    print(f"  service / baseline, best / best:       {baseline / through_service:7.1%}")
    print(f"  service / baseline, median of rounds:  {ratio:7.1%}  (target >= 85 %)")
    print(f"  service memory: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB during the imports,")
    print(f"                  {(peak - idle) / 1024:.1f} MiB above idle (target < 150 MB)")
    print("\n".join(office_report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mib", type=int, default=512, help="size of the file, in MiB (default 512)")
    parser.add_argument(
        "--office-mib", type=int, default=64, help="size of the office document, in MiB (default 64, at most 120)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both uploads (default 3)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the service with py-spy during the import, into this file (collapsed stacks)",
    )
    arguments = parser.parse_args()
    if arguments.serve:
        serve()
    elif not 1 <= arguments.office_mib <= 120:
        parser.error("--office-mib must be between 1 and 120")
    else:
        main(arguments.mib, arguments.office_mib, arguments.rounds, arguments.profile)
