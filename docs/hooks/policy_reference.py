"""The policies' reference, from their ``# METADATA`` annotations (OPA's own format: YAML in comments).

Each package's annotation gives its title and description; each rule's gives what it decides, and
``entrypoint: true`` marks the decisions the service, the hub and the egress proxy ask. A test compares
what this module reads with ``opa inspect -a``, so that it reads what OPA reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

#: The repository's policies.
POLICIES = Path(__file__).resolve().parents[2] / "policies"
_RULE = re.compile(r"^(?:default\s+)?([a-z_][a-z0-9_]*)\b")


@dataclass(frozen=True, slots=True)
class Annotation:
    """One ``# METADATA`` block: the package or rule it annotates and what it says."""

    package: str
    #: ``None`` for the package's own annotation.
    rule: str | None
    fields: dict[str, object]
    source: str

    @property
    def path(self) -> str:
        """Where OPA serves the document: ``data.infracalc.egress.decision``."""
        return f"data.{self.package}" + (f".{self.rule}" if self.rule else "")


def annotations(root: Path = POLICIES) -> list[Annotation]:
    """Every annotation of the policies under ``root`` (tests excluded), in file and line order."""
    found: list[Annotation] = []
    for path in sorted(root.rglob("*.rego")):
        if path.name.endswith("_test.rego"):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        package = next(line.split()[1] for line in lines if line.startswith("package "))
        index = 0
        while index < len(lines):
            if lines[index].strip() != "# METADATA":
                index += 1
                continue
            block: list[str] = []
            index += 1
            while index < len(lines) and lines[index].startswith("#"):
                block.append(lines[index][2:] if lines[index].startswith("# ") else lines[index][1:])
                index += 1
            fields = yaml.safe_load("\n".join(block) + "\n") or {}
            target = lines[index] if index < len(lines) else ""
            match = _RULE.match(target)
            rule = None if target.startswith("package ") or match is None else match.group(1)
            found.append(Annotation(package, rule, fields, str(path.relative_to(root.parent))))
    return found


def render(root: Path = POLICIES) -> str:
    """The reference as Markdown: a section per package, its decisions below."""
    lines: list[str] = []
    for annotation in annotations(root):
        description = str(annotation.fields.get("description", "")).strip()
        if annotation.rule is None:
            title = annotation.fields.get("title", annotation.package)
            lines += [f"### {title}: `{annotation.path}`", "", f"Source: `{annotation.source}`.", ""]
        else:
            entry = " (entry point)" if annotation.fields.get("entrypoint") else ""
            lines += [f"#### `{annotation.path}`{entry}", ""]
        lines += [_as_markdown(description), ""]
    return "\n".join(lines)


def _as_markdown(description: str) -> str:
    """A description's text, with its indented input and data listings kept as code blocks."""
    out: list[str] = []
    listing: list[str] = []
    for line in description.splitlines():
        if line.startswith("  "):
            listing.append(line)
            continue
        if listing:
            out += ["", "```text", *listing, "```", ""]
            listing = []
        out.append(line)
    if listing:
        out += ["", "```text", *listing, "```"]
    return "\n".join(out).replace("\n\n\n", "\n\n")
