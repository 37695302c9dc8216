"""The users domain: a person's projects and the networks they may sign in from."""

from __future__ import annotations

from infracalc.service.users.controller import UserController

__all__ = ["UserController"]
