"""The ``scalpflow`` command line (typer + rich).

scalpflow demo [--no-ui]            embedded PostgreSQL, in-process synthetic session, monitor
scalpflow monitor                   the monitor on SCALPFLOW_PG_DSN or the demo's stored data
scalpflow infra up|down|status      real Kafka (Maven Central jars) + PostgreSQL here
scalpflow feed synthetic ...        a synthetic session into Kafka md.ticks
scalpflow run ...                   the flows over Kafka into PostgreSQL
scalpflow risk reset ...            re-arm an account after a kill switch/halt (journaled)
scalpflow topics                    offsets per topic/partition (kafka-python)
scalpflow db migrate                apply SQL migrations
scalpflow report contract-note ...  an account's contract note for a day (CSV + PDF)

Each command is a module of its own (``_mount_commands``); this one holds the root app and
the helpers every command shares: one-line errors, logging, the DSN check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from flows.config.settings import Settings
from flows.errors import OneLineErrors

REPO = Path(__file__).resolve().parents[2]
console = Console(stderr=True)

app = typer.Typer(
    cls=OneLineErrors,
    help="scalpflow: streaming paper trading and research for NSE options.",
    no_args_is_help=True,
)
feed_app = typer.Typer(help="Market-data feeds into Kafka.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str) -> NoReturn:
    """Print a one-line error (no traceback) and exit 1."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=1)


def _require_dsn(settings: Settings) -> str:
    dsn = settings.dsn()
    if not dsn:
        _fail("set SCALPFLOW_PG_DSN (e.g. from `scalpflow infra up`) or use `scalpflow demo`")
    return dsn


def _mount_commands() -> None:
    """Each command lives in a module of its own; importing it adds it to ``app``."""
    import importlib

    for module in (
        "flows.cli.infra",
        "flows.cli.feed",
        "flows.cli.run",
        "flows.cli.risk",
        "flows.cli.demo",
        "flows.cli.topics",
        "flows.cli.ai",
        "flows.cli.backtest",
        "flows.cli.angelone",
        "flows.cli.report",
        "flows.cli.monitor",
    ):
        mod = importlib.import_module(module)
        register = getattr(mod, "register", None)
        if register is not None:
            register(app, feed_app)


_mount_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    # ``python -m flows.cli.app``: run the importable module's app, the one the commands joined
    from flows.cli.app import main as _main

    _main()
