"""Rows the analyst's desk reads: per-minute quotes and a model's class probabilities, written
through the PostgreSQL sink as the flows write them (plain and TimescaleDB)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from connectors.postgres.sink import PostgresSink
from operators.events import RegimeClassified
from operators.market.quotes import Quote
from tests import both_modes

pg_dsn = both_modes.pg_dsn
pg_conn = both_modes.pg_conn
T0 = datetime(2026, 7, 7, 3, 45, tzinfo=UTC)


def _quote(m: int, bid: int, oi: int) -> Quote:
    ts = T0 + timedelta(minutes=m, seconds=59)
    return Quote(
        ts_event=ts, ts_recv=ts, token="o1", minute=T0 + timedelta(minutes=m), seq=m, ltp=bid + 5,
        bid=bid, ask=bid + 10, bid_qty=75, ask_qty=150, oi=oi, open_oi=oi - 25,
    )  # fmt: skip


def _regime(m: int, probabilities: dict[str, float] | None) -> RegimeClassified:
    ts = T0 + timedelta(minutes=m)
    extra: dict[str, Any] = {} if probabilities is None else {"probabilities": probabilities}
    return RegimeClassified(
        ts_event=ts, ts_recv=ts, underlying="NIFTY", regime="TRENDING", features={"adx": 30.0},
        model_version="rf-x" if probabilities else "rules-v1", **extra,
    )  # fmt: skip


def test_quotes_and_probabilities_are_stored_and_a_rewrite_keeps_them(
    pg_dsn: str, pg_conn: psycopg.Connection[Any]
) -> None:
    run = f"desk_{uuid.uuid4().hex[:8]}"
    p = {"TRENDING": 0.6, "RANGING": 0.3, "HIGH_VOL": 0.1}
    events = [_quote(0, 10_005, 1000), _regime(1, None), _quote(1, 10_100, 1075), _regime(2, p)]
    for _ in range(2):  # at-least-once: the same events again leave the same rows
        part = PostgresSink(pg_dsn, run).build_part("pg", "0", None)
        part.write_batch(events)
        part.close()
        quotes = pg_conn.execute(
            "SELECT minute, ts, ltp, bid, ask, bid_qty, ask_qty, oi, open_oi FROM quotes"
            " WHERE run_id = %s ORDER BY minute",
            (run,),
        ).fetchall()
        assert quotes == [
            (T0, T0 + timedelta(seconds=59), Decimal("100.10"), Decimal("100.05"),
             Decimal("100.15"), 75, 150, 1000, 975),
            (T0 + timedelta(minutes=1), T0 + timedelta(minutes=1, seconds=59), Decimal("101.05"),
             Decimal("101.00"), Decimal("101.10"), 75, 150, 1075, 1050),
        ]  # fmt: skip
        regimes = pg_conn.execute(
            "SELECT model_version, probabilities FROM regimes WHERE run_id = %s ORDER BY ts",
            (run,),
        ).fetchall()
        assert regimes == [("rules-v1", None), ("rf-x", p)]
