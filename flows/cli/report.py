"""``scalpflow report contract-note``: an account's contract note for a trade date, CSV + PDF.

Mounted by flows/cli/app.py through ``register(app, feed_app)``.

scalpflow report contract-note --account paper --date 2026-07-08
scalpflow report contract-note --account paper --date 2026-07-08 --run bt-1 --pdf note.pdf

The note is the one the flow stored at session close (``contract_notes``); for a day that has
not closed yet it is computed from the day's fills with the same ledger and marked
provisional. Without ``--run`` the one run that traded the account that day is used.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from connectors.postgres.contract_notes import load_note, runs_trading
from dashboards.contract_note import COLUMNS, note_table, write_csv, write_pdf
from flows.config.settings import Settings
from operators.trading.costs import CostScheduleError

err_console = Console(stderr=True)
report_app = typer.Typer(help="Reports from the journal.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {' '.join(message.split())}", highlight=False)
    raise typer.Exit(code=1)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"--date {text!r} is not a date: use YYYY-MM-DD")


def _pick_run(conn: psycopg.Connection[Any], account: str, day: date, run: str | None) -> str:
    if run is not None:
        return run
    runs = runs_trading(conn, account, day)
    if not runs:
        _fail(f"account {account!r} has no fills on {day}: check --account/--date")
    if len(runs) > 1:
        _fail(f"several runs traded account {account!r} on {day} ({', '.join(runs)}): pass --run")
    return runs[0]


@report_app.command("contract-note")
def contract_note(
    account: Annotated[str, typer.Option(help="Account id.")],
    day: Annotated[str, typer.Option("--date", help="Trade date (YYYY-MM-DD, IST).")],
    run: Annotated[
        str | None, typer.Option(help="Run id (default: the one run that traded that day).")
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="CSV path (default contract_note_A_D.csv).")
    ] = None,
    pdf_path: Annotated[
        Path | None, typer.Option("--pdf", help="PDF path (default contract_note_A_D.pdf).")
    ] = None,
) -> None:
    """Write the contract note (per scrip: quantities, values, every charge, net) as CSV + PDF."""
    trade_date = _day(day)
    dsn = Settings().dsn()
    if not dsn:
        _fail("set SCALPFLOW_PG_DSN (e.g. from `scalpflow infra up`)")
    stem = f"contract_note_{account}_{trade_date.isoformat()}"
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            run_id = _pick_run(conn, account, trade_date, run)
            loaded = load_note(conn, run_id, account, trade_date)
    except psycopg.errors.UndefinedTable:
        _fail("the database has no journal tables yet: run `scalpflow db migrate`")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        _fail(f"cannot reach PostgreSQL ({first}): check SCALPFLOW_PG_DSN")
    except CostScheduleError as exc:
        _fail(str(exc))
    if loaded is None:
        _fail(f"run {run_id!r} has no fills of account {account!r} on {trade_date}")
    note, provisional = loaded.note, loaded.provisional
    csv_out = write_csv(csv_path or Path(f"{stem}.csv"), note, provisional=provisional)
    pdf_out = write_pdf(pdf_path or Path(f"{stem}.pdf"), note, provisional=provisional)
    rows, total = note_table(note)
    table = Table(title=f"contract note {account} {trade_date} (run {run_id})")
    keep = (0, 2, 4, 13, 14, 15)  # scrip, buy/sell value, charges, net, Dr/Cr
    for i in keep:
        table.add_column(COLUMNS[i], justify="left" if i == 0 else "right")
    for cells in [*rows, total]:
        table.add_row(*(cells[i] for i in keep))
    out = Console()
    out.print(table)
    if provisional:
        out.print("[yellow]provisional[/]: the session has not closed; charges so far")
    out.print(f"wrote {csv_out} and {pdf_out}")


def register(app: typer.Typer, _feed_app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
