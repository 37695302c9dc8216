"""JSON bodies the service accepts: well-formed, nested at most :data:`MAX_DEPTH` deep, no key twice in an object.

Litestar decodes a route's body with msgspec, which takes the last of two equal keys without a word
(``{"role": "member", "role": "lead"}`` would be a lead) and raises ``RecursionError`` on a body nested
about a thousand levels deep. :func:`check_json` reads the body first, with the standard library's
decoder and a hook that sees every object's pairs, and refuses both with 422 before any route sees it;
msgspec then decodes a body known to be sound into the route's schema. The second decoding costs a few
milliseconds on the largest bodies the service takes (a batch of a thousand egress decisions).

The same check guards JSON carried inside other bodies (the ``contributors`` field of an export form).
"""

from __future__ import annotations

import json
from typing import Any, Final

from infracalc.errors import InfracalcError

#: The deepest nesting of arrays and objects accepted (the top-level value is level 1).
MAX_DEPTH: Final = 32


class JsonRefused(InfracalcError):
    """A body that is not JSON (``malformed``), or JSON the service refuses (``too_deep``, ``duplicate_key``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``, refused when a key appears twice."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused("duplicate_key", f"the key {key!r} appears twice in one JSON object")
            seen.add(key)
    return found


def check_json(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of ``body``, checked: JSON, at most ``max_depth`` levels deep, no duplicate key.

    Raises:
        JsonRefused: ``malformed`` (not JSON, or not UTF-8), ``too_deep`` or ``duplicate_key``.
    """
    try:
        text = body.decode() if isinstance(body, bytes) else body
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        # The decoder's own limit (about a thousand levels) is far beyond ours: the same refusal.
        raise JsonRefused("too_deep", f"JSON nested deeper than {max_depth} levels is not accepted") from None
    except UnicodeDecodeError:
        raise JsonRefused("malformed", "the body is not UTF-8 text") from None
    except ValueError as error:  # JSONDecodeError, or a number too long to convert
        raise JsonRefused("malformed", f"the body is not valid JSON: {error}") from None
    if _deeper_than(value, max_depth):
        raise JsonRefused("too_deep", f"JSON nested deeper than {max_depth} levels is not accepted")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (walked level by level, no recursion)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, dict | list))
        level = below
    return False


__all__ = ["MAX_DEPTH", "JsonRefused", "check_json"]
