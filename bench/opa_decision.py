"""How long an OPA login decision takes over loopback REST, beside OPA's own health endpoint.

Run with ``make bench``. Starts a real OPA on a free port with ``policies/``, loads data for
10,000 users, then times, in the same run and the same keep-alive HTTP session:

- baseline: ``GET /health`` (the cost of a round trip that evaluates no policy);
- ``POST /v1/data/infracalc/login/decision`` for users with and without registered networks.

Absolute times depend on the machine; the ratio to the baseline is what to compare across runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import requests

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess
from infracalc.stack.servers import opa_spec
from infracalc.tools import install

ROUNDS = 2000
USERS = 10_000


def measure(call: Callable[[], object]) -> float:
    """Median seconds of ``call`` over ``ROUNDS`` rounds, after a warm-up."""
    for _ in range(100):
        call()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    tools = install(ToolSettings.from_env(), report=lambda _line: None)
    port = free_port()
    log = Path(SOURCE_ROOT / "test-artifacts" / "logs" / "bench-opa.log")
    server = ManagedProcess(
        opa_spec(tools.opa, host="127.0.0.1", port=port, policies_dir=SOURCE_ROOT / "policies"), log
    )
    server.start()
    try:
        server.wait_healthy()
        url = f"http://127.0.0.1:{port}"
        session = requests.Session()
        users = {f"user{i}": {"networks": [f"10.{i // 256 % 256}.{i % 256}.0/24"]} for i in range(USERS)}
        session.put(f"{url}/v1/data/store/infracalc/users", json=users, timeout=30).raise_for_status()
        session.put(f"{url}/v1/data/store/infracalc/projects", json={"p": {"governance": "CASD"}}, timeout=30)
        session.put(f"{url}/v1/data/store/infracalc/members", json={"p": {"user1": {}}}, timeout=30)
        decision = f"{url}/v1/data/infracalc/login/decision"

        def with_network() -> object:
            body = {"input": {"username": "user4242", "acr": "mfa", "source_ip": "10.16.146.9"}}
            return session.post(decision, json=body, timeout=5).json()

        def without_network() -> object:
            body = {"input": {"username": "nobody", "acr": "mfa", "source_ip": "192.0.2.1"}}
            return session.post(decision, json=body, timeout=5).json()

        # Measure the paths we mean to: the first is allowed by its network, the second for lack of data.
        if with_network() != {"result": {"allow": True, "reason": "second factor used from a registered network"}}:
            raise SystemExit(f"unexpected decision: {with_network()}")
        if without_network() != {
            "result": {"allow": True, "reason": "second factor used; no registered network required"}
        }:
            raise SystemExit(f"unexpected decision: {without_network()}")
        baseline = measure(lambda: session.get(f"{url}/health", timeout=5))
        rows = [
            ("GET /health (baseline)", baseline),
            ("login decision, user with a network", measure(with_network)),
            ("login decision, user without data", measure(without_network)),
        ]
        print(f"OPA login decision over loopback REST, {USERS} users in data, median of {ROUNDS}")
        for name, seconds in rows:
            print(f"  {name:<40} {seconds * 1e6:8.0f} µs   x{seconds / baseline:5.2f} baseline")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
