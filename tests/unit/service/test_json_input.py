"""The JSON check every body goes through: nesting limit, duplicate keys, malformed text."""

from __future__ import annotations

import pytest

from infracalc.service.json_input import MAX_DEPTH, JsonRefused, check_json


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_sound_json_is_returned_as_decoded() -> None:
    assert check_json(b'{"a": [1, {"b": null}], "c": "\xc3\xa9"}') == {"a": [1, {"b": None}], "c": "é"}


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1000, 100_000])
def test_nesting_past_the_limit_is_refused(levels: int) -> None:
    with pytest.raises(JsonRefused, match=f"deeper than {MAX_DEPTH} levels") as refused:
        check_json(nested(levels))
    assert refused.value.reason == "too_deep"


def test_nesting_at_the_limit_is_accepted_objects_and_arrays_alike() -> None:
    assert check_json(nested(MAX_DEPTH)) is not None
    deep_objects = '{"a": ' * (MAX_DEPTH - 1) + "[]" + "}" * (MAX_DEPTH - 1)
    check_json(deep_objects)
    with pytest.raises(JsonRefused):
        check_json('{"a": ' * MAX_DEPTH + "[]" + "}" * MAX_DEPTH)


def test_brackets_inside_strings_do_not_count() -> None:
    assert check_json('["' + "[" * 500 + '"]') == ["[" * 500]


@pytest.mark.parametrize("body", ['{"a": 1, "a": 2}', '[{"x": {"k": 1, "k": 1}}]', '{"a": 1, "b": {}, "a": 1}'])
def test_a_key_twice_in_one_object_is_refused(body: str) -> None:
    with pytest.raises(JsonRefused, match="appears twice") as refused:
        check_json(body)
    assert refused.value.reason == "duplicate_key"


def test_the_same_key_in_two_objects_is_fine() -> None:
    assert check_json('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("body", [b'{"a": ', b"\xff\xfe", b"1" * 5000, b"[1, 2] 3"])
def test_what_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(JsonRefused) as refused:
        check_json(body)
    assert refused.value.reason == "malformed"
