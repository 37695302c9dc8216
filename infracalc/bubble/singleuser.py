"""A local bubble's server: ``jupyterhub-singleuser`` (with JupyterLab), without an import nobody uses.

Jupyter's event schemas are validated with jsonschema's format checker, and jsonschema registers a
checker for every format whose library is installed. For the ``iri`` formats it imports
``rfc3987_syntax`` (pulled in by ``jsonschema[format-nongpl]``), which builds some 35 Earley parsers
at import time: 2.3 s of CPU of the 3.8 s a bubble's server spends importing (measured on the
development machine), for a format no Jupyter schema uses. On a machine starting twenty bubbles at
once that is most of the wait. So the server runs with that one module marked absent, which
jsonschema handles as "not installed" (the ``iri`` formats are then not checked); the researcher's
kernels are other processes and still import it if they want it. The local spawner starts bubbles
with ``python -m infracalc.bubble.singleuser``.
"""

from __future__ import annotations

import sys

#: The module kept out of the server process (see above).
SKIPPED_MODULE = "rfc3987_syntax"


def main() -> None:
    """Run ``jupyterhub-singleuser`` with its arguments, ``rfc3987_syntax`` marked absent."""
    sys.modules.setdefault(SKIPPED_MODULE, None)  # type: ignore[arg-type]  # `import` then raises ImportError
    from jupyterhub.singleuser import main as singleuser  # noqa: PLC0415 - after the module is marked absent

    sys.exit(singleuser())


if __name__ == "__main__":
    main()
