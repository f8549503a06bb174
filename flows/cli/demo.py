"""``scalpflow demo``: embedded PostgreSQL, an in-process synthetic session, the monitor."""

from __future__ import annotations

import signal
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import _fail, _setup_logging, app, console
from flows.cli.options import Day, Minutes, Rate, Seed, Strikes, _progress
from flows.cli.summary import print_run_summary
from flows.config.settings import Settings


@app.command("demo")
def demo(
    seed: Seed = 7,
    day: Day = "2026-07-08",
    minutes: Minutes = 90,
    strikes: Strikes = 10,
    rate: Rate = 1.0,
    ui: Annotated[bool, typer.Option(help="Open the Streamlit monitor afterwards.")] = True,
    accounts: Annotated[
        Path | None,
        typer.Option(
            "--accounts",
            help="Accounts file (TOML); default: the three accounts of examples/accounts.toml.",
        ),
    ] = None,
    verbose: bool = False,
) -> None:
    """The embedded default: a synthetic session in-process through the flows into an embedded
    PostgreSQL, then the Streamlit monitor."""
    _setup_logging(verbose)
    # SIGTERM must unwind like Ctrl-C so the embedded PostgreSQL is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    from flows.config.accounts import AccountsFileError, load_accounts
    from flows.runtime.demo import DEMO_ACCOUNTS, embedded_dir, run_demo

    try:
        accounts_file = load_accounts(accounts or DEMO_ACCOUNTS)
    except AccountsFileError as exc:
        _fail(str(exc))
    try:
        result = run_demo(
            settings,
            accounts=accounts_file,
            seed=seed,
            day=date.fromisoformat(day),
            minutes=minutes,
            strikes=strikes,
            rate=rate,
            progress_factory=_progress,
        )
    except Exception as exc:
        from connectors.postgres.db import DatabaseError
        from connectors.postgres.embedded import EmbeddedPostgresError

        if isinstance(exc, DatabaseError | EmbeddedPostgresError):
            _fail(str(exc))
        raise
    try:
        from connectors.postgres.db import describe

        embedded = result.server is not None
        where = (
            f"embedded PostgreSQL in {embedded_dir(settings)}"
            if embedded
            else f"PostgreSQL {describe(result.dsn)}"
        )
        print_run_summary(result.dsn, result.run_id, where=where, embedded=embedded)
        if ui:
            from flows.runtime.demo import serve_monitor

            serve_monitor(result.dsn, settings.ui_port, console, settings.bind_address)
    finally:
        result.close()


# --------------------------------------------------------------------------------------- topics
