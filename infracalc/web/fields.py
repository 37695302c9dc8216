"""A form checked field by field: every refused field at once, each said as a sentence a person can act on.

The API checks a body with its msgspec struct, which stops at the first bad field and words it for
programmers (``Expected `str` matching regex ...``). A page checks the same values with the same
types, one field at a time (:func:`field_errors`: each field's own annotated type, taken from the
struct, so the limits stay written once), and says for each refused field the sentence the form
gives for it: what the field takes, in the page's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from infracalc.web.form_state import Said

S = TypeVar("S", bound=msgspec.Struct)


def field_errors(
    struct: type[msgspec.Struct], values: Mapping[str, Any], sentences: Mapping[str, Said]
) -> dict[str, Said]:
    """The fields of ``values`` that ``struct`` refuses, each with its sentence, in the order of ``values``.

    Raises:
        KeyError: a refused field has no sentence (every field a form checks has one).
    """
    types = {field.name: field.type for field in msgspec.structs.fields(struct)}
    errors: dict[str, Said] = {}
    for name, value in values.items():
        try:
            msgspec.convert(value, types[name])
        except msgspec.ValidationError:
            errors[name] = sentences[name]
    return errors


def convert(struct: type[S], values: Mapping[str, Any], sentences: Mapping[str, Said]) -> S | dict[str, Said]:
    """``values`` as ``struct`` when every field is right; else every refused field with its sentence."""
    errors = field_errors(struct, values, sentences)
    if errors:
        return errors
    return msgspec.convert(dict(values), struct)


__all__ = ["convert", "field_errors"]
