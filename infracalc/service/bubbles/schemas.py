"""What the bubbles API accepts and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db.models import ADDRESS_LENGTH
from infracalc.service.projects.schemas import Slug, Username

#: An IP address as text (``10.233.0.2``, ``fd00::2``); the service checks and normalises it.
Address = Annotated[str, msgspec.Meta(min_length=2, max_length=ADDRESS_LENGTH, examples=["10.233.0.2"])]


class BubbleCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A bubble the hub is starting: whose, for which project, and at which network address.

    ``address`` must be given: the address the egress proxy will see the bubble's connections come
    from, or ``null`` when the hub does not know it yet (a container gets its address when it starts),
    to be given with ``PUT /api/v1/bubbles/{id}/address``. Until then the proxy refuses the bubble.
    """

    project: Slug
    username: Username
    address: Address | None


class BubbleAddress(msgspec.Struct, forbid_unknown_fields=True):
    """The network address a bubble runs at, once the hub knows it."""

    address: Address


class BubbleCreated(msgspec.Struct):
    """The new bubble; ``token`` is shown this once and never again (the service keeps a digest)."""

    id: str
    project: str
    username: str
    token: str
    created_at: datetime
    address: str | None


class BubbleOut(msgspec.Struct):
    """A bubble, as the hub sees it (never its token)."""

    id: str
    project: str
    username: str
    address: str | None
    created_at: datetime
    revoked_at: datetime | None
