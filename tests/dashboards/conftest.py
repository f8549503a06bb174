"""A populated run for the dashboard tests: plain SQL inserts into a real database.

The dashboard tests get a database of their own: their hand-made runs register extra NIFTY
indices in the (global) instrument master, which a flow elsewhere in the session would rightly
refuse as ambiguous. Every test gets its own run id (and run-suffixed instrument tokens and
dead-letter topic), so tests never see each other's rows except in deliberately global queries.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.conftest import database_fixtures

SESSION_OPEN = datetime(2025, 1, 6, 3, 45, tzinfo=UTC)  # 09:15 IST


@dataclass(frozen=True)
class Populated:
    run_id: str
    index_token: str
    option_token: str
    candles: int
    unindicated: int  # the first candles have no indicator row (warm-up)
    fills: int
    trades: int
    trade_nets: tuple[Decimal, ...]
    dead_reason: str
    dead_letters: int
    risk_events: int


def populate(
    conn: psycopg.Connection[Any],
    run_id: str,
    *,
    kind: str = "demo",
    started_at: datetime = SESSION_OPEN,
    candles: int = 30,
    fills: int = 6,
    register: bool = True,
) -> Populated:
    """Insert one small but complete run: candles + indicators, journal, AI, risk, DLQ."""
    index_token = f"idx-{run_id}"
    option_token = f"opt-{run_id}"
    if register:
        conn.execute(
            "INSERT INTO runs (run_id, kind, started_at, config_hash, config, note)"
            " VALUES (%s, %s, %s, %s, '{}', %s)",
            (run_id, kind, started_at, "c0ffee" + run_id[-6:], f"test {kind} run"),
        )
    conn.execute(
        "INSERT INTO instruments (token, symbol, underlying, kind, exchange, strike, expiry,"
        " lot_size, tick_size) VALUES"
        " (%s, 'NIFTY', 'NIFTY', 'INDEX', 'NSE', 0, NULL, 1, 0.05),"
        " (%s, 'NIFTY07JAN2524000CE', 'NIFTY', 'CE', 'NFO', 24000, '2025-01-07', 75, 0.05)",
        (index_token, option_token),
    )
    unindicated = 3
    price = Decimal("24000.00")
    candle_rows, indicator_rows = [], []
    for i in range(candles):
        ts = started_at + timedelta(minutes=i)
        step = Decimal((i * 37) % 11 - 5) * Decimal("1.5")
        o, c = price, price + step
        hi, lo = max(o, c) + Decimal("2.35"), min(o, c) - Decimal("1.80")
        vwap = float((o + c) / 2)
        candle_rows.append((run_id, index_token, "1m", ts, o, hi, lo, c, 1000 + 10 * i, vwap, 60))
        if i >= unindicated:
            values = {"ema9": float(c) - 1.0, "ema21": float(c) - 2.0, "vwap": vwap, "rsi14": 55.0}
            indicator_rows.append((run_id, index_token, "1m", ts, json.dumps(values)))
        price = c
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume,"
            " vwap, ticks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            candle_rows,
        )
        cur.executemany(
            "INSERT INTO indicators (run_id, token, interval, ts, values)"
            " VALUES (%s, %s, %s, %s, %s)",
            indicator_rows,
        )
        # A few 1-second candles of the option too, so it is an instrument of the run.
        cur.executemany(
            "INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume)"
            " VALUES (%s, %s, '1s', %s, 100, 101, 99, 100.5, 75)",
            [(run_id, option_token, started_at + timedelta(seconds=s)) for s in range(3)],
        )
        fill_rows = []
        for n in range(fills):
            side = "BUY" if n % 2 == 0 else "SELL"
            fill_rows.append(
                (
                    run_id,
                    f"ord-{n // 2}#{n % 2 + 1}",
                    f"ord-{n // 2}",
                    started_at + timedelta(minutes=2 * n + 1),
                    option_token,
                    side,
                    75,
                    Decimal("100.50") + n,
                    Decimal("21.37"),
                    "entry" if side == "BUY" else "exit",
                )
            )
        cur.executemany(
            "INSERT INTO fills (run_id, fill_id, order_id, ts, account, strategy, token, side,"
            " qty, price, cum_qty, leaves_qty, liquidity, brokerage, stt, exchange_charge, ipft,"
            " sebi_fee, stamp_duty, gst, total_costs, reason)"
            " VALUES (%s, %s, %s, %s, 'paper', 'momentum_breakout', %s, %s, %s, %s, 75, 0,"
            " 'TAKER', 20, 0, 0.5, 0, 0, 0, 0.87, %s, %s)",
            fill_rows,
        )
        nets = tuple(Decimal(x) for x in ("52.13", "-31.40", "75.00"))
        trade_rows = [
            (
                run_id,
                f"trade-{k}",
                option_token,
                started_at + timedelta(minutes=10 * k + 1),
                started_at + timedelta(minutes=10 * k + 4),
                Decimal("100.5"),
                Decimal("101.5"),
                net + Decimal("42.74"),
                Decimal("42.74"),
                net,
                f"EMA9 crossed above EMA21 #{k}",
                "TARGET" if net > 0 else "STOP",
            )
            for k, net in enumerate(nets)
        ]
        cur.executemany(
            "INSERT INTO trades (run_id, trade_id, account, strategy, token, underlying,"
            " direction, qty, entry_ts, exit_ts, entry_price, exit_price, gross, costs, net,"
            " entry_reason, exit_reason) VALUES (%s, %s, 'paper', 'momentum_breakout', %s,"
            " 'NIFTY', 'LONG', 75, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            trade_rows,
        )
        cur.executemany(
            "INSERT INTO positions (run_id, account, strategy, token, underlying, qty, avg_price,"
            " realised, unrealised, costs, net, mark, seq, updated_at)"
            " VALUES (%s, 'paper', %s, %s, 'NIFTY', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    run_id,
                    "momentum_breakout",
                    option_token,
                    75,
                    Decimal("102.25"),
                    Decimal("138.47"),
                    Decimal("18.750"),
                    Decimal("42.74"),
                    Decimal("114.480"),
                    Decimal("102.500"),
                    7,
                    started_at + timedelta(minutes=29),
                ),
                (
                    run_id,
                    "vwap_reversal",
                    option_token,
                    0,
                    Decimal(0),
                    Decimal("-12.00"),
                    Decimal(0),
                    Decimal("3.10"),
                    Decimal("-15.100"),
                    Decimal("101.000"),
                    3,
                    started_at + timedelta(minutes=20),
                ),
            ],
        )
        cur.executemany(
            "INSERT INTO regimes (run_id, underlying, ts, regime, features, model_version)"
            " VALUES (%s, 'NIFTY', %s, %s, '{\"adx\": 31.5}', 'rules-v1')",
            [
                (run_id, started_at + timedelta(minutes=m), r)
                for m, r in ((5, "RANGING"), (15, "HIGH_VOL"), (25, "TRENDING"))
            ],
        )
        cur.executemany(
            "INSERT INTO ai_state (run_id, ts, account, strategy, state)"
            " VALUES (%s, %s, 'paper', %s, %s)",
            [
                (
                    run_id,
                    started_at + timedelta(minutes=5),
                    "momentum_breakout",
                    json.dumps({"size_multiplier": 1.0, "weight": 0.5}),
                ),
                (
                    run_id,
                    started_at + timedelta(minutes=25),
                    "momentum_breakout",
                    json.dumps({"size_multiplier": 0.5, "weight": 0.25}),
                ),
                (
                    run_id,
                    started_at + timedelta(minutes=10),
                    "vwap_reversal",
                    json.dumps({"size_multiplier": 1.5, "weight": 0.75}),
                ),
            ],
        )
        cur.executemany(
            "INSERT INTO risk_events (run_id, ts, account, kind, detail)"
            " VALUES (%s, %s, 'paper', %s, %s)",
            [
                (run_id, started_at + timedelta(minutes=12), "COOLDOWN", "3 losses in a row"),
                (
                    run_id,
                    started_at + timedelta(minutes=28),
                    "HALT",
                    "DAILY_LOSS_LIMIT: limit=-5000, pnl=-5012.40",
                ),
            ],
        )
        dead_reason = f"BAD_{uuid.uuid4().hex[:8].upper()}"
        cur.executemany(
            "INSERT INTO dead_letters (run_id, source_topic, source_partition, source_offset,"
            " reason, raw) VALUES (%s, %s, 0, %s, %s, %s)",
            [
                (run_id, f"md.ticks.{run_id}", o, f"{dead_reason}: offset {o}", b"{not json")
                for o in range(4)
            ],
        )
    return Populated(
        run_id=run_id,
        index_token=index_token,
        option_token=option_token,
        candles=candles,
        unindicated=unindicated,
        fills=fills,
        trades=len(nets),
        trade_nets=nets,
        dead_reason=dead_reason,
        dead_letters=4,
        risk_events=2,
    )


# This package's own database (see the module docstring).
pg_dsn, pg_conn = database_fixtures("scalpflow_dash", "package")


def new_run_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def populated(pg_conn: psycopg.Connection[Any]) -> Populated:
    """A fresh demo run with every dashboard table filled."""
    return populate(pg_conn, new_run_id("demo"))


CHAIN_STRIKES = (23900, 24000, 24100)


def add_chain(
    conn: psycopg.Connection[Any], run: Populated, minutes: int = 5, *, quotes: bool = True
) -> int:
    """Option analytics for a 3-strike CE/PE chain of the run's index (the 24000 CE is the
    run's traded option), one row per leg and minute, and (``quotes``) each leg's minute
    quote: LTP 100.05 + m, bid/ask ∓ 0.15 around 100 + m, OI 1000 + 75 m (the minute's first
    tick's OI 25 lower); returns the number of legs."""
    legs = []
    for strike in CHAIN_STRIKES:
        for kind in ("CE", "PE"):
            token = (
                run.option_token
                if (strike, kind) == (24000, "CE")
                else f"{kind}{strike}-{run.run_id}"
            )
            if token != run.option_token:
                conn.execute(
                    "INSERT INTO instruments (token, symbol, underlying, kind, exchange, strike,"
                    " expiry, lot_size, tick_size) VALUES (%s, %s, 'NIFTY', %s, 'NFO', %s,"
                    " '2025-01-07', 75, 0.05)",
                    (token, f"NIFTY07JAN25{strike}{kind}", kind, strike),
                )
            legs.append((token, strike, kind))
    rows = []
    for m in range(minutes):
        ts = SESSION_OPEN + timedelta(minutes=m, seconds=30)
        for token, strike, kind in legs:
            smile = 0.12 + abs(strike - 24000) / 100_000 + 0.001 * m
            delta = (
                0.5 - (strike - 24000) / 1000 if kind == "CE" else -0.5 - (strike - 24000) / 1000
            )
            rows.append(
                (
                    run.run_id,
                    token,
                    ts,
                    100.0 + m,
                    24010.0,
                    smile,
                    delta,
                    0.0012,
                    -8.5,
                    12.25,
                    40.0 + m,
                )
            )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO option_analytics (run_id, token, ts, underlying, price, forward, iv,"
            " delta, gamma, theta, vega, iv_percentile)"
            " VALUES (%s, %s, %s, 'NIFTY', %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        if quotes:
            cur.executemany(
                "INSERT INTO quotes (run_id, token, minute, ts, seq, ltp, bid, ask, bid_qty,"
                " ask_qty, oi, open_oi) VALUES (%s, %s, %s, %s, 1, %s, %s, %s, 75, 150, %s, %s)",
                [
                    (
                        run.run_id,
                        token,
                        SESSION_OPEN + timedelta(minutes=m),
                        SESSION_OPEN + timedelta(minutes=m, seconds=50),
                        Decimal("100.05") + m,
                        Decimal("99.85") + m,
                        Decimal("100.15") + m,
                        1000 + 75 * m,
                        975 + 75 * m,
                    )
                    for m in range(minutes)
                    for token, _strike, _kind in legs
                ],
            )
    return len(legs)
