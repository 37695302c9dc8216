"""The CASD modules are plain libraries: importing them loads no web framework."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_casd_modules_loads_no_web_framework() -> None:
    # scikit-learn and numpy too: the risk model scores in plain Python, training alone imports them.
    frameworks = "('litestar', 'jupyterhub', 'msgspec', 'sklearn', 'numpy')"
    modules = (
        "infracalc.casd.sessions, infracalc.casd.session_search, infracalc.casd.objects, infracalc.casd.imports, "
        "infracalc.casd.exports, infracalc.casd.office, infracalc.casd.filetypes, infracalc.casd.risk_model"
    )
    code = f"import sys, {modules}; print(sorted(m for m in {frameworks} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
