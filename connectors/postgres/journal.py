"""Trade journal: order, fill, trade and position events -> idempotent PostgreSQL upserts.

Pure row mappers (event -> tuple of column values, money converted from paise to exact
``Decimal`` rupees) plus the ``INSERT ... ON CONFLICT ... DO UPDATE`` statements for
``infra/postgres/migrations/002_journal.sql``. ``write_journal`` runs them with
``executemany`` on a psycopg 3 connection the caller owns, in one transaction. Writing the
same events again, or an older event after a newer one, leaves the tables unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg

from operators.trading.orders import (
    FillEvent,
    OrderCancelled,
    OrderDetails,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderTriggered,
)
from operators.trading.portfolio import PositionChanged, TradeClosed

Row = tuple[Any, ...]
_HUNDRED = Decimal(100)

# Later statuses win at equal event time (an IOC's fill and its cancel share a tick).
STATUS_RANK = {
    "ACCEPTED": 0,
    "TRIGGERED": 1,
    "PARTIALLY_FILLED": 2,
    "FILLED": 3,
    "CANCELLED": 3,
    "EXPIRED": 3,
    "REJECTED": 3,
}
NO_STATUS = -1  # a terms-only event (OrderModified) never changes the status


def rupees(paise: int | Decimal) -> Decimal:
    """Exact rupees from paise (integer, or a Decimal such as a half-paisa mark)."""
    return Decimal(paise) / _HUNDRED


_TERMS_COLUMNS = (
    "account", "strategy", "token", "side", "order_type", "validity", "qty", "price",
    "trigger_price", "target_price", "stop_price", "parent_id", "reason",
)  # fmt: skip
_NEWER_TERMS = "(orders.terms_at IS NULL OR EXCLUDED.terms_at >= orders.terms_at)"
_NEWER_STATUS = (
    "(EXCLUDED.status_rank >= 0 AND (EXCLUDED.updated_at, EXCLUDED.status_rank)"
    " >= (orders.updated_at, orders.status_rank))"
)
_STATUS_SET = f"""
    status = CASE WHEN {_NEWER_STATUS} THEN EXCLUDED.status ELSE orders.status END,
    status_reason = CASE WHEN {_NEWER_STATUS}
        THEN EXCLUDED.status_reason ELSE orders.status_reason END,
    filled_qty = GREATEST(orders.filled_qty, EXCLUDED.filled_qty),
    avg_fill_price = CASE
        WHEN EXCLUDED.avg_fill_price IS NOT NULL AND EXCLUDED.filled_qty >= orders.filled_qty
        THEN EXCLUDED.avg_fill_price ELSE orders.avg_fill_price END,
    status_rank = CASE WHEN {_NEWER_STATUS} THEN EXCLUDED.status_rank ELSE orders.status_rank END,
    updated_at = CASE WHEN {_NEWER_STATUS} THEN EXCLUDED.updated_at ELSE orders.updated_at END"""

UPSERT_ORDER_TERMS = f"""
INSERT INTO orders (run_id, order_id, {", ".join(_TERMS_COLUMNS)}, submitted_at, terms_at,
                    status, status_rank, status_reason, filled_qty, avg_fill_price, updated_at)
VALUES ({", ".join(["%s"] * (len(_TERMS_COLUMNS) + 10))})
ON CONFLICT (run_id, order_id) DO UPDATE SET
    {
    ", ".join(
        f"{c} = CASE WHEN {_NEWER_TERMS} THEN EXCLUDED.{c} ELSE orders.{c} END"
        for c in _TERMS_COLUMNS
    )
},
    submitted_at = LEAST(orders.submitted_at, EXCLUDED.submitted_at),
    terms_at = GREATEST(orders.terms_at, EXCLUDED.terms_at),
    {_STATUS_SET}
"""

UPSERT_ORDER_STATUS = f"""
INSERT INTO orders (run_id, order_id, account, strategy, token,
                    status, status_rank, status_reason, filled_qty, avg_fill_price, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id, order_id) DO UPDATE SET
    {_STATUS_SET}
"""

_FILL_COLUMNS = (
    "run_id", "fill_id", "order_id", "ts", "account", "strategy", "token", "side", "qty",
    "price", "cum_qty", "leaves_qty", "liquidity", "brokerage", "stt", "exchange_charge",
    "ipft", "sebi_fee", "stamp_duty", "gst", "total_costs", "parent_id", "reason",
)  # fmt: skip
_TRADE_COLUMNS = (
    "run_id", "trade_id", "account", "strategy", "token", "underlying", "direction", "qty",
    "entry_ts", "exit_ts", "entry_price", "exit_price", "gross", "costs", "net",
    "entry_reason", "exit_reason",
)  # fmt: skip
_POSITION_COLUMNS = (
    "run_id", "account", "strategy", "token", "underlying", "qty", "avg_price", "realised",
    "unrealised", "costs", "net", "mark", "seq", "updated_at",
)  # fmt: skip


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...], guard: str = "") -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    where = f" WHERE {guard}" if guard else ""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{where}"
    )


UPSERT_FILL = _upsert("fills", _FILL_COLUMNS, ("run_id", "fill_id", "ts"))
UPSERT_TRADE = _upsert("trades", _TRADE_COLUMNS, ("run_id", "trade_id"))
UPSERT_POSITION = _upsert(
    "positions",
    _POSITION_COLUMNS,
    ("run_id", "account", "strategy", "token"),
    "(EXCLUDED.updated_at, EXCLUDED.seq) >= (positions.updated_at, positions.seq)",
)


# --- row mappers --------------------------------------------------------------------------


def order_terms_row(ev: OrderDetails) -> Row:
    """Row for UPSERT_ORDER_TERMS from an accepted, rejected or modified order."""
    if isinstance(ev, OrderRejected):
        status, rank, why = "REJECTED", STATUS_RANK["REJECTED"], ev.reject_reason
    elif isinstance(ev, OrderModified):
        status, rank, why = "ACCEPTED", NO_STATUS, ""
    else:
        status, rank, why = "ACCEPTED", STATUS_RANK["ACCEPTED"], ""
    submitted = None if isinstance(ev, OrderModified) else ev.ts_event
    return (
        ev.run_id, ev.order_id, ev.account, ev.strategy, ev.token, ev.side, ev.order_type,
        ev.validity, ev.qty, rupees(ev.price), rupees(ev.trigger), rupees(ev.target),
        rupees(ev.stop), ev.parent_id, ev.reason, submitted, ev.ts_event,
        status, rank, why, 0, None, ev.ts_event,
    )  # fmt: skip


def order_status_row(ev: OrderEvent) -> Row:
    """Row for UPSERT_ORDER_STATUS from a triggered, fill, cancelled or expired event."""
    filled, avg = 0, None
    if isinstance(ev, FillEvent):
        status = "FILLED" if isinstance(ev, OrderFilled) else "PARTIALLY_FILLED"
        why, filled = "", ev.cum_qty
        avg = (Decimal(ev.cum_value) / ev.cum_qty / _HUNDRED).quantize(Decimal("0.000001"))
    elif isinstance(ev, OrderCancelled):
        status, why, filled = "CANCELLED", ev.cancel_reason, ev.filled_qty
    elif isinstance(ev, OrderExpired):
        status, why, filled = "EXPIRED", ev.expire_reason, ev.filled_qty
    elif isinstance(ev, OrderTriggered):
        status, why = "TRIGGERED", f"LTP {rupees(ev.ltp)} reached trigger {rupees(ev.trigger)}"
    else:
        msg = f"not an order status event: {type(ev).__name__}"
        raise TypeError(msg)
    return (
        ev.run_id, ev.order_id, ev.account, ev.strategy, ev.token,
        status, STATUS_RANK[status], why, filled, avg, ev.ts_event,
    )  # fmt: skip


def fill_row(ev: FillEvent) -> Row:
    c = ev.costs
    return (
        ev.run_id, ev.fill_id, ev.order_id, ev.ts_event, ev.account, ev.strategy, ev.token,
        ev.side, ev.fill_qty, rupees(ev.fill_price), ev.cum_qty, ev.leaves_qty, ev.liquidity,
        rupees(c.brokerage), rupees(c.stt), rupees(c.exchange), rupees(c.ipft), rupees(c.sebi),
        rupees(c.stamp), rupees(c.gst), rupees(c.total), ev.parent_id, ev.reason,
    )  # fmt: skip


def trade_row(ev: TradeClosed) -> Row:
    return (
        ev.run_id, ev.trade_id, ev.account, ev.strategy, ev.token, ev.underlying, ev.direction,
        ev.qty, ev.entry_ts, ev.exit_ts, rupees(ev.entry_price), rupees(ev.exit_price),
        rupees(ev.gross), rupees(ev.costs), rupees(ev.net), ev.entry_reason, ev.exit_reason,
    )  # fmt: skip


def position_row(ev: PositionChanged) -> Row:
    return (
        ev.run_id, ev.account, ev.strategy, ev.token, ev.underlying, ev.qty,
        rupees(ev.avg_price), rupees(ev.realised), rupees(ev.unrealised), rupees(ev.costs),
        rupees(ev.net), rupees(ev.mark), ev.seq, ev.ts_event,
    )  # fmt: skip


#: The journal's tables (``orders`` twice: its terms and its status are separate upserts),
#: in the order ``journal_rows`` writes them.
SQL: dict[str, str] = {
    "orders": UPSERT_ORDER_TERMS,
    "orders.status": UPSERT_ORDER_STATUS,
    "fills": UPSERT_FILL,
    "trades": UPSERT_TRADE,
    "positions": UPSERT_POSITION,
}


# --- row functions for ``connectors.routes`` (journal events carry their own run_id) -------
def order_terms_rows(_run_id: str, ev: OrderDetails) -> Iterable[tuple[str, Row]]:
    yield "orders", order_terms_row(ev)


def order_status_rows(_run_id: str, ev: OrderEvent) -> Iterable[tuple[str, Row]]:
    yield "orders.status", order_status_row(ev)


def fill_rows(_run_id: str, ev: FillEvent) -> Iterable[tuple[str, Row]]:
    """A fill writes two rows: its ``fills`` row and its order's status."""
    yield "fills", fill_row(ev)
    yield "orders.status", order_status_row(ev)


def trade_rows(_run_id: str, ev: TradeClosed) -> Iterable[tuple[str, Row]]:
    yield "trades", trade_row(ev)


def position_rows(_run_id: str, ev: PositionChanged) -> Iterable[tuple[str, Row]]:
    yield "positions", position_row(ev)


def journal_rows(events: Iterable[object]) -> dict[str, list[Row]]:
    """Group events into rows per upsert statement (the journal's routes in
    ``connectors.routes``); events the journal does not store are skipped."""
    from connectors.routes import route  # routes imports this module's row functions

    out: dict[str, list[Row]] = {sql: [] for sql in SQL.values()}
    for ev in events:
        r = route(type(ev))
        if r is None or not r.journal or r.rows is None:
            continue
        for table, row in r.rows("", ev):
            out[SQL[table]].append(row)
    return {sql: rows for sql, rows in out.items() if rows}


def write_journal(conn: psycopg.Connection[Any], events: Iterable[object]) -> int:
    """Upsert the journal rows for ``events`` in one transaction; returns rows written."""
    written = 0
    with conn.transaction(), conn.cursor() as cur:
        for sql, rows in journal_rows(events).items():
            cur.executemany(sql, rows)
            written += len(rows)
    return written
