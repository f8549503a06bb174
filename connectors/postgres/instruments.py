"""The instrument master in PostgreSQL: written by feeds, read by flows at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from connectors.postgres.db import connect
from connectors.postgres.sink import write_events
from operators.events import Instrument


def save_instruments(dsn: str, instruments: Iterable[Instrument]) -> int:
    with connect(dsn) as conn:
        return write_events(conn, "", instruments)


def load_instruments(dsn: str) -> dict[str, Instrument]:
    """Every instrument by token; an empty master is an error the caller should report."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT token, symbol, underlying, kind, exchange, strike, expiry, lot_size, tick_size"
            " FROM instruments"
        ).fetchall()
    return {
        r[0]: Instrument(
            token=r[0],
            symbol=r[1],
            underlying=r[2],
            kind=r[3],
            exchange=r[4],
            strike=_paise(r[5]),
            expiry=r[6],
            lot_size=r[7],
            tick_size=_paise(r[8]),
        )
        for r in rows
    }


def _paise(rupees: Decimal) -> int:
    return int(rupees * 100)
