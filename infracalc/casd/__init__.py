"""CASD's modules, reused by INFRACALC as shared libraries: imports, exports and sessions.

Each module is plain Python, free of web-framework imports (no Litestar, no JupyterHub): it takes
its collaborators (a database session, a boto3 client, a clock) as arguments, so that the service,
the command line and CASD's own tools can call it alike. ``tests/unit/casd`` checks it.

- :mod:`infracalc.casd.sessions`: the record of each bubble run and its timeline.
- :mod:`infracalc.casd.session_search`: finding sessions by user, project, time and words.
- :mod:`infracalc.casd.objects`: the object store of imports and exports (streamed uploads, governance tags).
- :mod:`infracalc.casd.filetypes`: what a file is from its content, one sniffer for imports and exports.
- :mod:`infracalc.casd.office`: office documents (OOXML, ODF) told apart from archives and checked within limits.
- :mod:`infracalc.casd.checks`: output checks (disclosure control) on files leaving a bubble.
"""

from __future__ import annotations
