"""Journal upserts against a real PostgreSQL (the ``pg_conn`` fixture, migrations applied)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.postgres.journal import (
    UPSERT_ORDER_STATUS,
    UPSERT_ORDER_TERMS,
    journal_rows,
    rupees,
    write_journal,
)
from operators.events import Instrument, Tick
from operators.trading.execution import ExecutionConfig, ExecutionLogic
from operators.trading.fills import FillModel, SpreadSlippage
from operators.trading.orders import FillEvent
from operators.trading.portfolio import PortfolioLogic
from tests import both_modes
from tests.events import buy
from tests.events import tick as nfo_tick

pg_dsn = both_modes.pg_dsn  # plain and TimescaleDB, see tests/both_modes.py
pg_conn = both_modes.pg_conn

pytestmark = pytest.mark.postgres

TOKEN = "43650"
INST = Instrument(token=TOKEN, symbol="NIFTYCE", underlying="NIFTY", kind="CE", lot_size=65)
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def tick(ms: int, ltp: int, bid: int, ask: int, cum: int) -> Tick:
    return nfo_tick(at(ms), TOKEN, ltp, bid, ask, cum_volume=cum)


def session(run_id: str) -> list[object]:
    """A bracket round trip plus an IOC remainder, through the simulator and the portfolio."""
    ex = ExecutionLogic(
        {TOKEN: INST},
        ExecutionConfig(
            fill=FillModel(participation=Decimal(1)), slippage=SpreadSlippage(fraction=Decimal(0))
        ),
    )
    pf = PortfolioLogic({TOKEN: INST})
    items: list[object] = [
        tick(-100, 10_000, 9_995, 10_005, 10_000),
        buy(
            at(0),
            "br",
            "A1",
            TOKEN,
            65,
            order_type="BRACKET",
            target=10_200,
            stop=9_900,
            reason="ema cross",
            strategy="ema",
            run_id=run_id,
        ),
        buy(
            at(1),
            "ioc",
            "A1",
            TOKEN,
            195,
            order_type="LIMIT",
            price=10_005,
            validity="IOC",
            reason="probe",
            strategy="probe",
            run_id=run_id,
        ),
        tick(100, 10_000, 9_995, 10_005, 10_130),  # 130 traded: br 65, ioc 65, rest cancelled
        tick(200, 10_200, 10_200, 10_205, 10_500),  # target
    ]
    out: list[object] = []
    for item in items:
        events = ex.on_tick(item) if isinstance(item, Tick) else ex.on_command(item)  # type: ignore[arg-type]
        out += events
        if isinstance(item, Tick):
            pf.on_tick(item)
        for e in events:
            if isinstance(e, FillEvent):
                out += pf.on_fill(e)
    return out


def dump(conn, run_id: str) -> dict[str, list[tuple]]:
    tables = {
        "orders": "order_id",
        "fills": "fill_id",
        "trades": "trade_id",
        "positions": "account, strategy, token",
    }
    return {
        t: conn.execute(f"SELECT * FROM {t} WHERE run_id = %s ORDER BY {key}", (run_id,)).fetchall()
        for t, key in tables.items()
    }


def test_session_is_journaled_and_rewrites_change_nothing(pg_conn):
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    events = session(run_id)
    assert write_journal(pg_conn, events) > 0
    first = dump(pg_conn, run_id)

    orders = {
        r[0]: r[1:]
        for r in pg_conn.execute(
            "SELECT order_id, status, filled_qty, avg_fill_price, status_reason, reason"
            " FROM orders WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    }
    assert orders["br"][:3] == ("FILLED", 65, Decimal("100.050000"))
    assert orders["br.T"][:3] == ("FILLED", 65, Decimal("102.000000"))
    assert orders["br.S"][0] == "CANCELLED"
    assert orders["br.S"][3] == "OCO: br.T filled"
    assert orders["ioc"][:2] == ("CANCELLED", 65)
    assert orders["ioc"][3] == "IOC_REMAINDER"
    assert orders["br.T"][4] == "BRACKET_TARGET: ema cross"

    [trade] = pg_conn.execute(
        "SELECT direction, qty, entry_price, exit_price, gross, costs, net, entry_reason,"
        " exit_reason FROM trades WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    fills = {e.order_id: e for e in events if isinstance(e, FillEvent)}
    costs = fills["br"].costs.total + fills["br.T"].costs.total
    # bought 65 @ 100.05 (ask), sold 65 @ 102.00 (target): gross (10_200 − 10_005) × 65 paise
    gross = (10_200 - 10_005) * 65
    assert trade == (
        "LONG",
        65,
        Decimal("100.050000"),
        Decimal("102.000000"),
        rupees(gross),
        rupees(costs),
        rupees(gross - costs),
        "ema cross",
        "BRACKET_TARGET: ema cross",
    )
    positions = {
        r[0]: r[1:]
        for r in pg_conn.execute(
            "SELECT strategy, qty, realised, costs FROM positions WHERE run_id = %s", (run_id,)
        ).fetchall()
    }
    assert positions["ema"] == (0, rupees(gross), rupees(costs))
    assert positions["probe"][0] == 65

    write_journal(pg_conn, events)
    assert dump(pg_conn, run_id) == first
    write_journal(pg_conn, list(reversed(events)))  # redelivered out of order
    assert dump(pg_conn, run_id) == first


def test_fill_columns_hold_exact_rupees(pg_conn):
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    events = session(run_id)
    write_journal(pg_conn, events)
    fills = [e for e in events if isinstance(e, FillEvent)]
    rows = pg_conn.execute(
        "SELECT fill_id, price, brokerage, stt, exchange_charge, gst, total_costs FROM fills"
        " WHERE run_id = %s ORDER BY fill_id",
        (run_id,),
    ).fetchall()
    want = sorted(
        (
            f.fill_id,
            rupees(f.fill_price),
            rupees(f.costs.brokerage),
            rupees(f.costs.stt),
            rupees(f.costs.exchange),
            rupees(f.costs.gst),
            rupees(f.costs.total),
        )
        for f in fills
    )
    assert rows == want
    assert len(rows) == 3


def test_terms_and_status_rows_are_grouped_per_statement():
    events = session("x")
    rows = journal_rows(events)
    assert {r[1] for r in rows[UPSERT_ORDER_TERMS]} == {"br", "ioc", "br.T", "br.S"}
    statuses = [(r[1], r[5]) for r in rows[UPSERT_ORDER_STATUS]]
    assert ("ioc", "PARTIALLY_FILLED") in statuses
    assert ("ioc", "CANCELLED") in statuses
