"""The egress proxy's credential scheme and its setting: only the configured secret passes, never without one."""

from __future__ import annotations

from typing import cast

import pytest

from infracalc.config import SettingError
from infracalc.identity import TokenError, proxy_secret
from infracalc.service.auth import ProxyScheme, ProxySecretRefused
from infracalc.service.context import ServiceContext
from infracalc.service.principals import EgressProxy
from infracalc.service.settings import ServiceSettings

#: The scheme needs no collaborator: the digest is all it compares with.
NO_CONTEXT = cast("ServiceContext", None)

BASE_ENV = {"INFRACALC_API_CLIENT_SECRET": "x", "INFRACALC_HOME": "/nonexistent"}


async def test_the_configured_secret_is_the_egress_proxy() -> None:
    secret = proxy_secret.mint()
    scheme = ProxyScheme(proxy_secret.digest(secret))
    assert scheme.recognises(secret)
    principal = await scheme.authenticate(secret, NO_CONTEXT)
    assert principal == EgressProxy()
    assert principal.actor == "proxy:egress"
    assert principal.caller() == {"kind": "proxy", "username": "egress"}
    assert principal.roles == frozenset()


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        (proxy_secret.mint(), "an unknown egress proxy secret"),
        ("iep_short", "a malformed egress proxy secret"),
        ("iep_" + "X" * 64, "a malformed egress proxy secret"),
    ],
)
async def test_other_secrets_are_refused(credential: str, message: str) -> None:
    scheme = ProxyScheme(proxy_secret.digest(proxy_secret.mint()))
    with pytest.raises(ProxySecretRefused, match=message) as refused:
        await scheme.authenticate(credential, NO_CONTEXT)
    assert isinstance(refused.value, TokenError), "answered 401 like every other bad credential"
    assert credential not in str(refused.value)


async def test_without_a_configured_digest_every_secret_is_refused() -> None:
    secret = proxy_secret.mint()
    scheme = ProxyScheme(None)
    assert "configured=False" in repr(scheme)
    with pytest.raises(ProxySecretRefused, match="no egress proxy is configured"):
        await scheme.authenticate(secret, NO_CONTEXT)


@pytest.mark.parametrize("credential", ["ibt_0123456789abcdef_" + "0" * 64, "a.b.c", "", "IEP_" + "0" * 64])
def test_other_credentials_are_not_recognised(credential: str) -> None:
    assert not ProxyScheme("0" * 64).recognises(credential)


def test_the_digest_is_read_from_its_variable_lower_cased() -> None:
    digest = proxy_secret.digest(proxy_secret.mint())
    env = {**BASE_ENV, "INFRACALC_EGRESS_PROXY_SECRET_SHA256": digest.upper()}
    assert ServiceSettings.from_env(env).egress_proxy_secret_sha256 == digest
    assert ServiceSettings.from_env(BASE_ENV).egress_proxy_secret_sha256 is None


@pytest.mark.parametrize("value", ["iep_" + "0" * 64, "abc", "0" * 63])
def test_a_value_that_is_not_a_digest_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingError, match="INFRACALC_EGRESS_PROXY_SECRET_SHA256") as refused:
        ServiceSettings.from_env({**BASE_ENV, "INFRACALC_EGRESS_PROXY_SECRET_SHA256": value})
    assert value not in str(refused.value), "never echo what may be the secret itself"
