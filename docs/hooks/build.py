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
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # MkDocs loads this file by path; its siblings are imported as docs.hooks.*
    sys.path.insert(0, str(ROOT))

from docs.hooks import api_reference, cli_reference, metrics_reference, policy_reference, settings_reference  # noqa: E402

#: Each generated part, by the name a page asks for it with.
GENERATORS: dict[str, Callable[[], str]] = {
    "api": lambda: api_reference.render(openapi_document()),
    "cli": cli_reference.render,
    "metrics": metrics_reference.render,
    "policies": policy_reference.render,
    "settings": settings_reference.render,
    "compose-settings": settings_reference.render_compose,
}
_MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


class UnknownPart(Exception):
    """A page asks for a generated part that does not exist."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document (built once per process: both languages' pages and the download use it)."""
    return api_reference.openapi_document()


@functools.cache
def part(name: str) -> str:
    """The generated part ``name`` (made once per process)."""
    if name not in GENERATORS:
        raise UnknownPart(f"no generated part {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]()


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with its part."""
    return _MARKER.sub(lambda match: part(match.group(1)), markdown)


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add the OpenAPI document the API reference was made from, for download (``openapi.json``).

    It is written to a folder of its own and added as an ordinary file: the i18n plugin needs each file's
    source path, which a file generated in memory does not have.
    """
    if files.get_file_from_path("openapi.json") is None:
        folder = Path(tempfile.mkdtemp(prefix="infracalc-docs-"))
        (folder / "openapi.json").write_text(json.dumps(openapi_document(), indent=2), encoding="utf-8")
        files.append(File("openapi.json", str(folder), config["site_dir"], config["use_directory_urls"]))
    return files
