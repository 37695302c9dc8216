"""Active content in HTML and SVG: finding it, and stripping it before an export is stored.

An exported page or drawing must not run code in a reviewer's or a reader's browser. The file is
read with the standard library's :class:`html.parser.HTMLParser`, in chunks (constant memory),
and written back without:

- script-like elements with their content (``script``, ``iframe``, ``object``, ``applet``,
  ``frameset``, ``noembed``, ``noframes``) and the void ones (``embed``, ``frame``);
- event handler attributes (``on*``), and attributes whose value, once entities are decoded and
  blanks removed, holds a ``javascript:``, ``vbscript:`` or ``data:text/html`` URL, or old CSS
  code hooks (``expression(``, ``-moz-binding``, ``behavior:``);
- SVG animations (``set``, ``animate``) that target an event handler or a link, which could
  install script; ``xml-stylesheet`` processing instructions (XSLT); comments (old browsers ran
  conditional comments); ``<style>`` elements holding CSS code hooks.

Everything else is kept: start tags without anything to remove are copied byte for byte (SVG is
case-sensitive), text is re-escaped (what the parser saw as text stays text in a browser), and
bytes that are not UTF-8 pass through unchanged (``surrogateescape``).
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from infracalc.casd.checks.errors import ParseRefused

#: The types :func:`strip_active_content` rewrites.
MARKUP_TYPES = frozenset({"html", "svg"})

_CHUNK = 1024 * 1024
#: The most markup the parser may hold unfinished (an unclosed comment, tag or script): bounds the
#: memory, and the time html.parser spends scanning it again at each chunk.
MAX_PENDING_CHARS = 16 * 1024 * 1024
_DROP_WITH_CONTENT = frozenset({"script", "iframe", "object", "applet", "frameset", "noembed", "noframes"})
_DROP_VOID = frozenset({"embed", "frame"})
_ANIMATIONS = frozenset({"set", "animate"})
_BAD_VALUES = ("javascript:", "vbscript:", "livescript:", "data:text/html", "data:application/xhtml")
_BAD_CSS = ("expression(", "-moz-binding", "behavior:", "javascript:")
_TAG_NAME = re.compile(r"<\s*([^\s/>]+)")

#: Kinds of active content, as reported.
SCRIPT_ELEMENT = "script or embedded-object element"
EVENT_HANDLER = "event handler attribute"
SCRIPT_URL = "script URL or CSS code in an attribute"
ANIMATION = "SVG animation targeting a handler or link"
OTHER = "stylesheet instruction, style code or conditional comment"


@dataclass(frozen=True, slots=True)
class ActiveContent:
    """What active content a page or drawing holds."""

    #: How many elements and attributes were (or would be) removed.
    removed: int
    #: The same, by kind (see the module's constants).
    kinds: dict[str, int] = field(default_factory=dict)


def _squeeze(value: str) -> str:
    """``value`` lowercased without blanks and control characters (as browsers read URL schemes)."""
    return "".join(char for char in value if char > " " and char != "\x7f").lower()


def _attribute_names(raw: str, start: int) -> list[str]:
    """The attribute names of a raw start tag, in their original case, in order."""
    names: list[str] = []
    i, end = start, len(raw)
    while i < end:
        while i < end and (raw[i].isspace() or raw[i] == "/"):
            i += 1
        if i >= end or raw[i] == ">":
            break
        j = i + 1  # a name may begin with "="; it ends at a blank, "/", ">" or "="
        while j < end and not (raw[j].isspace() or raw[j] in "/>="):
            j += 1
        names.append(raw[i:j])
        i = j
        while i < end and raw[i].isspace():
            i += 1
        if i < end and raw[i] == "=":
            i += 1
            while i < end and raw[i].isspace():
                i += 1
            if i < end and raw[i] in "\"'":
                close = raw.find(raw[i], i + 1)
                i = end if close < 0 else close + 1
            else:
                while i < end and not (raw[i].isspace() or raw[i] == ">"):
                    i += 1
    return names


class _Stripper(HTMLParser):
    """Re-emits markup without its active content (or only counts it, without ``write``)."""

    def __init__(self, write: Callable[[str], object] | None, *, svg: bool) -> None:
        super().__init__(convert_charrefs=True)
        self._write = write
        self._svg = svg
        self.kinds: Counter[str] = Counter()
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._raw_text = False  # inside <style>: text is CSS, copied as is
        self._open: list[tuple[str, str]] = []  # (lowercase, original) names of open elements

    def _emit(self, text: str) -> None:
        if self._write is not None:
            self._write(text)

    def _remove(self, kind: str) -> None:
        self.kinds[kind] += 1

    def _bad_attribute(self, tag: str, name: str, value: str | None) -> str | None:
        if name.startswith("on"):
            return EVENT_HANDLER
        if value is None:
            return None
        squeezed = _squeeze(value)
        if any(bad in squeezed for bad in _BAD_VALUES):
            return SCRIPT_URL
        if name == "style" and any(bad in squeezed for bad in _BAD_CSS):
            return SCRIPT_URL
        if tag in _ANIMATIONS and name == "attributename" and (squeezed.startswith("on") or squeezed.endswith("href")):
            return ANIMATION
        return None

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag and not closed:
                self._skip_depth += 1
            return
        if tag in _DROP_WITH_CONTENT or tag in _DROP_VOID:
            self._remove(SCRIPT_ELEMENT)
            if tag in _DROP_WITH_CONTENT and not closed:
                self._skip_tag, self._skip_depth = tag, 1
            return
        verdicts = [self._bad_attribute(tag, name, value) for name, value in attrs]
        if ANIMATION in verdicts:
            self._remove(ANIMATION)
            if not closed:
                self._skip_tag, self._skip_depth = tag, 1
            return
        raw = self.get_starttag_text() or f"<{tag}>"
        match = _TAG_NAME.match(raw)
        original = match.group(1) if match and match.group(1).lower() == tag else tag
        if any(verdicts):
            for verdict in verdicts:
                if verdict:
                    self._remove(verdict)
            names = _attribute_names(raw, match.end() if match else len(raw))
            if [name.lower() for name in names] != [name for name, _ in attrs]:
                names = [name for name, _ in attrs]
            kept = "".join(
                f" {names[i]}" if value is None else f' {names[i]}="{html.escape(value, quote=True)}"'
                for i, ((_, value), verdict) in enumerate(zip(attrs, verdicts, strict=True))
                if not verdict
            )
            raw = f"<{original}{kept}{' /' if closed else ''}>"
        if tag == "style" and not closed:
            self._raw_text = True
        if not closed:
            self._open.append((tag, original))
        self._emit(raw)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag in _DROP_WITH_CONTENT or tag in _DROP_VOID:
            return
        if tag == "style":
            self._raw_text = False
        original = tag
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                original = self._open[index][1]
                del self._open[index:]
                break
        self._emit(f"</{original}>")

    def handle_data(self, data: str) -> None:
        if self._skip_tag is not None:
            return
        if self._raw_text:
            if any(bad in _squeeze(data) for bad in _BAD_CSS):
                self._remove(OTHER)
                return
            self._emit(data)
            return
        self._emit(html.escape(data, quote=False))

    def handle_comment(self, data: str) -> None:
        if self._skip_tag is None and "script" in data.lower():
            self._remove(OTHER)

    def handle_decl(self, decl: str) -> None:
        if self._skip_tag is None:
            self._emit(f"<!{decl}>")

    def unknown_decl(self, data: str) -> None:
        # A CDATA section is text in SVG (kept, escaped: the same text, no markup can hide in it),
        # and in HTML a bogus comment that ends at the first ">" (dropped: it shows nothing).
        if self._svg and self._skip_tag is None and data.startswith("CDATA["):
            self._emit(html.escape(data[len("CDATA[") :], quote=False))

    def handle_pi(self, data: str) -> None:
        if self._skip_tag is not None:
            return
        if data.lower().startswith("xml-stylesheet"):
            self._remove(OTHER)
            return
        self._emit(f"<?{data}>")

    def result(self) -> ActiveContent:
        return ActiveContent(removed=sum(self.kinds.values()), kinds=dict(self.kinds))


def _run(path: Path, write: Callable[[str], object] | None, *, svg: bool) -> ActiveContent:
    stripper = _Stripper(write, svg=svg)
    try:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as source:
            while chunk := source.read(_CHUNK):
                stripper.feed(chunk)
                if len(stripper.rawdata) > MAX_PENDING_CHARS:
                    raise ParseRefused(
                        f"the markup holds an unfinished comment, tag or script longer than {MAX_PENDING_CHARS:,} "
                        "characters"
                    )
        stripper.close()
    except AssertionError as error:  # html.parser's way of rejecting some malformed declarations
        raise ParseRefused(f"the markup cannot be parsed: {error}") from None
    return stripper.result()


def find_active_content(path: Path, detected_type: str) -> ActiveContent:
    """Count the active content of the HTML or SVG file at ``path`` without changing it."""
    return _run(path, None, svg=detected_type == "svg")


def strip_active_content(path: Path, detected_type: str) -> bool:
    """Rewrite the HTML or SVG file at ``path`` in place without active content.

    Other types are left alone. The file is replaced atomically, and only when something was
    removed.

    Returns:
        Whether anything was removed.

    Raises:
        ParseRefused: the markup cannot be parsed within the limits (the file is left unchanged).
    """
    if detected_type not in MARKUP_TYPES:
        return False
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".stripped")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogateescape", newline="") as target:
            found = _run(path, target.write, svg=detected_type == "svg")
        if found.removed:
            os.chmod(temporary, path.stat().st_mode & 0o777)
            os.replace(temporary, path)
            return True
    finally:
        Path(temporary).unlink(missing_ok=True)
    return False
