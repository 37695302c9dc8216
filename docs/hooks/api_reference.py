"""The API reference, from the service's own OpenAPI document, built without any server.

:func:`openapi_document` builds the Litestar application as ``infracalc serve`` would (settings from an
environment holding only what is required, a placeholder secret) and asks it for its schema: the same
document the running service serves at ``/schema/openapi.json``. :func:`render` writes it as Markdown,
one section per tag, each operation with its parameters, body and answers, then the schemas.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from typing import Any

#: The statuses every ``/api/v1`` operation may answer; listed once at the top rather than under each operation.
COMMON_ERRORS = ("401", "403", "503")


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document."""
    from infracalc.service.app import create_app  # noqa: PLC0415 - heavy; only when the page is built
    from infracalc.service.settings import ServiceSettings  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="infracalc-docs-") as home:
        settings = ServiceSettings.from_env({"INFRACALC_API_CLIENT_SECRET": "documentation", "INFRACALC_HOME": home})
        schema: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return schema


def _type(schema: Mapping[str, Any]) -> str:  # noqa: PLR0911 - one answer per kind of schema
    """A schema's type in a few words: `string`, `array of ProjectOut`, `Governance`..."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{anchor(name)})"
    for combined in ("oneOf", "anyOf"):
        if combined in schema:
            return " or ".join(_type(option) for option in schema[combined])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(str(item) for item in kind)
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _limits(schema: Mapping[str, Any]) -> str:
    words = {
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "minimum": "≥ {:g}",
        "maximum": "≤ {:g}",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
        "default": "default `{}`",
    }
    found = []
    for key, text in words.items():
        if key in schema:
            value = schema[key]
            found.append(text.format(json.dumps(value) if key == "default" else value))
    return "; ".join(found)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def anchor(name: str) -> str:
    """The anchor of a schema's heading (MkDocs' slugs: lower case)."""
    return f"schema-{name.lower()}"


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> list[str]:
    lines = [f"### {operation.get('summary', path)}", "", f"`{method.upper()} {path}`", ""]
    if operation.get("description"):
        lines += [str(operation["description"]).strip(), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | what |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            what = "; ".join(filter(None, [parameter.get("description", ""), _limits(schema)]))
            required = "yes" if parameter.get("required") else "no"
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_type(schema)} | {required} | {_cell(what)} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [f"Body (`{media}`): {_type(content.get('schema', {}))}.", ""]
    lines += ["| status | what | body |", "|---|---|---|"]
    for status, answer in sorted(operation.get("responses", {}).items()):
        if status in COMMON_ERRORS and path.startswith("/api/"):
            continue
        bodies = ", ".join(_type(content.get("schema", {})) for content in answer.get("content", {}).values())
        lines.append(f"| {status} | {_cell(answer.get('description', ''))} | {bodies or '—'} |")
    lines.append("")
    return lines


def _schema(name: str, schema: Mapping[str, Any]) -> list[str]:
    lines = [f"### {name} {{#{anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [_cell(str(schema["description"])), ""]
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | what |", "|---|---|---|---|"]
        for field, spec in properties.items():
            what = "; ".join(filter(None, [spec.get("description", ""), _limits(spec)]))
            flag = "yes" if field in required else "no"
            lines.append(f"| `{field}` | {_type(spec)} | {flag} | {_cell(what)} |")
        lines.append("")
    elif "enum" in schema:
        lines += [f"One of {_type(schema)}.", ""]
    return lines


def render(document: Mapping[str, Any] | None = None) -> str:
    """The reference as Markdown."""
    document = document or openapi_document()
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((path, method, operation))
    lines = [
        f"Version {document['info']['version']}. {document['info'].get('description', '')}",
        "",
        "Every `/api/v1` operation may also answer 401 (no credential, or a refused one), 403 (the policy refuses, "
        "the message is its reason) and 503 (OPA, Keycloak's keys, the database or the object store cannot be "
        "reached), each with an [ErrorBody](#schema-errorbody).",
        "",
    ]
    for tag in sorted(by_tag):
        lines += [f"## {tag.capitalize()}", ""]
        for path, method, operation in sorted(by_tag[tag], key=lambda entry: (entry[0], entry[1])):
            lines += _operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines)
