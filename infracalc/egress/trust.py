"""What bubbles trust: the system's CAs plus the platform's egress CA certificate, never its key.

A bubble reaches a host of an ``inspect`` rule through a certificate the egress proxy mints with
the platform's egress CA, so the bubble's clients must trust that CA. They get one file, the
bubble bundle: the system's trust store followed by the egress CA's certificate, and the
environment variables their usual clients read to find it (Python's ``ssl`` and OpenSSL-based
programs, requests and pip, httpx, curl and R's curl package, git, Node.js, the AWS SDKs). A bundle
that would carry a private key is refused: the key stays with the proxy.

A site that runs its own CA instead puts its certificate and key (an elliptic-curve key, mode
0600) as ``ca-cert.pem`` and ``ca-key.pem`` in the proxy's ``INFRACALC_EGRESS_CA_DIR``; the
proxy publishes the certificate and the bundle built from it the same way (README, "The egress CA").
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from infracalc.errors import InfracalcError

#: Where a bubble container finds the egress CA's public files (a named volume the proxy fills, mounted
#: read-only by :class:`infracalc.hub.docker.InfracalcDockerSpawner`): ``ca-cert.pem``, ``bubble-bundle.pem``.
IMAGE_CA_DIR = "/etc/infracalc/egress-ca"
#: Places a system keeps its trust store, tried in order when Python's defaults name none.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, some BSDs
)


class TrustError(InfracalcError):
    """A bubble bundle cannot be made: the message says why."""


def system_bundle() -> Path | None:
    """The system's trust store as one PEM file, if the machine has one."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *_SYSTEM_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def bubble_bundle(ca_cert: Path, *, system: Path | None = None) -> str:
    """The bundle's text: the system's CAs (``system``, default :func:`system_bundle`), then the egress CA.

    Raises:
        TrustError: ``ca_cert`` holds a private key or no certificate, or cannot be read.
    """
    try:
        ca_text = ca_cert.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise TrustError(f"the egress CA certificate {ca_cert} cannot be read: {error}") from None
    if "PRIVATE KEY" in ca_text:
        raise TrustError(f"{ca_cert} holds a private key: give bubbles the certificate only")
    if "BEGIN CERTIFICATE" not in ca_text:
        raise TrustError(f"{ca_cert} holds no PEM certificate")
    source = system if system is not None else system_bundle()
    system_text = source.read_text(encoding="utf-8", errors="replace") if source is not None else ""
    return f"{system_text.rstrip()}\n# INFRACALC egress CA ({ca_cert.name})\n{ca_text.strip()}\n".lstrip()


def write_bubble_bundle(ca_cert: Path, target: Path, *, system: Path | None = None) -> Path:
    """Write the bundle to ``target`` (mode 0644, replaced atomically) and return it.

    Raises:
        TrustError: as :func:`bubble_bundle`, or the file cannot be written.
    """
    return write_public(target, bubble_bundle(ca_cert, system=system))


def write_public(target: Path, text: str) -> Path:
    """Write ``text`` to ``target`` for all to read (0644), replaced atomically: a bubble never reads half a file.

    Raises:
        TrustError: the file cannot be written.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o644)
        partial.replace(target)
    except OSError as error:
        raise TrustError(f"cannot write {target} for bubbles: {error.strerror}") from None
    return target


def trust_environment(bundle: str, ca_cert: str) -> dict[str, str]:
    """The variables that make a bubble's usual clients trust ``bundle`` (``ca_cert`` alone for Node.js)."""
    return {
        "SSL_CERT_FILE": bundle,  # OpenSSL's default (Python's ssl, R's openssl), httpx, conda's Python
        "REQUESTS_CA_BUNDLE": bundle,  # requests (which otherwise reads certifi's file), and pip
        "CURL_CA_BUNDLE": bundle,  # curl, R's curl package (httr), pycurl
        "GIT_SSL_CAINFO": bundle,
        "AWS_CA_BUNDLE": bundle,  # boto3, the AWS CLI
        "NODE_EXTRA_CA_CERTS": ca_cert,  # added to Node.js's own list
    }
