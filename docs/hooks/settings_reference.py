"""The settings reference, from the code: every ``INFRACALC_*`` variable and the comment that documents it.

A variable is documented where it is read, by a ``#:`` comment that starts with its name in double
backticks (several names may share one comment), optionally a parenthesis, then a colon and the
description::

    #: ``INFRACALC_OPA_TIMEOUT``: seconds to wait for one answer before failing closed.
    #: ``INFRACALC_API_CLIENT_SECRET`` (required): the ``infracalc-api`` client's secret.

That is the convention the typed settings classes (``ServiceSettings``, ``ProxySettings``...) already
follow for their fields; the variables read elsewhere (the hub's configuration, a bubble's environment)
carry the same comment at the place that reads them. The default shown is the literal the code passes
when it reads the variable (``env.get("X", "8080")``, ``_port(env, "X", 8080)``); "required" when the
comment's parenthesis says so. :func:`read_variables` is the other side: every name of
that shape the package's files mention, which a test compares with the documented ones.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: The repository root (this file is ``docs/hooks/settings_reference.py``).
ROOT = Path(__file__).resolve().parents[2]
#: What is scanned: the package and the hub's configuration.
SOURCES = ("infracalc", "hub_config")
#: A variable's name (not a prefix such as ``INFRACALC_EXPORT_``).
NAME = re.compile(r"\bINFRACALC_[A-Z0-9_]*[A-Z0-9]\b")
#: A documenting comment's names: one or more ``INFRACALC_X`` joined by commas, "and" or "or".
_NAMES = re.compile(r"^((?:``INFRACALC_[A-Z0-9_]+``(?:\s*(?:,|and|or)\s*)?)+)")
#: The sections of the reference, in order: which source files feed each.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Tools and the local stack (`infracalc tools`, `infracalc up`)", ("infracalc/config.py", "infracalc/stack/")),
    ("Service (`infracalc serve`)", ("infracalc/service/", "infracalc/web/", "infracalc/identity/")),
    ("Database", ("infracalc/db/",)),
    ("Audit log", ("infracalc/audit/",)),
    ("OPA", ("infracalc/policy/",)),
    ("Object store (S3)", ("infracalc/storage.py",)),
    ("E-mail", ("infracalc/mail.py",)),
    ("Imports, exports and output checks", ("infracalc/casd/",)),
    ("Egress proxy (`infracalc egress-proxy`)", ("infracalc/proxy/", "infracalc/egress/")),
    ("JupyterHub", ("hub_config/", "infracalc/hub/")),
    ("Inside a bubble", ("infracalc/bubble/",)),
    ("Command line on a workstation", ("infracalc/cli.py", "infracalc/workstation/", "infracalc/import_client.py")),
)
#: Where a file that no section names goes.
OTHER_SECTION = "Other"


@dataclass(frozen=True, slots=True)
class Setting:
    """One documented variable, as one place in the code reads it."""

    name: str
    description: str
    source: str
    line: int
    default: str = ""


@dataclass
class Catalogue:
    """Every documented variable, by section."""

    settings: list[Setting] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        """The documented names."""
        return {setting.name for setting in self.settings}

    def sections(self) -> Iterator[tuple[str, list[Setting]]]:
        """Each section that holds a setting, in :data:`SECTIONS` order, its settings sorted by name."""
        titles = [title for title, _ in SECTIONS] + [OTHER_SECTION]
        by_title: dict[str, dict[str, Setting]] = {title: {} for title in titles}
        for setting in self.settings:
            by_title[section_of(setting.source)].setdefault(setting.name, setting)
        for title in titles:
            if by_title[title]:
                yield title, [by_title[title][name] for name in sorted(by_title[title])]


def section_of(source: str) -> str:
    """The section a source file's settings belong to."""
    for title, prefixes in SECTIONS:
        if any(source == prefix or (prefix.endswith("/") and source.startswith(prefix)) for prefix in prefixes):
            return title
    return OTHER_SECTION


def python_files(root: Path = ROOT) -> Iterator[Path]:
    """The Python files scanned for documenting comments."""
    for source in SOURCES:
        yield from sorted((root / source).rglob("*.py"))


def read_variables(root: Path = ROOT) -> dict[str, list[str]]:
    """Every ``INFRACALC_*`` name mentioned in the package's files (code, data, notebooks), with where."""
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        for path in sorted((root / source).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for name in set(NAME.findall(text)):
                found.setdefault(name, []).append(str(path.relative_to(root)))
    return found


def plain_markdown(text: str) -> str:
    """A comment's reStructuredText bits in Markdown: ``code`` and :role:`target` as `code`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda match: f"`{match.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _comment_blocks(text: str) -> Iterator[tuple[int, str]]:
    """Each run of consecutive ``#:`` comment lines (a line naming a variable starts a new one), joined."""
    block: list[str] = []
    start = previous = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.COMMENT or not token.string.startswith("#:"):
            continue
        line = token.start[0]
        text = token.string[2:].strip()
        if block and (line != previous + 1 or text.startswith("``INFRACALC_")):
            yield start, " ".join(block)
            block = []
        if not block:
            start = line
        block.append(text)
        previous = line
    if block:
        yield start, " ".join(block)


def _split_names(comment: str) -> tuple[list[str], str] | None:
    """``(names, description)`` of a documenting comment, or ``None`` for another ``#:`` comment."""
    match = _NAMES.match(comment)
    if match is None:
        return None
    names = re.findall(r"``(INFRACALC_[A-Z0-9_]+)``", match.group(1))
    rest = comment[match.end() :].strip()
    note = ""
    if rest.startswith("("):
        depth = 0
        for index, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                note, rest = rest[: index + 1], rest[index + 1 :].strip()
                break
    if not rest.startswith(":"):
        return names, ""  # names without a description: the test reports them
    description = rest[1:].strip()
    return names, f"{note} {description}".strip() if description else ""


def _literal(node: ast.expr) -> str | None:
    """The value of a default written as a literal (``"8080"``, ``8080``, ``str(1024 * 1024)``), else ``None``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and node.args:
        node = node.args[0]
    try:
        value = ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.BinOp) and all(isinstance(side, ast.Constant) for side in (node.left, node.right)):
            value = eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})  # noqa: S307 - constants only
        else:
            return None
    return str(value)


def _defaults(tree: ast.AST) -> dict[str, str]:
    """Each variable's default as the file's code reads it, when it is a literal."""
    defaults: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            arguments = list(node.args)
            for index, argument in enumerate(arguments[:-1]):
                if (
                    isinstance(argument, ast.Constant)
                    and isinstance(argument.value, str)
                    and NAME.fullmatch(argument.value)
                ):
                    value = _literal(arguments[index + 1])
                    if value is not None:
                        defaults.setdefault(argument.value, value)
    return defaults


@functools.cache
def catalogue(root: Path = ROOT) -> Catalogue:
    """The documented settings of the Python files under ``root`` (read once per process)."""
    found = Catalogue()
    for path in python_files(root):
        text = path.read_text(encoding="utf-8")
        defaults = _defaults(ast.parse(text))
        source = str(path.relative_to(root))
        for line, comment in _comment_blocks(text):
            parsed = _split_names(comment)
            if parsed is None:
                continue
            names, description = parsed
            required = re.match(r"\([^)]*\brequired\b", description) is not None
            for name in names:
                default = "required" if required else defaults.get(name, "")
                found.settings.append(Setting(name, plain_markdown(description), source, line, default))
    return found


def undocumented(root: Path = ROOT) -> dict[str, list[str]]:
    """The names the package mentions that no comment documents (with a description), and where they appear."""
    documented = {setting.name for setting in catalogue(root=root).settings if setting.description}
    return {name: places for name, places in read_variables(root).items() if name not in documented}


def render(found: Catalogue | None = None) -> str:
    """The settings reference as Markdown: one table per section."""
    found = found or catalogue()
    lines: list[str] = []
    for title, settings in found.sections():
        lines += [f"### {title}", "", "| variable | default | what it sets |", "|---|---|---|"]
        for setting in settings:
            default = f"`{setting.default}`" if setting.default and setting.default != "required" else setting.default
            lines.append(f"| `{setting.name}` | {default or '—'} | {setting.description} |")
        lines.append("")
    return "\n".join(lines)


def render_compose(env_example: Path = ROOT / ".env.example") -> str:
    """The compose file's settings (``.env.example``): each variable with the comment above it."""
    lines = ["| variable | example | what it sets |", "|---|---|---|"]
    comment: list[str] = []
    for raw in env_example.read_text(encoding="utf-8").splitlines():
        text = raw.strip()
        if text.startswith("# ---") or not text:
            comment = []
        elif text.startswith("#"):
            comment.append(text.lstrip("#").strip())
        elif "=" in text:
            name, _, value = text.partition("=")
            description = plain_markdown(" ".join(comment))
            lines.append(f"| `{name}` | `{value}` | {description} |")
    return "\n".join(lines) + "\n"
