"""The root of INFRACALC's exceptions.

Every package defines its own errors as subclasses of :class:`InfracalcError`, so callers (the
CLI, later the API) can turn any of them into a clear message without catching bare exceptions.
"""

from __future__ import annotations


class InfracalcError(Exception):
    """Base class of every error INFRACALC raises on purpose; its message is meant for people."""
