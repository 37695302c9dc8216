"""Routing of a received file by governance: which imports are released at once, which wait for review."""

from __future__ import annotations

import pytest

from infracalc.casd.filetypes import BINARY, TEXT
from infracalc.casd.imports import CODE_MAX_BYTES, Received, route
from infracalc.casd.objects import StoredObject
from infracalc.db import Governance, ImportState, Sensitivity


def received(
    name: str, size: int = 100, *, text: bool = True, governance: Governance = Governance.INFRACALC
) -> Received:
    stored = StoredObject(key=f"projects/p/imports/i/{name}", size=size, sha256="0" * 64, part_sha256=("0" * 64,))
    return Received(
        import_id="i",
        name=name,
        stored=stored,
        file_type=TEXT if text else BINARY,
        text=text,
        governance=governance,
    )


@pytest.mark.parametrize("name", ["a.py", "b.R", "c.r", "d.sas", "e.do", "f.sql", "g.ipynb", "h.md", "i.txt", "J.PY"])
def test_small_text_code_files_are_released_at_once_under_infracalc(name: str) -> None:
    routing = route(received(name, CODE_MAX_BYTES))
    assert (routing.state, routing.sensitivity) == (ImportState.RELEASED, Sensitivity.STANDARD)


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (received("data.csv"), "not a code file (.csv)"),
        (received("Makefile"), "not a code file (no extension)"),
        (received("big.py", CODE_MAX_BYTES + 1), "larger than 256 KiB"),
        (received("bin.py", text=False), "not text"),
        (received("a.py", governance=Governance.CASD), "under CASD governance every import is reviewed"),
    ],
)
def test_everything_else_waits_for_review(candidate: Received, why: str) -> None:
    routing = route(candidate)
    assert (routing.state, routing.sensitivity) == (ImportState.IN_REVIEW, None)
    assert why in routing.reason
