"""Historical candles from ``getCandleData`` into the PostgreSQL ``candles`` table.

Requests are chunked by the per-interval day limit (``AngelOneSettings.candle_max_days``)
and paced by the session's candle rate limiter (3 requests/s). Rows are upserted on the
natural key ``(run_id, token, interval, ts)`` with ``run_id = ''`` and ``interval`` the Angel
One interval name, so a re-run or an overlapping range is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from connectors.feeds.angelone.errors import AngelOneError
from connectors.postgres.candle_store import StoredCandle
from operators.market.sessions import IST

log = logging.getLogger(__name__)

FetchCandles = Callable[[str, str, str, str, str], Sequence[Sequence[Any]]]
_CENT = Decimal("0.01")
_UPSERT = """
INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume, vwap, ticks)
VALUES ('', %s, %s, %s, %s, %s, %s, %s, %s, NULL, 0)
ON CONFLICT (run_id, token, interval, ts) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
    close = EXCLUDED.close, volume = EXCLUDED.volume
"""


@dataclass(frozen=True, slots=True)
class CandleRow(StoredCandle):
    """A fetched candle with the instrument and interval it is stored under."""

    token: str
    interval: str


def chunk_range(
    start: datetime, end: datetime, max_days: int
) -> Iterator[tuple[datetime, datetime]]:
    """Split [start, end] into windows of at most ``max_days`` days; the next window starts
    one minute after the previous one ends (the API's resolution), so none overlap."""
    if end < start:
        msg = f"backfill range is empty: {start} > {end}"
        raise ValueError(msg)
    if max_days <= 0:
        msg = f"max_days must be positive, got {max_days}"
        raise ValueError(msg)
    cursor = start
    while cursor <= end:
        window_end = min(cursor + timedelta(days=max_days), end)
        yield cursor, window_end
        cursor = window_end + timedelta(minutes=1)


def api_time(ts: datetime) -> str:
    """The API's ``yyyy-MM-dd HH:mm`` in IST."""
    return ts.astimezone(IST).strftime("%Y-%m-%d %H:%M")


def parse_rows(token: str, interval: str, rows: Sequence[Sequence[Any]]) -> list[CandleRow]:
    """``[iso_ts+05:30, o, h, l, c, v]`` rows → CandleRow with exact rupee Decimals."""
    out = []
    for row in rows:
        try:
            ts = datetime.fromisoformat(str(row[0]))
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=IST)
            o, h, lo, c = (Decimal(str(x)).quantize(_CENT) for x in row[1:5])
            out.append(CandleRow(ts, o, h, lo, c, int(row[5]), token, interval))
        except (IndexError, ValueError, ArithmeticError) as exc:
            msg = f"unusable candle row for token {token}: {row!r}"
            raise AngelOneError(msg) from exc
    return out


def upsert_candles(conn: psycopg.Connection, rows: Sequence[CandleRow]) -> None:
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            _UPSERT,
            [(r.token, r.interval, r.ts, r.open, r.high, r.low, r.close, r.volume) for r in rows],
        )


def backfill_candles(
    fetch: FetchCandles,
    conn: psycopg.Connection,
    *,
    exchange: str,
    token: str,
    interval: str,
    start: datetime,
    end: datetime,
    max_days: Mapping[str, int],
) -> int:
    """Fetch every chunk of [start, end] for one token and upsert it; returns rows written.

    ``fetch(exchange, token, interval, fromdate, todate)`` is ``AngelOneSession.candles``
    (which paces and retries rate limits).
    """
    if interval not in max_days:
        msg = f"unknown interval {interval!r}; expected one of {', '.join(max_days)}"
        raise ValueError(msg)
    written = 0
    for lo, hi in chunk_range(start, end, max_days[interval]):
        rows = parse_rows(
            token, interval, fetch(exchange, token, interval, api_time(lo), api_time(hi))
        )
        upsert_candles(conn, rows)
        written += len(rows)
        log.info("backfill %s %s %s..%s: %d candles", token, interval, lo, hi, len(rows))
    return written
