"""The exports module's rules without servers: routing by governance and risk, allowed moves, names, settings."""

from __future__ import annotations

import pytest

from infracalc.casd.checks import RiskLevel
from infracalc.casd.exports import (
    TRANSITIONS,
    ExportSettings,
    InvalidExport,
    InvalidTransition,
    Route,
    export_file_name,
    move,
    route,
)
from infracalc.config import SettingError
from infracalc.db import Export, ExportState, Governance


@pytest.mark.parametrize(
    ("governance", "risk", "expected"),
    [
        (Governance.CASD, RiskLevel.LOW, Route(required_reviews=1, sample=False)),
        (Governance.CASD, RiskLevel.MEDIUM, Route(required_reviews=1, sample=False)),
        (Governance.CASD, RiskLevel.HIGH, Route(required_reviews=2, sample=False)),
        (Governance.INFRACALC, RiskLevel.LOW, Route(required_reviews=0, sample=True)),
        (Governance.INFRACALC, RiskLevel.MEDIUM, Route(required_reviews=1, sample=False)),
        (Governance.INFRACALC, RiskLevel.HIGH, Route(required_reviews=2, sample=False)),
    ],
)
def test_routing_follows_the_governance_table(governance: Governance, risk: RiskLevel, expected: Route) -> None:
    assert route(governance, risk) == expected
    assert route(governance.value, risk.value) == expected


def export_in(state: ExportState) -> Export:
    return Export(id="e1", state=state)


def test_every_state_has_its_moves_and_released_or_rejected_are_nearly_final() -> None:
    assert set(TRANSITIONS) == set(ExportState)
    assert TRANSITIONS[ExportState.REJECTED] == frozenset()
    assert TRANSITIONS[ExportState.RELEASED] == frozenset({ExportState.REJECTED})


@pytest.mark.parametrize(
    ("start", "to"),
    [(start, to) for start, targets in TRANSITIONS.items() for to in targets],
)
def test_allowed_moves_change_the_state(start: ExportState, to: ExportState) -> None:
    export = export_in(start)
    assert move(export, to) == start
    assert export.state == to


@pytest.mark.parametrize(
    ("start", "to"),
    [(start, to) for start in ExportState for to in ExportState if to not in TRANSITIONS[start]],
)
def test_other_moves_are_refused_and_change_nothing(start: ExportState, to: ExportState) -> None:
    export = export_in(start)
    with pytest.raises(InvalidTransition, match=f"export e1 is {start.value}: it cannot become {to.value}"):
        move(export, to)
    assert export.state == start


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        " t.csv",
        "../table.csv",
        "a/b.csv",
        "a\\b.csv",
        "..",
        ".",
        "tab\tle.csv",
        "x" * 256,
        "é" * 128,
        "\u202etxt.exe",
    ],
)
def test_file_names_that_are_paths_or_odd_are_refused(name: str) -> None:
    with pytest.raises(InvalidExport) as refused:
        export_file_name(name)
    assert refused.value.field == "name"


def test_file_names_are_normalised() -> None:
    assert export_file_name("cafe\u0301.csv") == "café.csv"
    assert export_file_name("x" * 255) == "x" * 255


def test_settings_from_the_environment_and_a_seeded_sampler() -> None:
    settings = ExportSettings.from_env({"INFRACALC_EXPORT_SAMPLE_RATE": "0.25", "INFRACALC_EXPORT_SAMPLE_SEED": "7"})
    assert (settings.sample_rate, settings.sample_seed) == (0.25, 7)
    first, second = settings.sampler(), settings.sampler()
    assert [first.random() for _ in range(5)] == [second.random() for _ in range(5)]
    unseeded = ExportSettings.from_env({})
    assert (unseeded.sample_rate, unseeded.sample_seed) == (0.10, None)


@pytest.mark.parametrize(
    "env",
    [
        {"INFRACALC_EXPORT_SAMPLE_RATE": "1.5"},
        {"INFRACALC_EXPORT_SAMPLE_RATE": "nan"},
        {"INFRACALC_EXPORT_SAMPLE_RATE": "ten percent"},
        {"INFRACALC_EXPORT_SAMPLE_SEED": "x"},
    ],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingError):
        ExportSettings.from_env(env)
