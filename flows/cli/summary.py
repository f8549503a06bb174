"""The lines a command prints when it is done: what it wrote, where, and where to look next.

One printer for ``run`` and ``demo`` (and anything else that journals a run), so every
command ends the same way: rows per table, P&L per account, the kill-switch events, where the
data lives and the commands that open it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from connectors.postgres.run_summary import RunSummary


def _rupees(value: object) -> str:
    return f"₹{value:,.2f}"


def print_summary(
    console: Console, summary: RunSummary, *, where: str, next_steps: Sequence[str]
) -> None:
    """Rows written, session P&L per account, kill-switch events, where and what next."""
    table = Table(title=f"run {summary.run_id}: rows written")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    if summary.pnl:
        for account, net in summary.pnl.items():
            trades = summary.trades.get(account, 0)
            console.print(f"session P&L {account}: {_rupees(net)} ({trades} round trips)")
    else:
        console.print("session P&L: no positions taken")
    if summary.kills:
        for kill in summary.kills:
            console.print(f"[red]kill switch[/] {kill.account} at {kill.ts}: {kill.detail}")
    else:
        console.print("kill switch: not tripped")
    console.print(f"data: {where} (run_id={summary.run_id})")
    for step in next_steps:
        console.print(f"next: {step}")


def print_run_summary(dsn: str, run_id: str, *, where: str, embedded: bool = False) -> None:
    """What a run wrote and the commands to look at it (the end of ``run`` and ``demo``)."""
    from connectors.postgres.run_summary import summarise

    monitor = "scalpflow monitor" if embedded else "SCALPFLOW_PG_DSN=... scalpflow monitor"
    print_summary(
        Console(soft_wrap=True),
        summarise(dsn, run_id),
        where=where,
        next_steps=[
            f"{monitor}  (the monitor on this data; pick run {run_id})",
            *(
                []
                if embedded
                else [f"scalpflow report contract-note --account <id> --date <day> --run {run_id}"]
            ),
        ],
    )
