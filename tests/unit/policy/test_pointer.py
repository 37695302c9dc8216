"""JSON Pointers into OPA's data: each key one segment, whatever it holds."""

from __future__ import annotations

from infracalc.policy import pointer


def test_keys_become_escaped_segments() -> None:
    assert pointer("members", "cohort") == "/members/cohort"
    # RFC 6901: "~" is written "~0" and "/" is written "~1", so a username holding them stays one key.
    assert pointer("users", "a/b~c@example.org") == "/users/a~1b~0c@example.org"
    assert pointer("users", "~1") == "/users/~01"
