"""INFRACALC: secure, API-enabled research computing, the lighter tier of CASD's secure bubbles."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
