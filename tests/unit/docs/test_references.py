"""The generated references say what the code says: the policies' METADATA as OPA reads it, every API
operation and schema, every command of the command line."""

from __future__ import annotations

import json
import subprocess

import pytest

from docs.hooks import api_reference, cli_reference, policy_reference
from infracalc.config import ToolSettings
from infracalc.tools import locate


def test_the_policy_annotations_are_those_opa_reads() -> None:
    opa = locate(ToolSettings.from_env()).opa
    inspected = json.loads(
        subprocess.run(
            [str(opa), "inspect", "-a", "--format", "json", str(policy_reference.POLICIES)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    theirs = {
        ".".join(["data", *(part["value"] for part in entry["path"][1:])]): entry["annotations"]
        for entry in inspected["annotations"]
    }
    ours = {annotation.path: annotation.fields for annotation in policy_reference.annotations()}
    assert set(ours) == set(theirs)
    for path, fields in ours.items():
        assert fields.get("description") == theirs[path].get("description"), path
        assert bool(fields.get("entrypoint")) == bool(theirs[path].get("entrypoint")), path
        assert fields.get("title") == theirs[path].get("title"), path


def test_the_policy_reference_lists_every_entry_point_with_its_description() -> None:
    text = policy_reference.render()
    for annotation in policy_reference.annotations():
        if annotation.fields.get("entrypoint"):
            assert f"#### `{annotation.path}` (entry point)" in text
            first_line = str(annotation.fields["description"]).splitlines()[0]
            assert first_line in text


@pytest.fixture(scope="module")
def document() -> dict[str, object]:
    return api_reference.openapi_document()


def test_the_api_reference_has_every_operation_and_schema_of_the_openapi_document(document: dict) -> None:
    text = api_reference.render(document)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert f"`{method.upper()} {path}`" in text
            assert f"### {operation['summary']}" in text
    for name in document["components"]["schemas"]:
        assert f"### {name} {{#{api_reference.anchor(name)}}}" in text
    assert "/api/v1/projects/{project_id}/egress-requests" in document["paths"]


def test_the_api_reference_keeps_an_operations_own_errors(document: dict) -> None:
    text = api_reference.render(document)
    approve = text.split("`POST /api/v1/egress-requests/{rule_id}/approve`", 1)[1].split("### ", 1)[0]
    assert "| 409 |" in approve
    assert "| 401 |" not in approve  # said once, at the top


def test_the_cli_reference_has_every_command_with_its_options() -> None:
    text = cli_reference.render()
    for path in cli_reference.commands():
        assert f"### `{' '.join(path)}`" in text
        for parameter in cli_reference.command_at(path).params:
            for option in parameter.opts:
                if option.startswith("--"):
                    assert option in text, (path, option)
    assert "Usage: infracalc audit verify [OPTIONS]" in text
