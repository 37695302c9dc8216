"""How to run OPA, the S3 server and the service of the local stack (Keycloak has its own module)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from infracalc.stack.process import ServerSpec


def opa_spec(opa: Path, *, host: str, port: int, policies_dir: Path) -> ServerSpec:
    """OPA as a REST server loading every policy (and data file) under ``policies_dir``.

    ``--watch`` reloads policies when a file changes, so editing Rego needs no restart.
    """
    return ServerSpec(
        name="opa",
        argv=[
            str(opa), "run", "--server", "--addr", f"{host}:{port}",
            "--disable-telemetry", "--log-level", "error", "--watch", str(policies_dir),
        ],
        health_url=f"http://{host}:{port}/health",
        start_timeout=30.0,
    )  # fmt: skip


def s3_spec(versitygw: Path, *, host: str, port: int, data_dir: Path, access_key: str, secret_key: str) -> ServerSpec:
    """The versitygw gateway serving the S3 API over the POSIX directory ``data_dir``.

    Object metadata (tags, content type) lives in a sidecar directory beside the data rather than
    in extended attributes, so the store works on file systems without xattr support.
    """
    buckets = data_dir / "buckets"
    sidecar = data_dir / "metadata"
    buckets.mkdir(parents=True, exist_ok=True)
    sidecar.mkdir(parents=True, exist_ok=True)
    return ServerSpec(
        name="s3",
        argv=[
            str(versitygw), "--port", f"{host}:{port}", "--health", "/health",
            "posix", "--sidecar", str(sidecar), str(buckets),
        ],
        env={"ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key},
        health_url=f"http://{host}:{port}/health",
        start_timeout=30.0,
    )  # fmt: skip


def mailbox_spec(*, host: str, smtp_port: int, web_port: int, directory: Path) -> ServerSpec:
    """The local mailbox (:mod:`infracalc.stack.mailbox`): where the service and Keycloak send their e-mails."""
    return ServerSpec(
        name="mailbox",
        argv=[
            sys.executable, "-m", "infracalc", "mailbox", "--dir", str(directory), "--host", host,
            "--smtp-port", str(smtp_port), "--web-port", str(web_port),
        ],
        health_url=f"http://{host}:{web_port}/health",
        start_timeout=30.0,
    )  # fmt: skip


def service_spec(*, host: str, port: int, env: Mapping[str, str]) -> ServerSpec:
    """The INFRACALC service (``infracalc serve``), ready when ``/ready`` says every dependency answers."""
    return ServerSpec(
        name="service",
        argv=[sys.executable, "-m", "infracalc", "serve"],
        env={**env, "INFRACALC_HOST": host, "INFRACALC_SERVICE_PORT": str(port)},
        health_url=f"http://{host}:{port}/ready",
        start_timeout=90.0,
    )


def egress_proxy_spec(*, host: str, port: int, metrics_port: int, env: Mapping[str, str]) -> ServerSpec:
    """The egress proxy (``infracalc egress-proxy``), ready when its metrics answer."""
    return ServerSpec(
        name="egress-proxy",
        argv=[sys.executable, "-m", "infracalc", "egress-proxy"],
        env={
            **env,
            "INFRACALC_EGRESS_PROXY_HOST": host,
            "INFRACALC_EGRESS_PROXY_PORT": str(port),
            "INFRACALC_EGRESS_METRICS_HOST": host,
            "INFRACALC_EGRESS_METRICS_PORT": str(metrics_port),
        },
        health_url=f"http://{host}:{metrics_port}/metrics",
        start_timeout=30.0,
    )


def hub_spec(*, config: Path, data_dir: Path, host: str, port: int, chp: Path, env: Mapping[str, str]) -> ServerSpec:
    """JupyterHub in local mode (``hub_config/jupyterhub_config.py``), ready when ``/hub/health`` answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return ServerSpec(
        name="jupyterhub",
        argv=[sys.executable, "-m", "jupyterhub", "--config", str(config)],
        env={
            **env,
            "INFRACALC_HUB_MODE": "local",
            "INFRACALC_HUB_DATA": str(data_dir),
            "INFRACALC_HUB_PORT": str(port),
            "INFRACALC_CHP_PATH": str(chp),
            # The hub's own modules (infracalc.hub) and the single-user servers' (jupyterhub-singleuser).
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        },
        cwd=data_dir,
        health_url=f"http://{host}:{port}/hub/health",
        start_timeout=60.0,
    )
