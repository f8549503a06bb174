"""Options and helpers shared by the commands that make a synthetic session (feed, demo)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from connectors.feeds.synthetic import SyntheticMarket

from flows.cli.app import console


def _progress(*, percent: bool = False) -> Progress:
    """The commands' progress bar on stderr (``percent`` adds a percentage column)."""
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if percent:
        columns.append(TaskProgressColumn())
    return Progress(*columns, TimeElapsedColumn(), console=console, transient=False)


def _market(
    seed: int, day: date, minutes: int | None, strikes: int, rate: float, faults: float = 0.0
) -> SyntheticMarket:
    from connectors.feeds.synthetic import FaultConfig, SyntheticConfig, SyntheticMarket

    fault_config = FaultConfig.every_kind(rate=faults) if faults > 0 else FaultConfig()
    return SyntheticMarket(
        SyntheticConfig.session(seed, day, minutes, strikes, rate, faults=fault_config)
    )


def _trading_date(value: str) -> str:
    """Refuse a malformed ``--date`` as a usage error (one line), not a traceback later."""
    try:
        date.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-07-08"
        raise typer.BadParameter(msg) from None
    return value


Seed = Annotated[int, typer.Option(min=0, help="Random seed: same seed and date, same ticks.")]
Day = Annotated[
    str,
    typer.Option(
        "--date",
        callback=_trading_date,
        help="Trading date (YYYY-MM-DD); NIFTY weeklies expire on Tuesday.",
    ),
]
Minutes = Annotated[
    int,
    typer.Option(min=1, max=375, help="Session length from 09:15 IST, minutes (375 = full day)."),
]
Strikes = Annotated[int, typer.Option(min=0, max=40, help="Strikes each side of ATM.")]
Rate = Annotated[float, typer.Option(min=0.01, max=10.0, help="Tick-rate scale (1 = realistic).")]
