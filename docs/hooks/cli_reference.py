"""The command line's reference, from its own help: every ``infracalc`` command as ``--help`` prints it."""

from __future__ import annotations

from collections.abc import Iterator

import click

from infracalc.cli import main

#: The width the help is wrapped at (click's default is the terminal's).
WIDTH = 100


def commands(group: click.Command = main, path: tuple[str, ...] = ("infracalc",)) -> Iterator[tuple[str, ...]]:
    """Every command's path, the group first, then its subcommands in name order, depth first."""
    yield path
    if isinstance(group, click.Group):
        for name in sorted(group.commands):
            yield from commands(group.commands[name], (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    """The command ``path`` names (``("infracalc", "audit", "verify")``).

    Raises:
        KeyError: no such command.
    """
    command: click.Command = main
    for name in path[1:]:
        if not isinstance(command, click.Group) or name not in command.commands:
            raise KeyError(" ".join(path))
        command = command.commands[name]
    return command


def help_text(path: tuple[str, ...]) -> str:
    """What ``<path> --help`` prints."""
    context: click.Context | None = None
    for depth in range(1, len(path) + 1):
        context = click.Context(
            command_at(path[:depth]), info_name=path[depth - 1], parent=context, max_content_width=WIDTH
        )
        context.terminal_width = WIDTH
    if context is None:
        raise KeyError("no command")
    return context.command.get_help(context)


def render() -> str:
    """The reference as Markdown: one section per command, its help in a text block."""
    lines: list[str] = []
    for path in commands():
        lines += [f"### `{' '.join(path)}`", "", "```text", help_text(path).rstrip(), "```", ""]
    return "\n".join(lines)
