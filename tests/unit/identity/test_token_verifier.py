"""TokenVerifier against crafted tokens, with a local JWKS server standing in for Keycloak's.

The real-Keycloak path (a token from an actual login, a service-account token) is proven in
``tests/integration/identity/test_tokens.py``; here each refusal is isolated by changing exactly
one thing in an otherwise valid token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infracalc.identity.tokens import (
    JwksUnavailable,
    SecondFactorMissing,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
    TokenVerifier,
    TokenWrongAudience,
    TokenWrongIssuer,
    TokenWrongType,
)

ISSUER = "http://127.0.0.1:1/realms/infracalc"


class JwksDouble:
    """A tiny HTTP server publishing a JWKS on 127.0.0.1, counting the requests it gets."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        self.status = 200
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.requests += 1
                body = json.dumps(double.document).encode()
                self.send_response(double.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def publish(self, *keys: tuple[str, Any, str]) -> None:
        """Publish (kid, private key, alg) as public signing keys, plus an encryption key Keycloak also lists."""
        entries = []
        for kid, private_key, alg in keys:
            entry = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
            entries.append({**entry, "kid": kid, "alg": alg, "use": "sig"})
        enc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        enc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(enc_key.public_key()))
        entries.append({**enc, "kid": "enc-1", "alg": "RSA-OAEP", "use": "enc"})
        self.document = {"keys": entries}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksDouble]:
    double = JwksDouble()
    double.publish(("k1", rsa_key, "RS256"))
    yield double
    double.close()


@pytest.fixture
def verifier(jwks: JwksDouble) -> TokenVerifier:
    return TokenVerifier(ISSUER, jwks_url=jwks.url, http_timeout=2.0)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ["infracalc-api", "account"],
        "sub": "0b1e3c9e-user",
        "typ": "Bearer",
        "azp": "jupyterhub",
        "preferred_username": "alice",
        "realm_access": {"roles": ["researcher", "default-roles-infracalc"]},
        "acr": "mfa",
        "amr": ["pwd", "otp"],
        "iat": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def sign(payload: dict[str, Any], key: Any, *, kid: str = "k1", alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def test_a_valid_token_gives_its_claims(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    result = verifier.verify(sign(claims(), rsa_key))
    assert result.username == "alice"
    assert result.subject == "0b1e3c9e-user"
    assert result.roles == {"researcher", "default-roles-infracalc"}
    assert (result.acr, result.amr) == ("mfa", ("pwd", "otp"))
    assert result.audience == ("infracalc-api", "account")
    assert result.authorized_party == "jupyterhub"
    assert result.expires_at.timestamp() > time.time()


def test_auth_time_is_the_login_time(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    login = int(time.time()) - 200
    result = verifier.verify(sign(claims(auth_time=login), rsa_key))
    assert result.auth_time == datetime.fromtimestamp(login, tz=UTC)


@pytest.mark.parametrize("auth_time", [None, "1700000000", True, 10**20])
def test_a_missing_or_unreadable_auth_time_is_none(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, auth_time: object
) -> None:
    # Never read as a login time: a route that wants a recent login then refuses.
    assert verifier.verify(sign(claims(auth_time=auth_time), rsa_key)).auth_time is None


def test_no_second_factor_is_refused(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SecondFactorMissing):
        verifier.verify(sign(claims(acr="pwd"), rsa_key))
    with pytest.raises(SecondFactorMissing):
        verifier.verify(sign(claims(acr=None), rsa_key))


def test_expired_token_is_refused_beyond_the_leeway(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    assert verifier.verify(sign(claims(iat=now - 400, exp=now - 10), rsa_key)).username == "alice"  # within 30 s
    with pytest.raises(TokenExpired):
        verifier.verify(sign(claims(iat=now - 400, exp=now - 60), rsa_key))


def test_token_for_another_audience_is_refused(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenWrongAudience):
        verifier.verify(sign(claims(aud="jupyterhub"), rsa_key))
    assert verifier.verify(sign(claims(aud="jupyterhub"), rsa_key), audience="jupyterhub").username == "alice"


def test_token_from_another_issuer_is_refused(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenWrongIssuer):
        verifier.verify(sign(claims(iss="http://127.0.0.1:1/realms/master"), rsa_key))


def test_id_token_is_not_an_access_token(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenWrongType):
        verifier.verify(sign(claims(typ="ID"), rsa_key))
    with pytest.raises(TokenWrongType):
        verifier.verify(sign(claims(typ=None), rsa_key))


def test_same_kid_other_key_is_refused(
    verifier: TokenVerifier, jwks: JwksDouble, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(TokenSignatureInvalid, match="signature does not match"):
        verifier.verify(sign(claims(), other_rsa_key, kid="k1"))


def test_unknown_kid_is_refused_after_one_refresh(
    verifier: TokenVerifier, jwks: JwksDouble, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(TokenSignatureInvalid, match="unknown key"):
        verifier.verify(sign(claims(), other_rsa_key, kid="attacker"))
    assert jwks.requests == 1


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(
    verifier: TokenVerifier, jwks: JwksDouble, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier.verify(sign(claims(), rsa_key))
    for n in range(50):
        with pytest.raises(TokenSignatureInvalid):
            verifier.verify(sign(claims(), other_rsa_key, kid=f"bogus-{n}"))
    assert jwks.requests == 1


def test_rotated_key_is_fetched_when_its_kid_appears(
    jwks: JwksDouble, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = [1000.0]
    verifier = TokenVerifier(ISSUER, jwks_url=jwks.url, clock=lambda: clock[0])
    verifier.verify(sign(claims(), rsa_key))
    jwks.publish(("k1", rsa_key, "RS256"), ("k2", other_rsa_key, "RS256"))
    with pytest.raises(TokenSignatureInvalid):  # within the refresh interval: not fetched again
        verifier.verify(sign(claims(), other_rsa_key, kid="k2"))
    clock[0] += 11
    assert verifier.verify(sign(claims(), other_rsa_key, kid="k2")).username == "alice"
    assert jwks.requests == 2


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_symmetric_and_unsigned_tokens_are_refused(verifier: TokenVerifier, jwks: JwksDouble, alg: str) -> None:
    key = "a-shared-secret-of-at-least-32-bytes!" if alg == "HS256" else None
    token = jwt.encode(claims(), key, algorithm=alg, headers={"kid": "k1"})
    with pytest.raises(TokenSignatureInvalid, match="not accepted"):
        verifier.verify(token)
    assert jwks.requests == 0


def test_key_is_held_to_its_declared_algorithm(
    verifier: TokenVerifier, jwks: JwksDouble, rsa_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(TokenSignatureInvalid, match="is for RS256"):
        verifier.verify(sign(claims(), rsa_key, alg="PS256"))


def test_encryption_keys_are_never_used_for_signatures(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenSignatureInvalid, match="unknown key"):
        verifier.verify(sign(claims(), rsa_key, kid="enc-1"))


def test_es256_keys_work(jwks: JwksDouble) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish(("ec1", key, "ES256"))
    verifier = TokenVerifier(ISSUER, jwks_url=jwks.url)
    assert verifier.verify(sign(claims(), key, kid="ec1", alg="ES256")).acr == "mfa"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_malformed(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(token)


def test_missing_kid_or_claims_is_malformed(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenMalformed, match="kid"):
        verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))
    with pytest.raises(TokenMalformed, match="sub"):
        verifier.verify(sign(claims(sub=None), rsa_key))
    with pytest.raises(TokenMalformed, match="preferred_username"):
        verifier.verify(sign(claims(preferred_username=None), rsa_key))


def test_unreachable_jwks_fails_closed(rsa_key: rsa.RSAPrivateKey) -> None:
    double = JwksDouble()
    url = double.url
    double.close()
    verifier = TokenVerifier(ISSUER, jwks_url=url, http_timeout=1.0)
    with pytest.raises(JwksUnavailable):
        verifier.verify(sign(claims(), rsa_key))
    with pytest.raises(JwksUnavailable):  # and keeps failing (without hammering) until it can fetch
        verifier.verify(sign(claims(), rsa_key))


def test_jwks_error_status_or_no_signing_key_fails_closed(jwks: JwksDouble, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.status = 503
    with pytest.raises(JwksUnavailable):
        TokenVerifier(ISSUER, jwks_url=jwks.url).verify(sign(claims(), rsa_key))
    jwks.status = 200
    jwks.document = {"keys": [k for k in jwks.document["keys"] if k["use"] == "enc"]}
    with pytest.raises(JwksUnavailable, match="no usable signing key"):
        TokenVerifier(ISSUER, jwks_url=jwks.url).verify(sign(claims(), rsa_key))


def test_stale_keys_are_refetched_and_a_failed_refetch_fails_closed(
    jwks: JwksDouble, rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = [0.0]
    verifier = TokenVerifier(ISSUER, jwks_url=jwks.url, jwks_max_age=60, clock=lambda: clock[0])
    token = sign(claims(), rsa_key)
    verifier.verify(token)
    clock[0] += 61
    verifier.verify(token)
    assert jwks.requests == 2
    jwks.status = 500
    clock[0] += 61
    with pytest.raises(JwksUnavailable):
        verifier.verify(token)
    with pytest.raises(JwksUnavailable):  # still stale, refetch rate-limited: no fallback to old keys
        verifier.verify(token)
