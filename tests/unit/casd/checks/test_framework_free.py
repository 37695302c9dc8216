"""The output checks are a plain library: importing them loads no web framework and no service code."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_checks_loads_no_web_framework_nor_the_service() -> None:
    unwanted = "('litestar', 'jupyterhub', 'msgspec', 'infracalc.service', 'openpyxl')"
    code = f"import sys, infracalc.casd.checks; print(sorted(m for m in {unwanted} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
