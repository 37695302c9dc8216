"""The tool installer: prerequisites named clearly, Java chosen right, nothing reinstalled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infracalc.config import ToolSettings
from infracalc.tools import MissingPrerequisite, find_java_home, install, install_smokescreen, locate, versions
from infracalc.tools.install import java_major_version


def fake_java(home: Path, version_line: str) -> Path:
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_412"', 8),
    ],
)
def test_java_major_version_parses_every_style(tmp_path: Path, line: str, major: int) -> None:
    assert java_major_version(fake_java(tmp_path, line) / "bin" / "java") == major


def test_configured_java_too_old_is_refused_with_how_to_fix(tmp_path: Path) -> None:
    old = fake_java(tmp_path / "jdk17", 'openjdk version "17.0.15" 2025-04-15')
    with pytest.raises(MissingPrerequisite) as refused:
        find_java_home(ToolSettings(tools_dir=tmp_path / "tools", java_home=old))
    assert refused.value.program == "java"
    assert "needs Java 21+" in str(refused.value)
    assert "is Java 17" in str(refused.value)


def test_configured_recent_java_is_used(tmp_path: Path) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    assert find_java_home(ToolSettings(tools_dir=tmp_path / "tools", java_home=recent)) == recent


def test_missing_go_is_named_before_anything_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    settings = ToolSettings(tools_dir=tmp_path / "tools", java_home=recent)
    monkeypatch.setenv("PATH", str(empty_path))
    with pytest.raises(MissingPrerequisite) as refused:
        install(settings, report=lambda _line: None)
    assert refused.value.program == "go"
    assert not (tmp_path / "tools").exists()


def test_cli_prints_one_clear_message_and_fails(tmp_path: Path) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "infracalc", "tools", "install"],
        env={
            "PATH": str(empty_path),
            "INFRACALC_TOOLS_DIR": str(tmp_path / "tools"),
            "INFRACALC_JAVA_HOME": str(recent),
            "PYTHONPATH": os.pathsep.join(sys.path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: go is required: install Go 1.25 or newer (Debian backports: apt-get install golang, "
        "or the official tarball)"
    ]
    assert "Traceback" not in result.stderr


def test_smokescreen_is_left_out_of_the_default_install(tmp_path: Path) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    tools = locate(ToolSettings(tools_dir=tmp_path / "tools", java_home=recent))
    assert tools.smokescreen == tmp_path / "tools" / "bin" / "smokescreen"
    assert "smokescreen" not in tools.missing()


def test_smokescreen_without_go_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    with pytest.raises(MissingPrerequisite) as refused:
        install_smokescreen(ToolSettings(tools_dir=tmp_path / "tools", java_home=recent), report=lambda _line: None)
    assert refused.value.program == "go"
    assert not (tmp_path / "tools").exists()


def test_smokescreen_at_the_pinned_version_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recent = fake_java(tmp_path / "jdk25", 'openjdk version "25" 2025-09-16')
    binary = tmp_path / "tools" / "bin" / "smokescreen"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    (binary.parent / ".smokescreen.version").write_text(versions.SMOKESCREEN_VERSION)
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    lines: list[str] = []
    tools = install_smokescreen(ToolSettings(tools_dir=tmp_path / "tools", java_home=recent), report=lines.append)
    assert tools.smokescreen == binary
    assert lines == ["smokescreen: ok"]
