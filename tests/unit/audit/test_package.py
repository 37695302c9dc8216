"""The audit package's names, imported lazily, are what their modules define, whatever was imported before."""

from __future__ import annotations

import subprocess
import sys

import infracalc.audit


def run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (a clean import state) and return what it printed."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_every_exported_name_is_its_modules_object_after_every_submodule_was_imported() -> None:
    # A submodule import binds the submodule's name on the package: a name exported by the package
    # must never be shadowed that way (``verify`` the function, not a module).
    code = (
        "import importlib, pkgutil, types, infracalc.audit as package\n"
        "for found in pkgutil.iter_modules(package.__path__):\n"
        "    importlib.import_module(f'infracalc.audit.{found.name}')\n"
        "from infracalc.audit import verify\n"
        "print(sorted(n for n in package.__all__ if isinstance(getattr(package, n), types.ModuleType)), "
        "isinstance(verify, types.ModuleType))"
    )
    assert run(code) == "[] False"
    assert {name for name in infracalc.audit.__all__ if not hasattr(infracalc.audit, name)} == set()


def test_the_verification_worker_starts_without_sqlalchemy() -> None:
    code = "import sys, infracalc.audit.segments; print('sqlalchemy' in sys.modules)"
    assert run(code) == "False"
