"""The projects domain: projects, members, governance switches."""

from __future__ import annotations

from infracalc.service.projects.controller import MeController, ProjectController

__all__ = ["MeController", "ProjectController"]
