"""A click Group that imports its subcommands on first use.

The short help of each command is declared next to its import path, so
listing commands (``pyfi --help``) imports none of them.
"""
from __future__ import annotations

import importlib
import logging

import click

from pyfi.errors import PyfiError, first_line, known_error

log = logging.getLogger("pyfi")


class PyfiClickError(click.ClickException):
    """A PyfiError as click shows it: ``Error: <message>``, with its exit code."""

    def __init__(self, error: PyfiError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class LazyGroup(click.Group):
    def __init__(self, *args, commands: dict[str, tuple[str, str]] | None = None,
                 translate_errors: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(commands or {})
        self.translate_errors = translate_errors

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in self.lazy:
            return None
        module_name, attr = self.lazy[name][0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        self.commands[name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                rows.append((name, self.commands[name].get_short_help_str(limit=formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        if not self.translate_errors:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, BrokenPipeError):
            raise  # (a closed stdout is the root group's: pyfi.cli.RootGroup)
        except PyfiError as exc:
            if _debug(ctx):
                raise
            raise PyfiClickError(exc) from exc
        except Exception as exc:  # noqa: BLE001 - last line of defence: one line, exit 1
            if _debug(ctx):
                raise
            translated = known_error(exc)
            if translated is not None:
                raise PyfiClickError(translated) from exc
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {first_line(exc)} (rerun with --debug for the traceback)"
            ) from exc


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug"))
