"""File names: normalised to NFC, refused with a reason when they could be a path or hide what they are."""

from __future__ import annotations

import re

import pytest

from infracalc.casd.filenames import InvalidFileName, check_file_name


@pytest.mark.parametrize(
    "name",
    ["data.csv", "analyse v2.R", "étude.parquet", "résumé.md", ".profile", "a" * 255, "é" * 127, "報告.txt"],
)
def test_ordinary_names_are_kept(name: str) -> None:
    assert check_file_name(name) == name


def test_names_are_normalised_to_nfc() -> None:
    decomposed = "e\u0301tude.csv"
    assert check_file_name(decomposed) == "\u00e9tude.csv"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        (".", "not a file name"),
        ("..", "not a file name"),
        ("../etc/passwd", "path separator"),
        ("..\\windows", "path separator"),
        ("/absolute", "path separator"),
        ("dir/file.csv", "path separator"),
        ("line\nbreak.csv", "control character (U+000A)"),
        ("nul\x00.csv", "control character (U+0000)"),
        ("bell\x07.csv", "control character"),
        ("del\x7f.csv", "control character"),
        ("sep\u2028.csv", "control character (U+2028)"),
        ("invoice\u202etxt.exe", "text-direction character (U+202E)"),
        (" leading.csv", "white space"),
        ("trailing.csv ", "white space"),
        ("a" * 256, "256 bytes"),
        ("é" * 128, "256 bytes"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, problem: str) -> None:
    with pytest.raises(InvalidFileName, match=re.escape(problem)):
        check_file_name(name)


def test_the_length_limit_counts_bytes_after_normalisation() -> None:
    # 127 decomposed é are 381 bytes as given, 254 once composed: accepted.
    assert len(check_file_name("e\u0301" * 127).encode()) == 254
