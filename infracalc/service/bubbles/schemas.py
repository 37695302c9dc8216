"""What the bubbles API accepts and returns."""

from __future__ import annotations

from datetime import datetime

import msgspec

from infracalc.service.projects.schemas import Slug, Username


class BubbleCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A bubble the hub is starting: whose, and for which project."""

    project: Slug
    username: Username


class BubbleCreated(msgspec.Struct):
    """The new bubble; ``token`` is shown this once and never again (the service keeps a digest)."""

    id: str
    project: str
    username: str
    token: str
    created_at: datetime
