"""The S3 client, created in one place with the settings S3-compatible servers need.

boto3 1.36+ adds CRC checksums to every request by default; many S3-compatible servers
(versitygw, sovereign-cloud object stores) reject or mishandle them, so both directions are
set to ``when_required``. Path-style addressing avoids per-bucket DNS names on local endpoints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    # The stubs are a development dependency; at run time the name only has to exist (Litestar
    # resolves the annotations of objects it injects).
    S3Client = Any


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where the object store is and how to sign requests to it."""

    #: ``INFRACALC_S3_ENDPOINT_URL``: the S3 API's base URL.
    endpoint_url: str
    #: ``INFRACALC_S3_ACCESS_KEY``: the access key the service signs requests with.
    access_key: str
    #: ``INFRACALC_S3_SECRET_KEY``: its secret key.
    secret_key: str = ""
    #: ``INFRACALC_S3_REGION``: most S3-compatible servers accept any region name.
    region: str = "us-east-1"
    #: ``INFRACALC_S3_BUCKET``: the bucket holding imports and exports (created at start when missing).
    bucket: str = "infracalc"

    def __repr__(self) -> str:
        # Never print the secret key, even by accident in a log line or a traceback.
        return (
            f"S3Settings(endpoint_url={self.endpoint_url!r}, access_key={self.access_key!r},"
            f" region={self.region!r}, bucket={self.bucket!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """Read the S3 settings; the endpoint and both keys are required.

        Raises:
            KeyError: a required ``INFRACALC_S3_*`` variable is missing.
        """
        env = os.environ if env is None else env
        return cls(
            endpoint_url=env["INFRACALC_S3_ENDPOINT_URL"],
            access_key=env["INFRACALC_S3_ACCESS_KEY"],
            secret_key=env["INFRACALC_S3_SECRET_KEY"],
            region=env.get("INFRACALC_S3_REGION", "us-east-1"),
            bucket=env.get("INFRACALC_S3_BUCKET", "infracalc"),
        )


def make_s3_client(settings: S3Settings, *, sign_payload: bool = True) -> S3Client:
    """A boto3 S3 client for ``settings``, configured for S3-compatible servers.

    Args:
        settings: where the server is, and the keys.
        sign_payload: whether each request's signature covers the SHA-256 of its body (botocore's
            default over plain HTTP). Only for a client that sends nothing but multipart parts, each
            with its own SHA-256 checksum (:class:`infracalc.casd.objects.ObjectStore`'s ``part_client``),
            may it be ``False``: the checksum header is signed and the server checks the body against
            it, so the body is as well protected without being hashed twice on each side.
    """
    config = Config(
        signature_version="s3v4",
        # Left unset, payload signing follows botocore's default (always over plain HTTP).
        s3={"addressing_style": "path"}
        if sign_payload
        else {"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
        config=config,
    )
    return client


__all__ = ["S3Client", "S3Settings", "make_s3_client"]
