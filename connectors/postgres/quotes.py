"""Per-minute quotes in PostgreSQL: the sink's rows for ``operators.market.quotes.Quote``
(``infra/postgres/migrations/010_quotes.sql``), read by the monitor's option chain."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from operators.market.quotes import Quote

Row = tuple[Any, ...]

SQL: dict[str, str] = {
    "quotes": """
        INSERT INTO quotes (run_id, token, minute, ts, seq, ltp, bid, ask, bid_qty, ask_qty,
                            oi, open_oi)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, token, minute) DO UPDATE SET ts = EXCLUDED.ts,
          seq = EXCLUDED.seq, ltp = EXCLUDED.ltp, bid = EXCLUDED.bid, ask = EXCLUDED.ask,
          bid_qty = EXCLUDED.bid_qty, ask_qty = EXCLUDED.ask_qty, oi = EXCLUDED.oi,
          open_oi = EXCLUDED.open_oi""",
}


def _rupees(paise: int) -> Decimal:
    return Decimal(paise).scaleb(-2)


def quote_rows(run_id: str, q: Quote) -> Iterable[tuple[str, Row]]:
    yield "quotes", (
        run_id, q.token, q.minute, q.ts_event, q.seq, _rupees(q.ltp), _rupees(q.bid),
        _rupees(q.ask), q.bid_qty, q.ask_qty, q.oi, q.open_oi,
    )  # fmt: skip
