"""load_candles on a real PostgreSQL: IST date bounds, order, run filter, one row per minute."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from connectors.postgres.candle_store import ist_day_bounds, load_candles
from connectors.postgres.db import DatabaseError
from operators.market.sessions import IST

TOKEN = "candle-store-test"


def ts(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=IST)


ROWS = [  # (run_id, IST time, close)
    ("r1", ts(2025, 3, 4, 9, 16), "100.05"),
    ("r1", ts(2025, 3, 4, 9, 15), "100.00"),  # inserted out of order
    ("r2", ts(2025, 3, 4, 9, 15), "999.00"),  # same minute, other run
    ("r2", ts(2025, 3, 5, 0, 30), "101.00"),  # 2025-03-04 19:00 UTC, but IST date 03-05
    ("r1", ts(2025, 3, 3, 23, 59), "98.00"),  # the day before
]


@pytest.fixture(scope="module")
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume)"
            " VALUES (%s, %s, '1m', %s, %s, %s, %s, %s, 7) ON CONFLICT DO NOTHING",
            [(r, TOKEN, t, Decimal(c), Decimal(c), Decimal(c), Decimal(c)) for r, t, c in ROWS],
        )
    return pg_dsn


def test_ist_dates_order_and_one_row_per_minute(dsn: str) -> None:
    s = load_candles(dsn, TOKEN, "1m", date(2025, 3, 4), date(2025, 3, 4))
    assert [t.astimezone(IST) for t in s.ts] == [ts(2025, 3, 4, 9, 15), ts(2025, 3, 4, 9, 16)]
    assert s.close.tolist() == [100.0, 100.05]  # r1 wins the shared minute
    assert s.volume.tolist() == [7.0, 7.0]
    assert s.sessions == [date(2025, 3, 4)]
    both = load_candles(dsn, TOKEN, "1m", date(2025, 3, 3), date(2025, 3, 5))
    assert len(both) == 4
    assert both.sessions == [date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)]
    assert both.ts[-1] == datetime(2025, 3, 4, 19, 0, tzinfo=UTC)
    assert both.take(both.session == date(2025, 3, 5).toordinal()).close.tolist() == [101.0]


def test_run_filter_and_empty(dsn: str) -> None:
    r2 = load_candles(dsn, TOKEN, "1m", date(2025, 3, 4), date(2025, 3, 5), run_id="r2")
    assert r2.close.tolist() == [999.0, 101.0]
    assert len(load_candles(dsn, TOKEN, "1s", date(2025, 3, 4), date(2025, 3, 5))) == 0


def test_bad_range_and_unreachable_server() -> None:
    with pytest.raises(ValueError, match="before"):
        ist_day_bounds(date(2025, 3, 5), date(2025, 3, 4))
    with pytest.raises(DatabaseError, match="cannot connect"):
        load_candles(
            "postgresql://x@127.0.0.1:1/none", TOKEN, "1m", date(2025, 3, 4), date(2025, 3, 4)
        )
