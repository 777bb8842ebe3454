"""Parse a command line with the real `artifact` / `harness` parsers (typer's click), without
running it: what advice and the docs tell a user to type must at least be accepted."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

try:
    import click
except ImportError:  # typer >= 0.29 vendors click
    from typer import _click as click  # type: ignore[no-redef]


def _group(program: str):
    if program == "artifact":
        from artifact import cli

        cli._register()
        return typer.main.get_command(cli.app)
    from harness import cli as hcli

    return typer.main.get_command(hcli.app)


def program_of(word: str) -> str | None:
    name = Path(word).name
    return name if name in ("artifact", "harness") else None


def parse(command: str | list[str]) -> None:
    """Raise AssertionError naming the command when the real parser refuses it."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    program = program_of(argv[0])
    assert program, f"{argv[0]}: not an artifact or harness command"
    group = _group(program)
    ctx = click.Context(group, info_name=program)
    if len(argv) < 2 or argv[1] in ("--help", "-h"):
        return
    sub = group.get_command(ctx, argv[1])
    assert sub is not None, f"{command!r}: {program} has no command {argv[1]!r}"
    try:
        sub.make_context(argv[1], argv[2:], parent=ctx)
    except click.exceptions.UsageError as exc:
        raise AssertionError(f"{command!r}: {exc.format_message()}") from None
    except Exception as exc:
        if type(exc).__name__ != "Exit":  # --help ends parsing with Exit(0)
            raise


def options_of(program: str, command: str) -> set[str]:
    group = _group(program)
    sub = group.get_command(click.Context(group, info_name=program), command)
    return {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}


def commands_of(program: str) -> list[str]:
    group = _group(program)
    return sorted(group.list_commands(click.Context(group, info_name=program)))
