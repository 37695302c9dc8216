"""The guides stay true: the site builds strictly, every command they show exists, every picture is taken.

A guide's (or the README's) shell block (```sh) or inline code that runs ``infracalc ...`` must name a command of the
command line's parser with options it has, and one that runs ``make ...`` a target of the Makefile. The
pictures a guide shows are those the browser tests take (:mod:`tests.integration.docs.test_screenshots`),
in the guide's own language.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from docs.hooks import cli_reference
from infracalc.config import SOURCE_ROOT
from tests.integration.docs import test_screenshots
from tests.integration.hub import test_jupyterlab

DOCS = SOURCE_ROOT / "docs"
#: The pages whose commands are checked: the site's, and the README, its front door.
GUIDES = [*sorted(path for path in DOCS.rglob("*.md") if "hooks" not in path.parts), SOURCE_ROOT / "README.md"]
#: Every picture the browser tests take for the guides.
PICTURES = (*test_screenshots.PICTURES, *test_jupyterlab.PICTURES)
_SHELL_BLOCK = re.compile(r"^ *```(?:sh|bash|shell|console)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_MAKE_TARGET = re.compile(r"^([a-zA-Z][a-zA-Z0-9_-]*):", re.MULTILINE)
_PICTURE = re.compile(r"!\[[^\]]*\]\((?:\.\./)*images/generated/([a-z]+)/([a-z0-9-]+)\.png\)")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
#: What stands for any command of a group in a guide's text (`infracalc risk ...`).
_ANY_COMMAND = {"...", "…"}
#: What separates two commands on one shell line.
_SEPARATORS = {";", "&&", "||", "|", "&"}


def relative(path: Path) -> str:
    return str(path.relative_to(SOURCE_ROOT))


def shell_lines(text: str) -> Iterator[str]:
    """Each line of each shell block (comments removed), then each inline code span that is a command."""
    for block in _SHELL_BLOCK.finditer(text):
        for line in block.group(1).splitlines():
            code = line.split(" #", 1)[0].strip()
            if code and not code.startswith("#"):
                yield code
    for span in _INLINE_CODE.finditer(text):
        if span.group(1).startswith(("infracalc ", "make ")):
            yield span.group(1)


def commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line, as words; each ``$(...)`` is a command of its own."""
    inner = _SUBSTITUTION.findall(line)
    lexer = shlex.shlex(_SUBSTITUTION.sub("SUBSTITUTED", line), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if word in _SEPARATORS:
            if words:
                yield words
            words = []
        else:
            words.append(word)
    if words:
        yield words
    for command in inner:
        yield from commands(command)


def guide_commands(program: str) -> Iterator[tuple[str, list[str]]]:
    """Every ``program`` command the guides show: (the guide, its words after the program's name)."""
    for guide in GUIDES:
        for line in shell_lines(guide.read_text(encoding="utf-8")):
            for words in commands(line):
                if words[0] == program or words[0].endswith(f"/{program}"):
                    yield relative(guide), words[1:]


def problem_with(words: list[str]) -> str | None:
    """Why ``infracalc <words>`` is not a command of the parser with options it has, or None when it is."""
    command: click.Command = cli_reference.command_at(("infracalc",))
    path = ["infracalc"]
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name in _ANY_COMMAND:
            return None
        if name not in command.commands:
            return f"{' '.join(path)} has no command {name!r}"
        command, path = command.commands[name], [*path, name]
    if isinstance(command, click.Group):
        return f"{' '.join(path)} needs a command"
    options = {option for parameter in command.params for option in parameter.opts + parameter.secondary_opts}
    unknown = [word.split("=", 1)[0] for word in rest if word.startswith("--") and word.split("=", 1)[0] not in options]
    return f"{' '.join(path)} has no option {', '.join(unknown)}" if unknown else None


def test_every_infracalc_command_in_the_guides_exists_with_its_options() -> None:
    shown = list(guide_commands("infracalc"))
    assert len(shown) >= 10, "the guides show the command line"
    problems = [
        f"{guide}: infracalc {' '.join(words)}: {problem}" for guide, words in shown if (problem := problem_with(words))
    ]
    assert not problems, "\n".join(problems)


def test_a_command_the_parser_does_not_know_is_reported() -> None:
    assert problem_with(["audit", "verify", "--public-key", "k.pem"]) is None
    assert problem_with(["export", "r.csv", "--justification=Why it may leave the bubble"]) is None
    assert problem_with(["audit", "check"]) == "infracalc audit has no command 'check'"
    assert problem_with(["import", "demo", "f.csv", "--force"]) == "infracalc import has no option --force"
    assert problem_with(["tools"]) == "infracalc tools needs a command"
    assert problem_with(["tools", "..."]) is None


def test_every_make_target_in_the_guides_is_in_the_makefile() -> None:
    targets = set(_MAKE_TARGET.findall((SOURCE_ROOT / "Makefile").read_text(encoding="utf-8")))
    shown = [(guide, words) for guide, words in guide_commands("make") if words]
    assert shown, "the guides show make"
    missing = [f"{guide}: make {' '.join(words)}" for guide, words in shown if not set(words) <= targets]
    assert not missing, "\n".join(missing)


def test_the_shell_lines_are_split_into_commands() -> None:
    line = 'curl -H "Authorization: Bearer $(infracalc token)" https://x/api/v1/me; make down && make up'
    assert list(commands(line)) == [
        ["curl", "-H", "Authorization: Bearer SUBSTITUTED", "https://x/api/v1/me"],
        ["make", "down"],
        ["make", "up"],
        ["infracalc", "token"],
    ]


def test_each_guide_shows_the_pictures_the_browser_tests_take_in_its_language() -> None:
    shown: dict[str, set[str]] = {}
    for guide in GUIDES:
        language = "en" if guide.name.endswith(".en.md") else "fr"
        for picture_language, name in _PICTURE.findall(guide.read_text(encoding="utf-8")):
            assert picture_language == language, f"{relative(guide)} shows the {picture_language} picture {name}"
            assert name in PICTURES, f"{relative(guide)} shows {name}, which no browser test takes"
            assert (DOCS / "images" / "generated" / language / f"{name}.png").is_file(), (relative(guide), name)
            shown.setdefault(language, set()).add(name)
    assert shown["fr"] == shown["en"] == set(PICTURES), "both languages show every picture taken"


@pytest.mark.timeout(300)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """What ``make docs`` runs: a broken link, a missing page or an unknown generated part fails it."""
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=SOURCE_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    for page in ("index.html", "en/index.html", "researchers/index.html", "en/security/index.html", "openapi.json"):
        assert (site / page).is_file(), page
    assert "infracalc audit verify" in (site / "en" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert (site / "images" / "generated" / "fr" / "console-home.png").is_file()


def test_every_file_the_readme_links_to_exists() -> None:
    """The README is read on the forge, outside the site: its links to the guides are checked here."""
    text = (SOURCE_ROOT / "README.md").read_text(encoding="utf-8")
    targets = {link.split("#", 1)[0] for link in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in link}
    missing = sorted(target for target in targets - {""} if not (SOURCE_ROOT / target).exists())
    assert not missing, missing
