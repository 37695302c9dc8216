"""Check settings from the environment: ACRO's defaults, and a clear error naming a bad variable."""

from __future__ import annotations

import pytest

from infracalc.casd.checks import CheckSettings
from infracalc.config import SettingError


def test_defaults_are_acros() -> None:
    settings = CheckSettings.from_env({})
    assert settings == CheckSettings()
    assert (settings.threshold, settings.nk_n, settings.nk_k, settings.p_ratio, settings.check_zeros) == (
        10,
        2,
        0.9,
        0.10,
        True,
    )
    assert settings.max_bytes == 100 * 1024 * 1024
    assert settings.max_columns == 10_000


def test_every_variable_is_read() -> None:
    settings = CheckSettings.from_env(
        {
            "INFRACALC_EXPORT_MAX_BYTES": "2048",
            "INFRACALC_EXPORT_THRESHOLD": "5",
            "INFRACALC_EXPORT_CHECK_ZEROS": "false",
            "INFRACALC_EXPORT_NK_N": "3",
            "INFRACALC_EXPORT_NK_K": "0.85",
            "INFRACALC_EXPORT_P_RATIO": "0.2",
            "INFRACALC_EXPORT_MAX_COLUMNS": "50",
            "INFRACALC_EXPORT_MAX_ROWS": "1_000",
            "INFRACALC_EXPORT_MAX_CELL_BYTES": "100",
            "INFRACALC_EXPORT_MAX_ROW_BYTES": "1000",
            "INFRACALC_OFFICE_MAX_EXPANDED_BYTES": "4096",
        }
    )
    assert settings == CheckSettings(
        max_bytes=2048,
        threshold=5,
        check_zeros=False,
        nk_n=3,
        nk_k=0.85,
        p_ratio=0.2,
        max_columns=50,
        max_rows=1000,
        max_cell_bytes=100,
        max_row_bytes=1000,
        max_uncompressed_bytes=4096,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INFRACALC_EXPORT_MAX_BYTES", "lots", "must be an integer"),
        ("INFRACALC_EXPORT_MAX_BYTES", "0", "between 1"),
        ("INFRACALC_EXPORT_THRESHOLD", "-3", "between 1"),
        ("INFRACALC_EXPORT_CHECK_ZEROS", "maybe", "true or false"),
        ("INFRACALC_EXPORT_NK_K", "1.5", r"in \(0, 1\]"),
        ("INFRACALC_EXPORT_NK_K", "0", r"in \(0, 1\]"),
        ("INFRACALC_EXPORT_NK_K", "nan", r"in \(0, 1\]"),
        ("INFRACALC_EXPORT_P_RATIO", "1", r"in \[0, 1\)"),
        ("INFRACALC_EXPORT_P_RATIO", "ten percent", "must be a number"),
        ("INFRACALC_EXPORT_MAX_COLUMNS", "0", "between 1"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingError, match=f"{name}.*{message}"):
        CheckSettings.from_env({name: value})


def test_a_cell_cannot_be_longer_than_a_row() -> None:
    with pytest.raises(SettingError, match="INFRACALC_EXPORT_MAX_ROW_BYTES"):
        CheckSettings.from_env({"INFRACALC_EXPORT_MAX_CELL_BYTES": "2000", "INFRACALC_EXPORT_MAX_ROW_BYTES": "1000"})
