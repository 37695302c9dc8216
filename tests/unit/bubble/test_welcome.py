"""The welcome notebooks: valid, the same in both languages, and given to a work folder once, never over an edit."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from infracalc.bubble.welcome import MARKER, NOTEBOOKS, WELCOME_NOTEBOOKS, give_welcome_notebooks, main


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", WELCOME_NOTEBOOKS)
def test_each_notebook_is_valid_without_outputs_and_its_code_compiles(name: str) -> None:
    notebook = read(name)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None
        compile(TransformerManager().transform_cell(cell.source), name, "exec")  # `!infracalc` lines included


def test_the_french_and_english_notebooks_have_the_same_cells() -> None:
    french, english = (read(name) for name in ("Bienvenue.ipynb", "Welcome.ipynb"))
    assert [cell.cell_type for cell in french.cells] == [cell.cell_type for cell in english.cells]
    for ours, theirs in zip(french.cells, english.cells, strict=True):
        if ours.cell_type == "code":  # the same code; only comments and messages are translated
            assert ours.source.count("\n") == theirs.source.count("\n")
            assert [line.split("#")[0] for line in ours.source.splitlines() if '"' not in line] == [
                line.split("#")[0] for line in theirs.source.splitlines() if '"' not in line
            ]


def test_the_notebooks_are_given_once_and_an_edit_is_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    assert give_welcome_notebooks(folder) == [folder / name for name in WELCOME_NOTEBOOKS]
    (folder / "Welcome.ipynb").write_text("my own notes")
    (folder / "Bienvenue.ipynb").unlink()
    assert give_welcome_notebooks(folder) == []
    assert (folder / "Welcome.ipynb").read_text() == "my own notes"
    assert not (folder / "Bienvenue.ipynb").exists()  # deleted on purpose: it does not come back
    assert (folder / MARKER).read_text().split() == sorted(WELCOME_NOTEBOOKS)


def test_a_folder_holding_a_notebook_of_that_name_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "Welcome.ipynb").write_text("theirs")
    assert give_welcome_notebooks(tmp_path) == [tmp_path / "Bienvenue.ipynb"]
    assert (tmp_path / "Welcome.ipynb").read_text() == "theirs"


def test_the_command_line_gives_a_folder_its_notebooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.ipynb")) == sorted(WELCOME_NOTEBOOKS)
    assert "welcome notebook" in capsys.readouterr().out
    assert main([]) == 2
