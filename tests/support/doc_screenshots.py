"""The guides' pictures, taken by the browser tests: a page's picture changes when the page does.

With ``INFRACALC_DOC_SCREENSHOTS=1`` (``make docs-screenshots``), :func:`doc_screenshot` saves a picture
as ``docs/images/generated/<language>/<name>.png``, where the guides show it; otherwise it does nothing,
so that the tests run as usual. A unit test checks that every picture a guide shows is taken by a test.
"""

from __future__ import annotations

import os
from typing import Protocol

from infracalc.config import SOURCE_ROOT

#: Where the pictures go, one folder per language.
GENERATED = SOURCE_ROOT / "docs" / "images" / "generated"
#: The variable that turns the pictures on.
ENABLED_VARIABLE = "INFRACALC_DOC_SCREENSHOTS"
#: The size of the browser window the guides' pictures are taken in.
VIEWPORT = {"width": 1280, "height": 800}


class Screenshottable(Protocol):
    """A Playwright page or locator."""

    def screenshot(self, *, path: str) -> bytes: ...


def enabled() -> bool:
    """Whether this run takes the guides' pictures."""
    return os.environ.get(ENABLED_VARIABLE) == "1"


def doc_screenshot(target: Screenshottable, language: str, name: str) -> None:
    """Save ``target`` as the guides' picture ``name`` in ``language`` (``fr`` or ``en``), when enabled."""
    if language not in {"fr", "en"}:
        raise ValueError(f"the guides are in fr and en, not {language!r}")
    if not enabled():
        return
    folder = GENERATED / language
    folder.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(folder / f"{name}.png"))


def doc_screenshot_one_language(target: Screenshottable, name: str) -> None:
    """Save ``target`` as the picture ``name`` of both languages' guides, for a page in one language only.

    JupyterLab, for instance, is in English whatever the person's language: the same picture serves both.
    """
    for language in ("fr", "en"):
        doc_screenshot(target, language, name)
