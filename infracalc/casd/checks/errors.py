"""Errors of the output checks.

:func:`~infracalc.casd.checks.check_output` never lets them out for bad content: a file that cannot
be read within the limits becomes a FAIL finding whose reason is the error's message. They are
raised inside the package so that a limit can stop a parse from deep inside a reader.
"""

from __future__ import annotations

from infracalc.errors import InfracalcError


class CheckError(InfracalcError):
    """Root of the output checks' errors."""


class ParseRefused(CheckError):
    """A file cannot be parsed within the limits (too many columns or rows, a huge cell, a broken archive)."""
