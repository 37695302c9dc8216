"""MkDocs hooks: the generated references put into their pages, and the OpenAPI document beside them.

A page asks for a generated part with a line of its own, ``<!-- generated: NAME -->``, where NAME is
one of :data:`GENERATORS`; an unknown name stops the build. Each part is made once per build and used
by both languages' pages (the code's words are English).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # MkDocs loads this file by path; its siblings are imported as docs.hooks.*
    sys.path.insert(0, str(ROOT))

from docs.hooks import api_reference, cli_reference, policy_reference, settings_reference  # noqa: E402

#: Each generated part, by the name a page asks for it with.
GENERATORS: dict[str, Callable[[], str]] = {
    "api": api_reference.render,
    "cli": cli_reference.render,
    "policies": policy_reference.render,
    "settings": settings_reference.render,
    "compose-settings": settings_reference.render_compose,
}
_MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


class UnknownPart(Exception):
    """A page asks for a generated part that does not exist."""


@functools.cache
def part(name: str) -> str:
    """The generated part ``name`` (made once per process)."""
    if name not in GENERATORS:
        raise UnknownPart(f"no generated part {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]()


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with its part."""
    return _MARKER.sub(lambda match: part(match.group(1)), markdown)


def on_post_build(config: Any, **_: Any) -> None:
    """Write the OpenAPI document the API reference was made from, for download (``openapi.json``)."""
    site = Path(config["site_dir"])
    (site / "openapi.json").write_text(json.dumps(api_reference.openapi_document(), indent=2), encoding="utf-8")
