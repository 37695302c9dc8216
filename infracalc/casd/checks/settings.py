"""The output checks' settings: size and parse limits, and the disclosure rules' parameters.

The disclosure defaults are ACRO's (AI-SDC, ``acro/default.yaml``): ``safe_threshold: 10``,
``safe_nk_n: 2``, ``safe_nk_k: 0.90``, ``safe_pratio_p: 0.10``, ``zeros_are_disclosive: True``.
The parse limits keep every check in bounded memory and time whatever the file holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from infracalc.config import SettingError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    try:
        value = int(raw.replace("_", "")) if raw else default
    except ValueError:
        raise SettingError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingError(f"{name} must be between {minimum:,} and {maximum:,}, got {value:,}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float, *, open_low: bool, open_high: bool) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SettingError(f"{name} must be a number, got {raw!r}") from None
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    if not (low_ok and high_ok):  # also refuses NaN
        bounds = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise SettingError(f"{name} must be in {bounds}, got {raw}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingError(f"{name} must be true or false, got {env[name]!r}")


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Limits and rule parameters of the output checks (each field names its variable)."""

    #: ``INFRACALC_EXPORT_MAX_BYTES``: the largest file accepted for export (default 100 MiB).
    max_bytes: int = 100 * 1024 * 1024
    #: ``INFRACALC_EXPORT_THRESHOLD``: counts from 1 to threshold-1 are flagged (ACRO ``safe_threshold``, 10).
    threshold: int = 10
    #: ``INFRACALC_EXPORT_CHECK_ZEROS``: flag zero counts as possibly disclosive (ACRO ``zeros_are_disclosive``).
    check_zeros: bool = True
    #: ``INFRACALC_EXPORT_NK_N``: dominance N-K rule, the number of largest contributors (ACRO ``safe_nk_n``, 2).
    nk_n: int = 2
    #: ``INFRACALC_EXPORT_NK_K``: ... and the share of the cell total they may not exceed (ACRO ``safe_nk_k``, 0.9).
    nk_k: float = 0.9
    #: ``INFRACALC_EXPORT_P_RATIO``: p-ratio rule, flagged below this (ACRO ``safe_pratio_p``, 0.10).
    p_ratio: float = 0.10
    #: ``INFRACALC_EXPORT_MAX_COLUMNS``: the most columns a table row may have (default 10,000).
    max_columns: int = 10_000
    #: ``INFRACALC_EXPORT_MAX_ROWS``: the most rows a table (each sheet) may have (default 1,048,576, Excel's).
    max_rows: int = 1_048_576
    #: ``INFRACALC_EXPORT_MAX_CELL_BYTES``: the longest cell, in characters (default 128 KiB, the csv module's).
    max_cell_bytes: int = 128 * 1024
    #: ``INFRACALC_EXPORT_MAX_ROW_BYTES``: the longest CSV/TSV record, in characters (default 4 MiB).
    max_row_bytes: int = 4 * 1024 * 1024
    #: ``INFRACALC_OFFICE_MAX_EXPANDED_BYTES``: the most an office document, imported or exported, may expand to
    #: (default 128 MiB; zip bombs).
    max_uncompressed_bytes: int = 128 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_cell_bytes > self.max_row_bytes:
            raise SettingError(
                f"the longest cell ({self.max_cell_bytes:,}) cannot exceed the longest row ({self.max_row_bytes:,}): "
                "raise INFRACALC_EXPORT_MAX_ROW_BYTES or lower INFRACALC_EXPORT_MAX_CELL_BYTES"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CheckSettings:
        """Read the settings from ``env`` (default: the process environment); SettingError names a bad variable."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            max_bytes=_integer(env, "INFRACALC_EXPORT_MAX_BYTES", default.max_bytes, minimum=1, maximum=2**40),
            threshold=_integer(env, "INFRACALC_EXPORT_THRESHOLD", default.threshold, minimum=1, maximum=10**9),
            check_zeros=_flag(env, "INFRACALC_EXPORT_CHECK_ZEROS", default.check_zeros),
            nk_n=_integer(env, "INFRACALC_EXPORT_NK_N", default.nk_n, minimum=1, maximum=100),
            nk_k=_fraction(env, "INFRACALC_EXPORT_NK_K", default.nk_k, open_low=True, open_high=False),
            p_ratio=_fraction(env, "INFRACALC_EXPORT_P_RATIO", default.p_ratio, open_low=False, open_high=True),
            max_columns=_integer(env, "INFRACALC_EXPORT_MAX_COLUMNS", default.max_columns, minimum=1, maximum=10**6),
            max_rows=_integer(env, "INFRACALC_EXPORT_MAX_ROWS", default.max_rows, minimum=1, maximum=10**9),
            max_cell_bytes=_integer(
                env, "INFRACALC_EXPORT_MAX_CELL_BYTES", default.max_cell_bytes, minimum=1, maximum=2**30
            ),
            max_row_bytes=_integer(
                env, "INFRACALC_EXPORT_MAX_ROW_BYTES", default.max_row_bytes, minimum=1, maximum=2**30
            ),
            max_uncompressed_bytes=_integer(
                env, "INFRACALC_OFFICE_MAX_EXPANDED_BYTES", default.max_uncompressed_bytes, minimum=1, maximum=2**40
            ),
        )
