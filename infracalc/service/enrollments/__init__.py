"""The enrollments domain: CASD staff invite people, who enroll remotely (two factors and their networks)."""

from __future__ import annotations

from infracalc.service.enrollments.controller import EnrollmentController

__all__ = ["EnrollmentController"]
