"""The feature set: computed from a real checks' report, in a fixed documented order, with no cell value or label."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from infracalc.casd.checks import check_output
from infracalc.casd.risk_model import FEATURE_SET, FEATURES, ProjectHistory, features


def test_every_feature_is_documented_in_the_module_and_the_set_is_versioned() -> None:
    doc = importlib.import_module("infracalc.casd.risk_model.features").__doc__ or ""
    assert FEATURE_SET == "colysee-features/1"
    assert len(set(FEATURES)) == len(FEATURES)
    for name in FEATURES:
        assert f"\n{name} " in doc, name


def test_a_table_with_small_counts_gives_its_shape_counts_and_margin(tmp_path: Path) -> None:
    path = tmp_path / "births.csv"
    path.write_text("region,2020,2021,2022\nParis,120,2,0\nLyon,300,400,7\nLille,500,600,700\n")
    report = check_output(path, name="births.csv").to_json()
    vector = features(
        report, size=path.stat().st_size, justification_length=42, version=2, history=ProjectHistory(4, 1)
    )
    values = vector.as_dict()
    assert values["type_table"] == 1.0
    assert values["type_image"] == 0.0
    assert vector.facts["rows"] == 3
    assert vector.facts["columns"] == 3
    assert vector.facts["small_count_cells"] == 2
    assert vector.facts["zero_cells"] == 1
    # The smallest flagged count is 2 of a threshold of 10.
    assert values["smallest_count_margin"] == (10 - 2) / 10
    assert values["flagged_share"] == 3 / 9
    assert values["review_rules"] == 2
    assert values["resubmission"] == 1
    assert values["project_risky_share"] == 0.25
    assert values["rules_score"] == report["risk_score"]


def test_contributions_give_dominance_and_p_ratio_margins(tmp_path: Path) -> None:
    path = tmp_path / "turnover.csv"
    path.write_text("sector,revenue\nsteel,1000\n")
    report = check_output(
        path, name="turnover.csv", contributors={"steel|revenue": [950.0, 30.0, 10.0, 5.0, 5.0]}
    ).to_json()
    values = features(report, size=10, justification_length=30, version=1, history=ProjectHistory()).as_dict()
    assert values["has_contributors"] == 1.0
    assert round(values["dominance_margin"], 4) == round(0.98 - 0.9, 4)
    assert round(values["p_ratio_margin"], 4) == round(0.10 - 20 / 950, 4)


def test_no_label_or_value_above_the_threshold_enters_the_features(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("who,count\nJean Dupont,3\nMarie Curie,123456\n")
    report = check_output(path, name="t.csv").to_json()
    vector = features(report, size=40, justification_length=25, version=1, history=ProjectHistory())
    shown = json.dumps({"values": vector.values, "facts": dict(vector.facts)})
    assert "Dupont" not in shown
    assert "Curie" not in shown
    assert "123456" not in shown
    assert vector.facts["smallest_count"] == 3  # a flagged count (below the threshold) is a margin, kept


def test_an_old_report_without_the_new_details_still_gives_a_vector() -> None:
    report = {"detected_type": "csv", "risk_score": 0.1, "risk_level": "low", "findings": [{"check": "size"}]}
    vector = features(report, size=1, justification_length=20, version=1, history=ProjectHistory())
    assert len(vector.values) == len(FEATURES)
    assert vector.as_dict()["log_rows"] == 0.0
