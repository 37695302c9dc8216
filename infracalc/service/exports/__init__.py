"""The exports domain: bubbles submit files, CASD staff review them, project members download them."""

from __future__ import annotations

from infracalc.service.exports.controller import ExportController, ProjectExportController

__all__ = ["ExportController", "ProjectExportController"]
