"""PostgreSQL rows of every stored event: one row function per event type and the upsert
statement of each table it writes (``connectors.routes`` says which function an event uses).

A row function takes ``(run_id, event)`` and yields ``(table, row)`` pairs; ``SQL[table]`` is
the idempotent ``INSERT ... ON CONFLICT`` for that table (DESIGN invariant 6: a row written
twice leaves the table unchanged). Money is converted from paise to exact rupees here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from connectors.postgres import contract_notes, journal, quotes

if TYPE_CHECKING:  # the row functions only name their event types
    from operators import events as ev
    from operators.ai.adaptive import AdaptiveStateChanged
    from operators.trading.risk_limits import OrderApproved, OrderDenied

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
        INSERT INTO dead_letters (run_id, source_topic, source_partition, source_offset, reason,
                                  raw)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, source_topic, source_partition, source_offset) DO UPDATE SET
          reason = EXCLUDED.reason, raw = EXCLUDED.raw""",
    "risk_events": """
        INSERT INTO risk_events (run_id, ts, account, kind, detail, strategy, instrument)
        VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
    "regimes": """
        INSERT INTO regimes (run_id, underlying, ts, regime, features, model_version,
                             probabilities)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, underlying, ts) DO UPDATE SET regime = EXCLUDED.regime,
          features = EXCLUDED.features, model_version = EXCLUDED.model_version,
          probabilities = EXCLUDED.probabilities""",
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


def bar_rows(run_id: str, bar: ev.Bar) -> Iterable[tuple[str, Row]]:
    c = bar.candle
    yield "candles", (
        run_id, c.token, c.interval, c.start, rupees(c.open), rupees(c.high), rupees(c.low),
        rupees(c.close), c.volume, c.vwap / 100, c.ticks,
    )  # fmt: skip
    yield "indicators", (run_id, c.token, c.interval, c.start, _json(bar.indicators))


def analytics_rows(run_id: str, a: ev.OptionAnalytics) -> Iterable[tuple[str, Row]]:
    ts = a.ts_event.replace(microsecond=0)
    yield "option_analytics", (
        run_id, a.token, ts, a.underlying, a.price, a.forward, a.iv, a.delta, a.gamma, a.theta,
        a.vega, a.iv_percentile,
    )  # fmt: skip


def dead_letter_rows(run_id: str, d: ev.DeadLetter) -> Iterable[tuple[str, Row]]:
    yield "dead_letters", (
        run_id, d.source_topic, d.source_partition, d.source_offset, d.reason, d.raw,
    )  # fmt: skip


def risk_rows(run_id: str, e: ev.RiskEvent) -> Iterable[tuple[str, Row]]:
    yield "risk_events", (run_id, e.ts_event, e.account, e.kind, e.detail, e.strategy, e.instrument)


def regime_rows(run_id: str, r: ev.RegimeClassified) -> Iterable[tuple[str, Row]]:
    p = r.probabilities
    yield "regimes", (
        run_id, r.underlying, r.ts_event, r.regime, _json(r.features), r.model_version,
        None if p is msgspec.UNSET else _json(p),
    )  # fmt: skip


def signal_rows(run_id: str, s: ev.SignalGenerated) -> Iterable[tuple[str, Row]]:
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


def instrument_rows(_run_id: str, i: ev.Instrument) -> Iterable[tuple[str, Row]]:
    yield "instruments", (
        i.token, i.symbol, i.underlying, i.kind, i.exchange, rupees(i.strike), i.expiry,
        i.lot_size, rupees(i.tick_size),
    )  # fmt: skip


SQL.update(contract_notes.SQL)
SQL.update(quotes.SQL)
SQL.update(journal.SQL)
