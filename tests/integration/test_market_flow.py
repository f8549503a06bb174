"""Market flow on real Kafka and PostgreSQL: candles equal a direct computation, reruns are
idempotent, and every corrupted message lands in the dead-letter topic with its reason."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from connectors.feeds.synthetic import FaultConfig, SyntheticConfig, SyntheticMarket
from connectors.feeds.synthetic.config import CORRUPT_KINDS
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from operators.events import Tick
from operators.market.candles import window_start
from tests.integration.helpers import (
    consume_all,
    create_topics,
    produce,
    produce_market,
    unique_topics,
)

CANDLE_ROWS = (
    "SELECT token, interval, ts, open, high, low, close, volume, vwap, ticks FROM candles"
    " WHERE run_id = %s ORDER BY 1, 2, 3"
)
INDICATOR_ROWS = (
    "SELECT token, interval, ts, values::text FROM indicators WHERE run_id = %s ORDER BY 1, 2, 3"
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def reference_minute_candles(ticks: list[Tick]) -> dict[tuple[str, object], tuple]:
    """Candles computed straight from the ticks: first/last by event time, volume from cum."""
    by_token: dict[str, list[Tick]] = defaultdict(list)
    for t in ticks:
        by_token[t.token].append(t)
    out = {}
    for token, series in by_token.items():
        series.sort(key=lambda t: t.ts_event)  # stable: equal times keep arrival order
        prev_cum = None
        buckets: dict[object, list[tuple[Tick, int]]] = defaultdict(list)
        for t in series:
            if prev_cum is None:
                vol = t.last_qty
                prev_cum = t.cum_volume
            else:
                vol = max(0, t.cum_volume - prev_cum)
                prev_cum = max(prev_cum, t.cum_volume)
            buckets[window_start(t.ts_event, "1m")].append((t, vol))
        for start, rows in buckets.items():
            prices = [t.ltp for t, _ in rows]
            volume = sum(v for _, v in rows)
            out[(token, start)] = (
                Decimal(rows[0][0].ltp) / 100,
                Decimal(max(prices)) / 100,
                Decimal(min(prices)) / 100,
                Decimal(rows[-1][0].ltp) / 100,
                volume,
                len(rows),
            )
    return out


def db_candles(conn, run_id: str) -> dict[tuple[str, object], tuple]:
    rows = conn.execute(
        "SELECT token, ts, open, high, low, close, volume, ticks FROM candles"
        " WHERE run_id = %s AND interval = '1m'",
        (run_id,),
    ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _run_market(kafka_bootstrap, pg_dsn, topics, run_id, instruments) -> None:
    config = PipelineConfig(
        run_id=run_id, pg_dsn=pg_dsn, kafka_bootstrap=kafka_bootstrap, topics=topics, trading=False
    )
    source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
    run_flow(
        build_flow(source, {i.token: i for i in instruments}, config, flow_id=f"market-{run_id}")
    )


def test_candles_in_postgres_equal_direct_computation_and_rerun_is_idempotent(
    kafka_bootstrap, pg_dsn, pg_conn
) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=11, date=date(2026, 7, 7), duration_minutes=8))
    messages = list(market.raw_messages())
    assert len(messages) >= 50_000
    topics = unique_topics("it-candles")
    create_topics(kafka_bootstrap, topics, tick_partitions=3)
    produce(kafka_bootstrap, topics.ticks, ((m.key, m.value, m.timestamp_ms) for m in messages))
    run_id = f"it-{uuid.uuid4().hex[:8]}"

    _run_market(kafka_bootstrap, pg_dsn, topics, run_id, market.instruments())

    ticks = [msgspec.json.decode(m.value, type=Tick) for m in messages]
    expected = reference_minute_candles(ticks)
    got = db_candles(pg_conn, run_id)
    assert len(got) == len(expected)
    for key, values in expected.items():
        o, h, low, c, vol, n = got[key]
        assert (o, h, low, c, vol, n) == values, key
    bars = consume_all(kafka_bootstrap, topics.bars)
    (row,) = pg_conn.execute("SELECT count(*) FROM candles WHERE run_id = %s", (run_id,))
    assert len(bars) == row[0]

    snapshot = pg_conn.execute(CANDLE_ROWS, (run_id,)).fetchall()
    indicators = pg_conn.execute(INDICATOR_ROWS, (run_id,)).fetchall()
    _run_market(kafka_bootstrap, pg_dsn, topics, run_id, market.instruments())
    assert pg_conn.execute(CANDLE_ROWS, (run_id,)).fetchall() == snapshot
    assert pg_conn.execute(INDICATOR_ROWS, (run_id,)).fetchall() == indicators


CORRUPT_RATE = 0.0017  # six kinds ≈ 1% of messages


def test_corrupted_messages_land_in_dlq_with_reason_and_good_ticks_are_processed(
    kafka_bootstrap, pg_dsn, pg_conn
) -> None:
    # every corrupting kind, nothing else
    rates: dict[str, Any] = {f"{kind}_rate": CORRUPT_RATE for kind in CORRUPT_KINDS}
    faults = FaultConfig(**rates)
    market = SyntheticMarket(
        SyntheticConfig(seed=5, date=date(2026, 7, 7), duration_minutes=3, faults=faults)
    )
    messages = list(market.raw_messages())
    bad = [m for m in messages if m.fault is not None]
    good = [m for m in messages if m.fault is None]
    counts = market.fault_counts()
    assert all(counts[k] > 0 for k in CORRUPT_KINDS)
    assert 0.005 < len(bad) / len(messages) < 0.02
    topics = unique_topics("it-dlq")
    create_topics(kafka_bootstrap, topics)
    produce(kafka_bootstrap, topics.ticks, ((m.key, m.value, m.timestamp_ms) for m in messages))
    run_id = f"it-{uuid.uuid4().hex[:8]}"

    _run_market(kafka_bootstrap, pg_dsn, topics, run_id, market.instruments())

    dlq = consume_all(kafka_bootstrap, topics.dlq)
    assert len(dlq) == len(bad)
    assert sorted(m.value() for m in dlq) == sorted(m.value for m in bad)
    expected_prefix = {
        "crossed": "CROSSED_BOOK",
        "off_grid": "OFF_GRID_PRICE",
        "negative_price": "NEGATIVE_PRICE",
        "unknown_token": "UNKNOWN_TOKEN",
        "invalid_json": "INVALID_JSON",
        "missing_field": "SCHEMA",
    }
    by_value = {m.value: m.fault for m in bad}
    for msg in dlq:
        headers = dict(msg.headers())
        fault = by_value[msg.value()]
        assert fault is not None
        assert headers["reason"].decode().startswith(expected_prefix[fault])
        assert headers["source"].decode().startswith(topics.ticks + "/")
    stored = pg_conn.execute(
        "SELECT count(*) FROM dead_letters WHERE source_topic = %s", (topics.ticks,)
    ).fetchone()[0]
    assert stored == len(bad)
    processed = pg_conn.execute(
        "SELECT sum(ticks) FROM candles WHERE run_id = %s AND interval = '1m'", (run_id,)
    ).fetchone()[0]
    assert processed == len(good)


def test_stored_indicator_snapshots_equal_offline_computation(
    kafka_bootstrap, pg_dsn, pg_conn
) -> None:
    """Issue 3: bars in PostgreSQL equal indicators computed offline from the same candles."""
    from datetime import timedelta

    from operators.events import Candle
    from operators.market.indicators import IndicatorSet

    market = SyntheticMarket(
        SyntheticConfig(seed=4, date=date(2026, 7, 8), duration_minutes=45, strikes_each_side=2)
    )
    topics = unique_topics("it-ind")
    create_topics(kafka_bootstrap, topics)
    produce_market(kafka_bootstrap, topics.ticks, market)
    run_id = f"it-{uuid.uuid4().hex[:8]}"
    _run_market(kafka_bootstrap, pg_dsn, topics, run_id, market.instruments())

    index = market.instruments()[0].token
    rows = pg_conn.execute(
        "SELECT c.ts, c.open, c.high, c.low, c.close, c.volume, c.vwap, c.ticks, i.values"
        " FROM candles c JOIN indicators i USING (run_id, token, interval, ts)"
        " WHERE c.run_id = %s AND c.token = %s AND c.interval = '1m' ORDER BY c.ts",
        (run_id, index),
    ).fetchall()
    assert len(rows) == 45
    offline = IndicatorSet()
    checked = 0
    for ts, o, h, low, c, vol, vwap, n, stored in rows:
        candle = Candle(
            ts_event=ts + timedelta(minutes=1),
            ts_recv=ts,
            token=index,
            interval="1m",
            start=ts,
            open=int(o * 100),
            high=int(h * 100),
            low=int(low * 100),
            close=int(c * 100),
            volume=vol,
            vwap=vwap * 100,
            ticks=n,
        )
        expected = msgspec.to_builtins(offline.update(candle))
        assert expected.keys() == stored.keys()
        for key, value in expected.items():
            if value is None:
                assert stored[key] is None, key
            else:
                assert stored[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
                checked += 1
    assert checked > 45 * 8  # the indicators warmed up and were compared
