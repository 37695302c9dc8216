r"""File names as researchers give them: checked, and brought to one Unicode form, before anything is stored.

A file name becomes the last segment of an object key (``projects/<p>/imports/<id>/<name>``) and,
later, a file in a bubble; it must not be able to climb out of its folder, hide what it is, or be
spelled two ways. :func:`check_file_name` therefore:

- normalises to Unicode NFC (``"e" + combining acute`` becomes ``"é"``), so that the same name
  typed on macOS (NFD) and on Linux (NFC) is one name; the normalised form is the one stored;
- refuses an empty name, ``.`` and ``..``, any ``/`` or ``\`` (a path, not a name), control
  characters (``\n``, NUL...), line and paragraph separators, and the bidirectional overrides and
  isolates that can make ``txt.exe`` look like ``exe.txt`` (CVE-2021-42574, "Trojan source");
- refuses leading or trailing white space, which no one types on purpose and few notice;
- refuses more than 255 bytes of UTF-8 (the limit of most file systems).
"""

from __future__ import annotations

import unicodedata

from infracalc.errors import InfracalcError

#: The longest name accepted, in bytes of UTF-8 (POSIX ``NAME_MAX`` on most file systems).
MAX_NAME_BYTES = 255

#: Characters that reorder text on screen without being visible (Unicode's bidirectional controls).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class InvalidFileName(InfracalcError):
    """The file name cannot be accepted; the message says why."""


def check_file_name(name: str) -> str:
    """The name in NFC form, or :class:`InvalidFileName` saying what is wrong with it.

    Raises:
        InvalidFileName: the name is empty, ``.`` or ``..``, holds a path separator, a control or
            bidirectional character, starts or ends with white space, or is longer than 255 bytes.
    """
    normal = unicodedata.normalize("NFC", name)
    if not normal:
        raise InvalidFileName("the file name is empty")
    if normal in {".", ".."}:
        raise InvalidFileName(f"{normal!r} is not a file name")
    if "/" in normal or "\\" in normal:
        raise InvalidFileName(f"the file name {normal!r} holds a path separator (/ or \\): give the file's name only")
    for character in normal:
        if unicodedata.category(character) in {"Cc", "Zl", "Zp"}:
            raise InvalidFileName(f"the file name {normal!r} holds a control character (U+{ord(character):04X})")
        if character in BIDI_CONTROLS:
            raise InvalidFileName(
                f"the file name {normal!r} holds an invisible text-direction character (U+{ord(character):04X})"
            )
    if normal != normal.strip():
        raise InvalidFileName(f"the file name {normal!r} starts or ends with white space")
    size = len(normal.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidFileName(f"the file name is {size} bytes long in UTF-8; at most {MAX_NAME_BYTES} are accepted")
    return normal


__all__ = ["MAX_NAME_BYTES", "InvalidFileName", "check_file_name"]
