"""ACRO's rules on small crafted tables: small counts, zeros, few contributors, dominance, p-ratio."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.casd.checks import CheckSettings, Outcome
from infracalc.casd.checks.disclosure import as_count, workbook_count

from .conftest import Check, checks, finding, write_workbook

TABLE = "region,2021,2022,mean income\nParis,120,3,2350.5\nLyon,45,12,1980.0\nNice,0,87,2100.25\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7),
        (" 007 ", 7),
        ("+3", 3),
        ("0", 0),
        ("120", 120),
        ("-3", None),
        ("7.0", None),
        ("3.5", None),
        ("n/a", None),
        ("", None),
        ("٣", None),  # an Arabic-Indic digit is text, not a count
        (7, 7),
        (True, None),
        (7.0, None),
        (None, None),
    ],
)
def test_which_cells_are_counts(value: object, expected: int | None) -> None:
    assert as_count(value) == expected


def test_small_counts_are_flagged_with_row_and_column(check: Check) -> None:
    report = check("t.csv", TABLE)
    small = finding(report, "small_counts")
    assert small.outcome is Outcome.REVIEW
    assert small.reason == "1 cell holds counts between 1 and 9 (threshold 10): rows 'Paris'/'2022'"
    assert small.details["cells"] == [{"row": "Paris", "column": "2022", "row_number": 2, "column_number": 3}]
    assert small.details["cells_checked"] == 9  # 3 rows x 3 data columns; header and labels left out


def test_zeros_are_flagged_as_structural_or_disclosive(check: Check) -> None:
    zeros = finding(check("t.csv", TABLE), "zeros")
    assert zeros.outcome is Outcome.REVIEW
    assert "structural or disclosive zeros" in zeros.reason
    assert "'Nice'/'2021'" in zeros.reason


def test_zeros_can_be_switched_off(check: Check) -> None:
    report = check("t.csv", TABLE, settings=CheckSettings(check_zeros=False))
    assert finding(report, "zeros").outcome is Outcome.PASS
    assert finding(report, "small_counts").details["flagged"] == 1


def test_header_and_label_column_are_not_counts(check: Check) -> None:
    report = check("t.csv", "3,5\n1,200\n2,300\n")  # labels 1 and 2, headers 3 and 5
    assert checks(report)["small_counts"] == "pass"


def test_decimals_and_text_are_not_counts(check: Check) -> None:
    report = check("t.csv", "group,mean,note\nA,3.5,small\nB,7.0,n=4 people\n")
    assert checks(report)["small_counts"] == "pass"
    assert report.outcome is Outcome.PASS


def test_a_clean_table_passes_with_low_risk(check: Check) -> None:
    report = check("t.csv", "region,2021,2022\nParis,120,33\nLyon,45,12\n")
    assert report.outcome is Outcome.PASS
    assert finding(report, "small_counts").reason == "no count between 1 and 9 (threshold 10) in 4 data cells"
    assert report.risk_level == "low"


@pytest.mark.parametrize(("threshold", "flagged"), [(5, 1), (13, 2), (1, 0)])
def test_the_threshold_is_configurable(check: Check, threshold: int, flagged: int) -> None:
    report = check("t.csv", TABLE, settings=CheckSettings(threshold=threshold))
    assert finding(report, "small_counts").details["flagged"] == flagged


def test_every_padding_of_a_small_count_is_found(check: Check) -> None:
    report = check("t.csv", 'region,a,b,c,d\nParis, 4 ,0005,"+6",12\n')
    cells = finding(report, "small_counts").details["cells"]
    assert [cell["column"] for cell in cells] == ["a", "b", "c"]


def test_tsv_is_checked(check: Check) -> None:
    report = check("t.tsv", "region\t2021\nParis\t4\nLyon\t200\n")
    assert finding(report, "small_counts").details["cells"][0]["row"] == "Paris"


def test_reasons_name_five_cells_and_details_keep_fifty(check: Check) -> None:
    body = "region,n\n" + "".join(f"r{i},{1 + i % 9}\n" for i in range(80))
    small = finding(check("t.csv", body), "small_counts")
    assert small.reason.endswith("and 75 more")
    assert small.details["flagged"] == 80
    assert len(small.details["cells"]) == 50


def test_every_sheet_of_a_workbook_is_checked_with_its_own_header(check: Check, tmp_path: Path) -> None:
    content = write_workbook(
        tmp_path / "w.xlsx",
        {
            "by region": [("region", 2021, 2022), ("Paris", 120, 4), ("Lyon", 0, 45)],
            "by age": [("age", "men", "women"), ("0-17", 230, 212), ("90+", 8, "  7 ")],
            "notes": [("text",), ("computed in the bubble",)],
        },
    ).read_bytes()
    report = check("w.xlsx", content)
    small = finding(report, "small_counts")
    assert [(c["sheet"], c["row"], c["column"]) for c in small.details["cells"]] == [
        ("by region", "Paris", "2022"),
        ("by age", "90+", "men"),
        ("by age", "90+", "women"),
    ]
    assert finding(report, "zeros").details["cells"][0]["sheet"] == "by region"


def test_workbook_decimals_and_booleans_are_not_counts(check: Check, tmp_path: Path) -> None:
    content = write_workbook(tmp_path / "w.xlsx", {"s": [("g", "mean", "flag"), ("A", 3.5, True), ("B", 2.25, False)]})
    report = check("w.xlsx", content.read_bytes())
    assert report.outcome is Outcome.PASS


def test_a_whole_number_in_a_workbook_is_a_count_as_a_reader_sees_it(check: Check, tmp_path: Path) -> None:
    # Excel stores 2.0 as "2": a reader cannot tell it from a count, so neither do the checks.
    content = write_workbook(tmp_path / "w.xlsx", {"s": [("g", "mean"), ("A", 3.5), ("B", 2.0)]})
    assert finding(check("w.xlsx", content.read_bytes()), "small_counts").details["cells"][0]["row"] == "B"
    assert workbook_count(7.0) == 7
    assert workbook_count(7.5) is None
    assert workbook_count(-2.0) is None


def test_a_workbook_formula_is_judged_by_its_cached_value(check: Check, tmp_path: Path) -> None:
    # openpyxl writes no cached value: the formula's cell is empty to a reader, so nothing to flag.
    content = write_workbook(tmp_path / "w.xlsx", {"s": [("g", "n"), ("A", 120), ("B", "=A2-117")]})
    assert check("w.xlsx", content.read_bytes()).outcome is Outcome.PASS


def test_pictures_in_a_workbook_ask_for_review(check: Check, tmp_path: Path) -> None:
    import zipfile

    path = write_workbook(tmp_path / "w.xlsx", {"s": [("g", "n"), ("A", 120)]})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("xl/media/image1.png", b"\x89PNG\r\n\x1a\n")
    report = check("w.xlsx", path.read_bytes())
    embedded = finding(report, "embedded")
    assert embedded.outcome is Outcome.REVIEW
    assert embedded.details["parts"] == ["xl/media/image1.png"]


# Contributors


def test_dominance_flags_cells_where_two_contributors_hold_over_90_percent(check: Check) -> None:
    contributors = {
        "Paris|2021": [900, 60, 10, 10, 5, 5, 4, 3, 2, 1],  # 960/1000 = 96 %
        "Lyon|2021": [300, 200, 100, 100, 100, 50, 50, 50, 25, 25],  # 50 %
        "Nice|2021": [450, 450, 20, 20, 20, 10, 10, 10, 5, 5],  # 900/1000 = 90 %: not more than 90 %
    }
    report = check("t.csv", TABLE, contributors=contributors)
    dominance = finding(report, "dominance")
    assert dominance.outcome is Outcome.REVIEW
    assert dominance.details["cells"] == ["Paris|2021"]
    assert "2 largest contributors hold more than 90% of the cell total" in dominance.reason
    assert "'Paris|2021'" in dominance.reason


def test_p_ratio_flags_cells_where_the_second_largest_can_estimate_the_largest(check: Check) -> None:
    contributors = {
        "Paris|2021": [1000, 500, 20, 20, 10, 10, 10, 10, 10, 5],  # (1595-1500)/1000 = 0.095 < 0.10
        "Lyon|2021": [100, 90, 50, 40, 30, 20, 10, 10, 10, 10],  # (370-190)/100 = 1.8
        "Nice|2021": [500],  # cannot be computed: flagged, as ACRO does when zeros are disclosive
    }
    report = check("t.csv", TABLE, contributors=contributors)
    ratio = finding(report, "p_ratio")
    assert ratio.details["cells"] == ["Paris|2021", "Nice|2021"]
    report = check("t.csv", TABLE, contributors=contributors, settings=CheckSettings(check_zeros=False))
    assert finding(report, "p_ratio").details["cells"] == ["Paris|2021"]


def test_few_contributors_follow_the_threshold(check: Check) -> None:
    report = check("t.csv", TABLE, contributors={"Paris|2021": [10.0] * 9, "Lyon|2021": [10.0] * 10})
    assert finding(report, "few_contributors").details["cells"] == ["Paris|2021"]
    assert finding(report, "dominance").outcome is Outcome.PASS
    assert finding(report, "p_ratio").outcome is Outcome.PASS


def test_nk_parameters_are_configurable(check: Check) -> None:
    contributors = {"Paris|2021": [50, 20, 10, 5, 5, 5, 5]}
    settings = CheckSettings(threshold=5, nk_n=1, nk_k=0.4)
    assert (
        finding(check("t.csv", TABLE, contributors=contributors, settings=settings), "dominance").details["flagged"]
        == 1
    )
    settings = CheckSettings(threshold=5, nk_n=1, nk_k=0.6)
    assert (
        finding(check("t.csv", TABLE, contributors=contributors, settings=settings), "dominance").details["flagged"]
        == 0
    )


def test_contributions_that_are_not_numbers_fail(check: Check) -> None:
    report = check("t.csv", TABLE, contributors={"Paris|2021": [1.0, float("nan")], "Lyon|2021": ["a"]})  # type: ignore[list-item]
    refusal = finding(report, "contributors")
    assert refusal.outcome is Outcome.FAIL
    assert refusal.details["cells"] == ["Paris|2021", "Lyon|2021"]


def test_without_contributors_the_contributor_rules_do_not_run(check: Check) -> None:
    assert {"dominance", "p_ratio", "few_contributors"}.isdisjoint(checks(check("t.csv", TABLE)))


def test_a_title_row_before_the_header_is_skipped(check: Check, tmp_path: Path) -> None:
    report = check("t.csv", "Table 1: people by region\nregion,2021\nParis,4\n")
    assert finding(report, "small_counts").details["cells"][0] == {
        "row": "Paris",
        "column": "2021",
        "row_number": 3,
        "column_number": 2,
    }
    content = write_workbook(tmp_path / "w.xlsx", {"s": [("Table 1",), ("region", "n"), ("Paris", 4)]})
    cell = finding(check("w.xlsx", content.read_bytes()), "small_counts").details["cells"][0]
    assert (cell["row"], cell["column"]) == ("Paris", "n")


def test_markdown_tables_among_prose_are_checked(check: Check) -> None:
    document = """# Results

The counts by region are below.

| region | 2021 | 2022 |
|--------|-----:|-----:|
| Paris  |  120 |    3 |
| Lyon   |   45 |   12 |

Nothing else | to say.
"""
    report = check("results.md", document)
    assert report.detected_type == "md"
    small = finding(report, "small_counts")
    assert small.details["cells"] == [{"row": "Paris", "column": "2022", "row_number": 7, "column_number": 3}]
    assert small.details["cells_checked"] == 7  # 3 rows of 2 data cells, and the prose line after
