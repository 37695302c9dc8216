"""The audit package is a plain library: importing it loads no web framework."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_audit_package_loads_no_web_framework() -> None:
    frameworks = "('litestar', 'jupyterhub', 'msgspec')"
    code = f"import sys, infracalc.audit; print(sorted(m for m in {frameworks} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
