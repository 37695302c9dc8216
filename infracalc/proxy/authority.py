"""The platform's egress CA: the certificates the proxy presents to bubbles for the hosts it inspects.

For an ``inspect`` rule the proxy answers the bubble's CONNECT itself and terminates the TLS with a
certificate for the host it was asked for, minted on the spot and signed by the platform's egress
CA. Bubbles trust that CA (and only its certificate reaches them: :mod:`infracalc.egress.trust`);
its private key stays with the proxy, in a file no one else may read (mode 0600, checked at start).

Leaf certificates are short-lived (a day by default) and made again before they lapse; one key
pair (P-256) serves every leaf of a proxy process and is never written anywhere but to a private
temporary file for the instant OpenSSL loads it (Python's ``ssl`` loads keys from files only).
Each host's server context is kept (at most :data:`MAX_HOSTS`, least recently used dropped).

Rotation: make a new CA (``infracalc egress-ca init --dir NEW``), move its two files into the
proxy's CA directory while the proxy is stopped, start it (it publishes the new certificate and
bundle), then restart the bubbles (README, "The egress CA: the trust model").
"""

from __future__ import annotations

import collections
import datetime
import ipaddress
import os
import shutil
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infracalc.egress.trust import bubble_bundle, write_public
from infracalc.errors import InfracalcError

#: Hosts whose server context is kept.
MAX_HOSTS = 4096
#: How long a leaf certificate is valid, and how long before its end it is made again.
LEAF_LIFETIME = datetime.timedelta(days=1)
LEAF_RENEWAL = datetime.timedelta(hours=1)
#: Leaves start this long before they are made, for bubbles whose clock is a little behind.
BACKDATE = datetime.timedelta(hours=1)
#: The CA's own lifetime when ``init`` makes one.
CA_LIFETIME = datetime.timedelta(days=3650)
#: The files ``init`` writes.
CERT_NAME, KEY_NAME = "ca-cert.pem", "ca-key.pem"
#: The bundle published beside the certificate for bubbles (:mod:`infracalc.egress.trust`).
BUNDLE_NAME = "bubble-bundle.pem"


class AuthorityError(InfracalcError):
    """The egress CA cannot be made or used: the message says which file and why."""


@dataclass(frozen=True, slots=True)
class AuthorityFiles:
    """Where a CA's certificate (public, for bubbles) and private key (the proxy's only) are."""

    cert_path: Path
    key_path: Path

    @classmethod
    def within(cls, directory: Path) -> AuthorityFiles:
        """``ca-cert.pem`` and ``ca-key.pem`` of ``directory`` (what :func:`create_authority` writes)."""
        return cls(directory / CERT_NAME, directory / KEY_NAME)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def create_authority(directory: Path, *, name: str = "INFRACALC egress CA") -> AuthorityFiles:
    """Make a new CA in ``directory``: ``ca-cert.pem`` (0644) and ``ca-key.pem`` (0600); never overwrites.

    Raises:
        AuthorityError: either file exists already, or cannot be written.
    """
    files = AuthorityFiles.within(directory)
    for path in (files.cert_path, files.key_path):
        if path.exists():
            raise AuthorityError(f"{path} exists: the egress CA is made once (move it away to make a new one)")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Created with its final mode: the key is never readable by others, not even for an instant.
        descriptor = os.open(files.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(pem)
        files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.cert_path.chmod(0o644)
    except OSError as error:
        raise AuthorityError(f"cannot write the egress CA in {directory}: {error.strerror}") from None
    return files


def publish(files: AuthorityFiles, directory: Path) -> Path:
    """Write what bubbles may have of the CA into ``directory``: its certificate and the bubble bundle; the bundle.

    Raises:
        TrustError: the certificate cannot be read, holds a key, or the files cannot be written.
    """
    bundle = bubble_bundle(files.cert_path)  # first: the file holds a certificate and no key
    write_public(directory / CERT_NAME, files.cert_path.read_text(encoding="ascii"))
    return write_public(directory / BUNDLE_NAME, bundle)


def _private_key_file(path: Path) -> bytes:
    """The key file's bytes, once it is shown to be a regular file only its owner may read."""
    try:
        status = path.stat()
    except OSError as error:
        raise AuthorityError(f"the egress CA key {path} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise AuthorityError(f"the egress CA key {path} is not a regular file")
    if status.st_mode & 0o077:
        raise AuthorityError(
            f"the egress CA key {path} may be read by others (mode {stat.S_IMODE(status.st_mode):04o}): "
            f"chmod 600 {path}"
        )
    return path.read_bytes()


class EgressAuthority:
    """The egress CA, loaded: mints (and keeps) a server context per inspected host."""

    def __init__(
        self,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        *,
        leaf_lifetime: datetime.timedelta = LEAF_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cert = cert
        self._key = key
        self.leaf_lifetime = leaf_lifetime
        self.clock = clock
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._issuer_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
        self._contexts: collections.OrderedDict[str, tuple[float, ssl.SSLContext]] = collections.OrderedDict()
        self._workdir = Path(tempfile.mkdtemp(prefix="infracalc-egress-leaves-"))  # mode 0700
        self._lock = threading.Lock()
        self.minted = 0

    @classmethod
    def load(cls, files: AuthorityFiles) -> EgressAuthority:
        """Read a CA made by :func:`create_authority` (or a site's own: any CA with a P-256 key).

        Raises:
            AuthorityError: a file is missing or unreadable, the key may be read by others, the
                certificate is not a CA's, is not valid now, or does not match the key.
        """
        key_bytes = _private_key_file(files.key_path)
        try:
            cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
        except OSError as error:
            raise AuthorityError(
                f"the egress CA certificate {files.cert_path} cannot be read: {error.strerror}"
            ) from None
        except ValueError:
            raise AuthorityError(f"{files.cert_path} is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except (ValueError, TypeError):
            raise AuthorityError(f"{files.key_path} is not an unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise AuthorityError(f"{files.key_path}: the egress CA key must be an elliptic-curve key (P-256)")
        if cert.public_key() != key.public_key():
            raise AuthorityError(f"{files.cert_path} and {files.key_path} do not belong together")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise AuthorityError(f"{files.cert_path} is not a CA certificate (basic constraints CA:TRUE)")
        now = datetime.datetime.now(datetime.UTC)
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise AuthorityError(
                f"{files.cert_path} is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}, not now"
            )
        return cls(cert, key)

    def context_for(self, host: str) -> ssl.SSLContext:
        """The server context presenting a certificate for ``host`` (a normal host name or an IP literal)."""
        now = self.clock()
        with self._lock:
            kept = self._contexts.get(host)
            if kept is not None and now < kept[0]:
                self._contexts.move_to_end(host)
                return kept[1]
        renew_at, context = self._mint(host, now)
        with self._lock:
            self._contexts[host] = (renew_at, context)
            self._contexts.move_to_end(host)
            while len(self._contexts) > MAX_HOSTS:
                self._contexts.popitem(last=False)
        return context

    def leaf(self, host: str, now: float) -> x509.Certificate:
        """A certificate for ``host``, valid from an hour ago for :attr:`leaf_lifetime`, signed by the CA."""
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        try:
            names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
        except ValueError:
            names = [x509.DNSName(host)]
        not_after = min(moment + self.leaf_lifetime, self.cert.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.cert.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._leaf_key.public_key()), critical=False)
            .add_extension(self._issuer_key_id, critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def _mint(self, host: str, now: float) -> tuple[float, ssl.SSLContext]:
        cert = self.leaf(host, now)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # HTTP/1.1 only: a client that also offers h2 gets HTTP/1.1; one that offers h2 alone gets
        # no protocol and, if it speaks HTTP/2 anyway, an HTTP/2 refusal saying why (inspection).
        context.set_alpn_protocols(["http/1.1"])
        handle, name = tempfile.mkstemp(dir=self._workdir, suffix=".pem")
        try:
            with os.fdopen(handle, "wb") as pem:  # 0600, in a 0700 directory, gone once loaded
                pem.write(
                    self._leaf_key.private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                    )
                )
                pem.write(cert.public_bytes(serialization.Encoding.PEM))
                # The CA's certificate too: a site's CA may be an intermediate under a root its
                # bubbles already trust, and a client can only build the chain if it is sent.
                pem.write(self.cert.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(name)
        finally:
            os.unlink(name)
        self.minted += 1
        renew_at = cert.not_valid_after_utc.timestamp() - LEAF_RENEWAL.total_seconds()
        return max(renew_at, now + 1.0), context

    def close(self) -> None:
        """Remove the private temporary directory (empty: each file is removed once loaded)."""
        shutil.rmtree(self._workdir, ignore_errors=True)
