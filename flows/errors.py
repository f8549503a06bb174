"""The flows' error family (CLI input, run configuration, backtests), and the CLI's one place
that turns every ``ScalpflowError`` into one line."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from operators.errors import ScalpflowError


class FlowError(ScalpflowError):
    """A run, backtest or command could not start from what it was given."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (drivers like psycopg answer in several)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


class OneLineErrors(TyperGroup):
    """The ``scalpflow`` app's command group: any ``ScalpflowError`` a command (or a sub-app's
    command) raises ends as one red line on stderr and exit status 1, never a traceback.

    Set once on the top-level ``typer.Typer(cls=...)``: every command runs inside this
    group's ``invoke``, so command bodies need no ``try`` of their own.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except ScalpflowError as exc:
            Console(stderr=True).print(
                f"[bold red]error:[/] {escape(one_line(exc))}", soft_wrap=True, highlight=False
            )
            raise typer.Exit(1) from None
