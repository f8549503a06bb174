"""Idempotent PostgreSQL sink for Bytewax: typed events in, batched upserts out.

Every table has a natural key (DESIGN invariant 6), so a window or an epoch emitted twice by
Bytewax's at-least-once output leaves the tables unchanged. Rows are grouped by table and
written with ``executemany`` per batch in one transaction. A broken connection is retried with
backoff, then fails with a clear ``DatabaseError``: losing rows silently is not an option.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.db import DatabaseError, connect
from connectors.journal import journal_rows
from operators.adaptive import AdaptiveStateChanged
from operators.events import (
    Bar,
    DeadLetter,
    Instrument,
    OptionAnalytics,
    RegimeClassified,
    RiskEvent,
    SignalGenerated,
)
from operators.orders import OrderEvent
from operators.portfolio import PositionChanged, TradeClosed
from operators.risk_limits import OrderApproved, OrderDenied

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
RowFn = Callable[[str, Any], Iterable[tuple[str, Row]]]


def rupees(paise: int) -> Decimal:
    """Exact rupee amount of an integer paise value."""
    return Decimal(paise).scaleb(-2)


SQL: dict[str, str] = {
    "candles": """
        INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume, vwap,
                             ticks)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, token, interval, ts) DO UPDATE SET
          open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
          volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, ticks = EXCLUDED.ticks""",
    "indicators": """
        INSERT INTO indicators (run_id, token, interval, ts, values) VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (run_id, token, interval, ts) DO UPDATE SET values = EXCLUDED.values""",
    "option_analytics": """
        INSERT INTO option_analytics (run_id, token, ts, underlying, price, forward, iv, delta,
                                      gamma, theta, vega, iv_percentile)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, token, ts) DO UPDATE SET
          price = EXCLUDED.price, forward = EXCLUDED.forward, iv = EXCLUDED.iv,
          delta = EXCLUDED.delta, gamma = EXCLUDED.gamma, theta = EXCLUDED.theta,
          vega = EXCLUDED.vega, iv_percentile = EXCLUDED.iv_percentile""",
    "dead_letters": """
        INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, raw)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (source_topic, source_partition, source_offset) DO UPDATE SET
          reason = EXCLUDED.reason, raw = EXCLUDED.raw""",
    "risk_events": """
        INSERT INTO risk_events (run_id, ts, account, kind, detail, strategy, instrument)
        VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
    "regimes": """
        INSERT INTO regimes (run_id, underlying, ts, regime, features, model_version)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, underlying, ts) DO UPDATE SET regime = EXCLUDED.regime,
          features = EXCLUDED.features, model_version = EXCLUDED.model_version""",
    "signals": """
        INSERT INTO signals (run_id, signal_id, ts, strategy, underlying, instrument, side, action,
                             reason, strength)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, signal_id) DO UPDATE SET reason = EXCLUDED.reason""",
    "risk_decisions": """
        INSERT INTO risk_decisions (run_id, order_id, ts, account, strategy, instrument, side,
                                    decision, qty, requested_qty, reason)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, order_id) DO UPDATE SET decision = EXCLUDED.decision,
          qty = EXCLUDED.qty, requested_qty = EXCLUDED.requested_qty, reason = EXCLUDED.reason""",
    "ai_state": """
        INSERT INTO ai_state (run_id, ts, account, strategy, state) VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (run_id, ts, account, strategy) DO UPDATE SET state = EXCLUDED.state""",
    "instruments": """
        INSERT INTO instruments (token, symbol, underlying, kind, exchange, strike, expiry,
                                 lot_size, tick_size)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (token) DO UPDATE SET symbol = EXCLUDED.symbol,
          underlying = EXCLUDED.underlying, kind = EXCLUDED.kind, exchange = EXCLUDED.exchange,
          strike = EXCLUDED.strike, expiry = EXCLUDED.expiry, lot_size = EXCLUDED.lot_size,
          tick_size = EXCLUDED.tick_size""",
}


def _json(obj: Any) -> str:
    return msgspec.json.encode(obj).decode()


def bar_rows(run_id: str, bar: Bar) -> Iterable[tuple[str, Row]]:
    c = bar.candle
    yield "candles", (
        run_id, c.token, c.interval, c.start, rupees(c.open), rupees(c.high), rupees(c.low),
        rupees(c.close), c.volume, c.vwap / 100, c.ticks,
    )  # fmt: skip
    yield "indicators", (run_id, c.token, c.interval, c.start, _json(bar.indicators))


def analytics_rows(run_id: str, a: OptionAnalytics) -> Iterable[tuple[str, Row]]:
    ts = a.ts_event.replace(microsecond=0)
    yield "option_analytics", (
        run_id, a.token, ts, a.underlying, a.price, a.forward, a.iv, a.delta, a.gamma, a.theta,
        a.vega, a.iv_percentile,
    )  # fmt: skip


def dead_letter_rows(_run_id: str, d: DeadLetter) -> Iterable[tuple[str, Row]]:
    yield "dead_letters", (d.source_topic, d.source_partition, d.source_offset, d.reason, d.raw)


def risk_rows(run_id: str, e: RiskEvent) -> Iterable[tuple[str, Row]]:
    yield "risk_events", (run_id, e.ts_event, e.account, e.kind, e.detail, e.strategy, e.instrument)


def regime_rows(run_id: str, r: RegimeClassified) -> Iterable[tuple[str, Row]]:
    yield (
        "regimes",
        (run_id, r.underlying, r.ts_event, r.regime, _json(r.features), r.model_version),
    )


def signal_rows(run_id: str, s: SignalGenerated) -> Iterable[tuple[str, Row]]:
    yield "signals", (
        run_id, s.signal_id, s.ts_event, s.strategy, s.underlying, s.instrument, s.side, s.action,
        s.reason, s.strength,
    )  # fmt: skip


def approval_rows(run_id: str, a: OrderApproved) -> Iterable[tuple[str, Row]]:
    yield "risk_decisions", (
        run_id, a.order_id, a.ts_event, a.account, a.strategy, a.instrument, a.side, "APPROVED",
        a.qty, a.requested_qty, a.reason,
    )  # fmt: skip


def denial_rows(run_id: str, d: OrderDenied) -> Iterable[tuple[str, Row]]:
    yield "risk_decisions", (
        run_id, d.order_id, d.ts_event, d.account, d.strategy, d.instrument, d.side, "DENIED",
        d.qty, None, d.reason,
    )  # fmt: skip


def adaptive_rows(run_id: str, a: AdaptiveStateChanged) -> Iterable[tuple[str, Row]]:
    yield "ai_state", (run_id, a.ts_event, a.account, a.strategy, _json(a))


def instrument_rows(_run_id: str, i: Instrument) -> Iterable[tuple[str, Row]]:
    yield "instruments", (
        i.token, i.symbol, i.underlying, i.kind, i.exchange, rupees(i.strike), i.expiry,
        i.lot_size, rupees(i.tick_size),
    )  # fmt: skip


ROW_FNS: dict[type, RowFn] = {
    Bar: bar_rows,
    OptionAnalytics: analytics_rows,
    DeadLetter: dead_letter_rows,
    RiskEvent: risk_rows,
    RegimeClassified: regime_rows,
    SignalGenerated: signal_rows,
    Instrument: instrument_rows,
    OrderApproved: approval_rows,
    OrderDenied: denial_rows,
    AdaptiveStateChanged: adaptive_rows,
}


def register(event_type: type, sql: dict[str, str], row_fn: RowFn) -> None:
    """Let another module (e.g. the trade journal) add its event types and tables."""
    SQL.update(sql)
    ROW_FNS[event_type] = row_fn


def write_events(conn: psycopg.Connection, run_id: str, events: Iterable[Any]) -> int:
    """Upsert ``events`` in one transaction; returns the number of rows written.

    Trade-journal events (orders, fills, trades, positions) carry their own ``run_id`` and go
    through ``connectors.journal``; an event type with no table is a programming error.
    """
    grouped: dict[str, list[Row]] = defaultdict(list)
    journal: list[Any] = []
    for event in events:
        row_fn = ROW_FNS.get(type(event))
        if row_fn is not None:
            for table, row in row_fn(run_id, event):
                grouped[SQL[table]].append(row)
        elif isinstance(event, JOURNAL_TYPES):
            journal.append(event)
        else:
            msg = f"no table for {type(event).__name__}; register it in connectors.pg_sink"
            raise TypeError(msg)
    for sql, rows in journal_rows(journal).items():
        grouped[sql].extend(rows)
    with conn.transaction(), conn.cursor() as cur:
        for sql, rows in grouped.items():
            cur.executemany(sql, rows)
    return sum(len(rows) for rows in grouped.values())


JOURNAL_TYPES = (OrderEvent, PositionChanged, TradeClosed)


class _PartitionWriter(StatelessSinkPartition[Any]):
    def __init__(self, dsn: str, run_id: str, retries: int) -> None:
        self._dsn = dsn
        self._run_id = run_id
        self._retries = retries
        self._conn: psycopg.Connection | None = None
        self.rows = 0

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn)
        return self._conn

    def write_batch(self, items: list[Any]) -> None:
        for attempt in range(self._retries + 1):
            try:
                self.rows += write_events(self._connection(), self._run_id, items)
                return
            except (psycopg.OperationalError, DatabaseError) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt == self._retries:
                    msg = (
                        f"PostgreSQL write failed after {self._retries + 1} attempts "
                        f"({len(items)} rows kept in Kafka for replay): {exc}"
                    )
                    raise DatabaseError(msg) from exc
                delay = min(0.5 * 2**attempt, 10.0)
                log.warning("PostgreSQL write failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresSink(DynamicSink[Any]):
    """One connection per worker; each Bytewax batch is one transaction of upserts."""

    def __init__(self, dsn: str, run_id: str, retries: int = 5) -> None:
        self._dsn = dsn
        self._run_id = run_id
        self._retries = retries

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PartitionWriter:
        return _PartitionWriter(self._dsn, self._run_id, self._retries)
