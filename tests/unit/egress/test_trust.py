"""The bubble bundle: the system's CAs, then the egress CA's certificate; never a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.egress.trust import TrustError, bubble_bundle, trust_environment, write_bubble_bundle
from infracalc.proxy.authority import create_authority


def test_the_bundle_holds_the_system_cas_then_the_egress_ca(tmp_path: Path) -> None:
    files = create_authority(tmp_path / "ca")
    system = tmp_path / "system.pem"
    system.write_text("-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n")
    text = bubble_bundle(files.cert_path, system=system)
    assert text.index("SYSTEM") < text.index(files.cert_path.read_text().strip())
    written = write_bubble_bundle(files.cert_path, tmp_path / "out" / "bundle.pem", system=system)
    assert written.read_text() == text
    assert written.stat().st_mode & 0o777 == 0o644


def test_a_file_with_a_key_or_without_a_certificate_is_refused(tmp_path: Path) -> None:
    files = create_authority(tmp_path / "ca")
    both = tmp_path / "both.pem"
    both.write_bytes(files.cert_path.read_bytes() + files.key_path.read_bytes())
    with pytest.raises(TrustError, match="holds a private key"):
        bubble_bundle(both)
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing")
    with pytest.raises(TrustError, match="no PEM certificate"):
        bubble_bundle(empty)


def test_the_usual_clients_are_pointed_at_the_bundle() -> None:
    env = trust_environment("/b.pem", "/ca.pem")
    assert {env[name] for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")} == {"/b.pem"}
    assert env["NODE_EXTRA_CA_CERTS"] == "/ca.pem"
