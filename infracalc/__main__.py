"""Allow ``python -m infracalc``."""

from __future__ import annotations

from infracalc.cli import main

main()
