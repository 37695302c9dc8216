"""The imports domain: files streamed into a project's quarantine, reviewed by CASD staff, read once released."""

from __future__ import annotations

from infracalc.service.imports.controller import ImportReviewController, ProjectImportController

__all__ = ["ImportReviewController", "ProjectImportController"]
