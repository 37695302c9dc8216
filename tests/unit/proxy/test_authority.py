"""The egress CA: made once with a private key, refused when others may read its key, minting short-lived leaves."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infracalc.cli import main
from infracalc.proxy.authority import (
    BUNDLE_NAME,
    AuthorityError,
    AuthorityFiles,
    EgressAuthority,
    create_authority,
    publish,
)


def test_init_writes_a_ca_whose_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    files = create_authority(tmp_path / "ca")
    assert (files.key_path.stat().st_mode & 0o777, files.cert_path.stat().st_mode & 0o777) == (0o600, 0o644)
    cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    before = files.key_path.read_bytes()
    with pytest.raises(AuthorityError, match="exists"):
        create_authority(tmp_path / "ca")
    assert files.key_path.read_bytes() == before


def test_a_key_others_may_read_is_refused(tmp_path: Path) -> None:
    files = create_authority(tmp_path)
    files.key_path.chmod(0o640)
    with pytest.raises(AuthorityError, match=r"may be read by others \(mode 0640\): chmod 600"):
        EgressAuthority.load(files)


def test_a_certificate_of_another_key_or_not_a_ca_is_refused(tmp_path: Path) -> None:
    one, other = create_authority(tmp_path / "one"), create_authority(tmp_path / "two")
    with pytest.raises(AuthorityError, match="do not belong together"):
        EgressAuthority.load(AuthorityFiles(one.cert_path, other.key_path))
    with pytest.raises(AuthorityError, match="cannot be read"):
        EgressAuthority.load(AuthorityFiles(tmp_path / "missing.pem", one.key_path))


def test_leaves_name_their_host_expire_within_a_day_and_verify_against_the_ca(tmp_path: Path) -> None:
    files = create_authority(tmp_path)
    authority = EgressAuthority.load(files)
    now = datetime.datetime.now(datetime.UTC)
    for host, name in (("api.example.org", x509.DNSName("api.example.org")), ("192.0.2.7", None)):
        leaf = authority.leaf(host, now.timestamp())
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if name is not None:
            assert names.get_values_for_type(x509.DNSName) == [host]
        else:
            assert [str(address) for address in names.get_values_for_type(x509.IPAddress)] == [host]
        assert leaf.not_valid_after_utc - now <= datetime.timedelta(days=1, seconds=1)
        leaf.verify_directly_issued_by(authority.cert)
    authority.close()


def test_a_hosts_context_is_kept_until_its_leaf_must_be_renewed(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    authority = EgressAuthority.load(create_authority(tmp_path))
    authority.clock = lambda: clock[0]
    first = authority.context_for("api.example.org")
    assert isinstance(first, ssl.SSLContext)
    assert authority.context_for("api.example.org") is first
    assert authority.minted == 1
    clock[0] += 23 * 3600 + 1  # within an hour of the leaf's end
    assert authority.context_for("api.example.org") is not first
    assert authority.minted == 2
    assert list((authority._workdir).iterdir()) == []  # no key left on disk
    authority.close()


def test_publish_gives_bubbles_the_certificate_and_a_bundle_never_the_key(tmp_path: Path) -> None:
    files = create_authority(tmp_path / "private")
    bundle = publish(files, tmp_path / "public")
    assert bundle.name == BUNDLE_NAME
    assert sorted(path.name for path in (tmp_path / "public").iterdir()) == ["bubble-bundle.pem", "ca-cert.pem"]
    assert "PRIVATE KEY" not in bundle.read_text()
    assert files.cert_path.read_text().strip() in bundle.read_text()


def test_the_cli_makes_the_ca_once_and_publishes_only_its_certificate(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        main, ["egress-ca", "init", "--dir", str(tmp_path / "ca"), "--public-dir", str(tmp_path / "pub")]
    )
    assert made.exit_code == 0, made.output
    assert "ca-key.pem (the proxy's only, 0600)" in made.output
    assert sorted(path.name for path in (tmp_path / "pub").iterdir()) == ["bubble-bundle.pem", "ca-cert.pem"]
    assert (tmp_path / "ca" / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(main, ["egress-ca", "init", "--dir", str(tmp_path / "ca")])
    assert again.exit_code == 1
    assert "exists: the egress CA is made once" in again.output
    assert "Traceback" not in again.output


def _site_intermediate(directory: Path) -> tuple[Path, AuthorityFiles]:
    """A site's root CA (what its bubbles already trust) and an intermediate under it, given to the proxy."""
    now = datetime.datetime.now(datetime.UTC)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Site root CA")])

    def issued(subject: x509.Name, public: ec.EllipticCurvePublicKey, path_length: int) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )

    root = issued(root_name, root_key.public_key(), 1)
    intermediate = issued(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Site egress CA")]), key.public_key(), 0)
    directory.mkdir()
    (directory / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    files = AuthorityFiles.within(directory)
    files.cert_path.write_bytes(intermediate.public_bytes(serialization.Encoding.PEM))
    descriptor = os.open(files.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return directory / "root.pem", files


def test_a_sites_intermediate_ca_is_sent_with_each_leaf_so_clients_trusting_its_root_verify(tmp_path: Path) -> None:
    root, files = _site_intermediate(tmp_path / "site")
    authority = EgressAuthority.load(files)
    server_side, client_side = socket.socketpair()
    client = ssl.create_default_context(cafile=str(root))
    with server_side, client_side:
        handshake = threading.Thread(
            target=lambda: authority.context_for("api.example.org").wrap_socket(server_side, server_side=True).close()
        )
        handshake.start()
        with client.wrap_socket(client_side, server_hostname="api.example.org") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "api.example.org"),),)
        handshake.join(timeout=5)
    authority.close()
