"""Identity: the Keycloak realm as code, its demo accounts, token verification, bubble tokens, the proxy's secret."""

from __future__ import annotations

from infracalc.identity.realm import (
    PLACEHOLDERS,
    REALM_NAME,
    DemoAccount,
    RealmConfig,
    RealmError,
    generate_demo_accounts,
    new_account,
    render_realm,
    user_representation,
    write_realm_import,
)
from infracalc.identity.tokens import (
    Claims,
    JwksUnavailable,
    SecondFactorMissing,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
    TokenVerifier,
    TokenWrongAudience,
    TokenWrongIssuer,
    TokenWrongType,
)

__all__ = [
    "PLACEHOLDERS",
    "REALM_NAME",
    "Claims",
    "DemoAccount",
    "JwksUnavailable",
    "RealmConfig",
    "RealmError",
    "SecondFactorMissing",
    "TokenError",
    "TokenExpired",
    "TokenMalformed",
    "TokenSignatureInvalid",
    "TokenVerifier",
    "TokenWrongAudience",
    "TokenWrongIssuer",
    "TokenWrongType",
    "generate_demo_accounts",
    "new_account",
    "render_realm",
    "user_representation",
    "write_realm_import",
]
