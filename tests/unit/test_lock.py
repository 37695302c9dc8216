"""``requirements-dev.txt``, the lock ``make install`` installs from, pins every package pyproject.toml asks for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

#: ``name==version`` at the start of a lock line (markers and hashes follow).
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pinned() -> dict[str, list[str]]:
    """Each locked package's versions (two when markers pick one per Python version)."""
    versions: dict[str, list[str]] = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        match = PIN.match(line)
        if match:
            versions.setdefault(canonicalize_name(match[1]), []).append(match[2])
    return versions


def wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    texts = [*project["dependencies"], *extras["hub"], *extras["bubble"], *extras["dev"]]
    requirements = [Requirement(text) for text in texts]
    return [requirement for requirement in requirements if requirement.name != project["name"]]


def test_every_requirement_is_locked_at_a_version_it_allows() -> None:
    locked = pinned()
    stale = [
        str(requirement)
        for requirement in wanted()
        if not any(requirement.specifier.contains(v) for v in locked.get(canonicalize_name(requirement.name), []))
    ]
    assert stale == [], f"requirements-dev.txt does not satisfy {stale}: run `make lock`"


def test_every_locked_package_carries_hashes() -> None:
    text = (ROOT / "requirements-dev.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert entries, "an empty lock"
    assert all("--hash=sha256:" in entry for entry in entries), "pip install --require-hashes needs them all"
