"""Candle backfill: chunked by the day limit, paced at 3 requests/s, upserted into PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from connectors.feeds.angelone.backfill import api_time, backfill_candles, chunk_range
from connectors.feeds.angelone.errors import RequestRejectedError
from operators.market.sessions import IST
from tests.fake_angelone import FakeAngelOne, fake_candle
from tests.fake_angelone.fixtures import *  # noqa: F403
from tests.fake_angelone.fixtures import logged_in

pytestmark = pytest.mark.postgres
TOKEN = "26000"


def test_chunks_respect_the_limit_and_do_not_overlap() -> None:
    start = datetime(2026, 1, 1, 9, 15, tzinfo=IST)
    end = datetime(2026, 3, 15, 15, 30, tzinfo=IST)
    chunks = list(chunk_range(start, end, 30))
    assert chunks[0][0] == start
    assert chunks[-1][1] == end
    assert all(hi - lo <= timedelta(days=30) for lo, hi in chunks)
    assert all(b[0] - a[1] == timedelta(minutes=1) for a, b in itertools.pairwise(chunks))
    assert len(chunks) == 3
    assert api_time(start) == "2026-01-01 09:15"


def _stored(conn: psycopg.Connection, token: str) -> list[tuple]:
    return conn.execute(
        "SELECT ts, open, high, low, close, volume FROM candles "
        "WHERE run_id = '' AND token = %s AND interval = 'ONE_MINUTE' ORDER BY ts",
        (token,),
    ).fetchall()


def test_backfill_upserts_every_candle_within_the_rate_limit(
    fake_angelone: FakeAngelOne, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    session = logged_in(fake_angelone, tmp_path, candles_rate_per_s=3.0)
    start = datetime(2026, 7, 20, 9, 15, tzinfo=IST)  # Monday
    end = datetime(2026, 7, 23, 15, 30, tzinfo=IST)  # Thursday
    fake_angelone.fail_next("candles", "rate_limit", times=1)

    def backfill() -> int:  # four trading days, one request per day
        return backfill_candles(
            session.candles,
            pg_conn,
            exchange="NSE",
            token=TOKEN,
            interval="ONE_MINUTE",
            start=start,
            end=end,
            max_days={"ONE_MINUTE": 1},
        )

    written = backfill()
    rows = _stored(pg_conn, TOKEN)
    assert written == len(rows) == 4 * 375
    first_ts = rows[0][0]
    assert first_ts == start
    o, h, lo, c, v = fake_candle(TOKEN, start)
    assert rows[0][1:] == (
        Decimal(str(o)).quantize(Decimal("0.01")),
        Decimal(str(h)).quantize(Decimal("0.01")),
        Decimal(str(lo)).quantize(Decimal("0.01")),
        Decimal(str(c)).quantize(Decimal("0.01")),
        v,
    )
    assert rows[-1][0] == datetime(2026, 7, 23, 15, 29, tzinfo=IST)
    # 4 chunks of ≤ 1 day + the one scripted 403; the fake saw no other rate-limit breach
    assert len(fake_angelone.candle_requests) == 4  # served chunks
    assert fake_angelone.candle_rate_rejections == 0
    assert fake_angelone.count("candles") == 5
    assert fake_angelone.count("candles", 403) == 1
    again = backfill()
    assert again == written
    assert len(_stored(pg_conn, TOKEN)) == written
    assert fake_angelone.count("candles", 403) == 1


def test_a_range_over_the_broker_limit_is_refused_without_retries(
    fake_angelone: FakeAngelOne, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    session = logged_in(fake_angelone, tmp_path)
    start = datetime(2026, 7, 1, 9, 15, tzinfo=IST)
    end = start + timedelta(days=40)
    with pytest.raises(RequestRejectedError, match="exceeds the limit"):
        backfill_candles(
            session.candles,
            pg_conn,
            exchange="NSE",
            token="26009",
            interval="ONE_MINUTE",
            start=start,
            end=end,
            max_days={"ONE_MINUTE": 60},
        )  # a wrong local limit
    assert len(fake_angelone.candle_requests) == 1
    assert _stored(pg_conn, "26009") == []
