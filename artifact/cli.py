"""`artifact`: the host-side command line (typer). Each group of commands lives in its own module
and registers itself here, so this file stays a table of contents."""

from __future__ import annotations

import os
import sys

import typer

from artifact.errors import ArtifactError
from harness.errors import HarnessError
from harness.helptext import install as _plain_help

_plain_help()  # TEXT, PATH, RESULTS_DIR in --help, not <str>, <path>, {results_dir}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run the pinned benchmark container, collect its results, check them against a reference.",
)


def _register() -> None:
    # Imported here so `artifact --help` stays fast and a missing optional module names itself.
    from artifact.commands import check, derive, launch, report, reproduce

    for commands in (launch, check, report, derive, reproduce):
        commands.register(app)


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        rv = app(args=argv, standalone_mode=False)
        if rv == 130:  # typer turns KeyboardInterrupt into a silent Exit(130)
            print("error: interrupted", file=sys.stderr)
        if isinstance(rv, int):  # click returns typer.Exit's code instead of raising it
            return rv
    except (HarnessError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors and the like
        try:
            import click
        except ImportError:  # typer >= 0.29 vendors click instead of depending on it
            from typer import _click as click

        if isinstance(exc, click.exceptions.ClickException):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return 2
        return _internal_error(exc)  # MemoryError, RecursionError and bugs alike
    return 0


def _internal_error(exc: BaseException) -> int:
    """Exit 1 is a failed claim and nothing else: an error no check anticipated is one line and
    exit 2 (the inputs could not be judged), with the traceback only on request."""
    if os.environ.get("ARTIFACT_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    msg = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(f"error: internal error, nothing was judged: {type(exc).__name__}: {msg} "
          "(ARTIFACT_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
