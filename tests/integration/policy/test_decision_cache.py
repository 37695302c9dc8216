"""Cached decisions against the real OPA: a write by this client applies at once, another's within a second."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from infracalc.policy import OpaSettings, PolicyClient
from tests.fixtures.servers import OpaServer

pytestmark = pytest.mark.integration


def read_question(slug: str) -> dict[str, Any]:
    caller = {"kind": "person", "username": "dora", "roles": ["researcher"], "acr": "mfa"}
    return {"action": "project.read", "caller": caller, "resource": {"project": slug}}


async def test_writes_of_this_client_apply_at_once_and_others_within_the_cache_lifetime(opa: OpaServer) -> None:
    slug = "cache-" + secrets.token_hex(4)
    async with (
        PolicyClient(OpaSettings(url=opa.url)) as service,
        PolicyClient(OpaSettings(url=opa.url)) as other_replica,
    ):
        await service.put_data(f"store/infracalc/projects/{slug}", {"title": "T", "governance": "INFRACALC"})
        await service.put_data(f"store/infracalc/members/{slug}", {})
        first = await service.decide("infracalc.authz", read_question(slug), cached=True)
        assert not first.allow

        # Another process adds dora: this client answers from its cache until the entry is a second old.
        await other_replica.put_data(f"store/infracalc/members/{slug}", {"dora": {"role": "member"}})
        stale = await service.decide("infracalc.authz", read_question(slug), cached=True)
        uncached = await service.decide("infracalc.authz", read_question(slug))
        await asyncio.sleep(1.1)
        fresh = await service.decide("infracalc.authz", read_question(slug), cached=True)
        assert (stale.allow, uncached.allow, fresh.allow) == (False, True, True)

        # This client removes her: the very next question is asked again.
        await service.put_data(f"store/infracalc/members/{slug}", {})
        after_removal = await service.decide("infracalc.authz", read_question(slug), cached=True)
        assert not after_removal.allow
        await service.delete_data(f"store/infracalc/members/{slug}")
        await service.delete_data(f"store/infracalc/projects/{slug}")
