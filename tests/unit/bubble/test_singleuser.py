"""``python -m infracalc.bubble.singleuser``: jupyterhub-singleuser, with rfc3987_syntax kept out of the process."""

from __future__ import annotations

import subprocess
import sys

#: Runs the launcher with JupyterHub's entry point replaced by a probe of what the server would import
#: (a stand-in module: importing the real one first would import jsonschema before the launcher runs).
PROBE = """
import sys
import types

def probe():
    import jsonschema
    try:
        import rfc3987_syntax
    except ImportError:
        print("rfc3987_syntax absent")
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    print("date-time" in checker.checkers, "iri" in checker.checkers, sys.argv[1:])
    return 0

sys.modules["jupyterhub.singleuser"] = types.SimpleNamespace(main=probe)
sys.argv = ["infracalc.bubble.singleuser", "--port=8888"]
from infracalc.bubble.singleuser import main
main()
"""


def test_the_server_starts_without_rfc3987_syntax_and_keeps_its_other_format_checks() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["rfc3987_syntax absent", "True False ['--port=8888']"]


def test_elsewhere_rfc3987_syntax_still_imports() -> None:
    # The kernels and the rest of the environment are untouched: the module is installed and imports.
    done = subprocess.run(
        [sys.executable, "-c", "import rfc3987_syntax"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
