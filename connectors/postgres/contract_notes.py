"""Contract notes in PostgreSQL: the sink's rows for ``ContractNote`` events and the readers
the report command and the monitor use (``infra/postgres/migrations/007_contract_notes.sql``).

A note is written by the flow's sink when the account stage closes the day; a day still
trading has no row yet, and ``load_note`` then computes the same note from the day's fills
with the same ledger (``operators.trading.cost_ledger.note_from_fills``), marked provisional.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from operators.market.sessions import IST, session_close
from operators.trading.cost_ledger import ContractNote, LedgerFill, NoteLine, note_from_fills
from operators.trading.costs import DEFAULT_SCHEDULE, CostSchedule

Row = tuple[Any, ...]
_HUNDRED = Decimal(100)

_COLUMNS = (
    "run_id", "account", "trade_date", "token", "symbol", "issued_at", "buy_qty", "buy_value",
    "sell_qty", "sell_value", "orders", "brokerage", "exchange_charge", "ipft", "sebi_fee",
    "stamp_duty", "stt", "gst", "charges", "estimated", "true_up", "net_amount",
)  # fmt: skip
_KEY = ("run_id", "account", "trade_date", "token")

# A reissued note (a late fill) is complete and newer; a redelivered older one never wins.
SQL = {
    "contract_notes": (
        f"INSERT INTO contract_notes ({', '.join(_COLUMNS)})"
        f" VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
        f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in _KEY)
        + " WHERE EXCLUDED.issued_at >= contract_notes.issued_at"
    )
}


def _rupees(paise: int) -> Decimal:
    return Decimal(paise) / _HUNDRED


def _paise(rupees: Decimal) -> int:
    return int(rupees * _HUNDRED)


def contract_note_rows(run_id: str, note: ContractNote) -> Iterable[tuple[str, Row]]:
    """One ``contract_notes`` row per scrip line (the note's own run_id wins if set)."""
    for line in note.lines:
        yield "contract_notes", (
            note.run_id or run_id, note.account, note.trade_date, line.token, line.symbol,
            note.ts_event, line.buy_qty, _rupees(line.buy_value), line.sell_qty,
            _rupees(line.sell_value), line.orders, _rupees(line.brokerage),
            _rupees(line.exchange), _rupees(line.ipft), _rupees(line.sebi), _rupees(line.stamp),
            _rupees(line.stt), _rupees(line.gst), _rupees(line.charges), _rupees(line.estimated),
            _rupees(line.true_up), _rupees(line.net),
        )  # fmt: skip


# --- readers --------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of an IST trade date, UTC."""
    start = datetime.combine(day, time(0), IST).astimezone(UTC)
    return start, start + timedelta(days=1)


def runs_trading(conn: psycopg.Connection[Any], account: str, day: date) -> list[str]:
    """Runs with fills of ``account`` on ``day``, most recent last fill first."""
    lo, hi = day_bounds(day)
    rows = conn.execute(
        "SELECT run_id FROM fills WHERE account = %s AND ts >= %s AND ts < %s"
        " GROUP BY run_id ORDER BY max(ts) DESC, run_id",
        (account, lo, hi),
    ).fetchall()
    return [r[0] for r in rows]


def stored_note(
    conn: psycopg.Connection[Any], run_id: str, account: str, day: date
) -> ContractNote | None:
    """The note the flow wrote at session close, or None if it has not closed the day."""
    rows = conn.execute(
        "SELECT token, symbol, issued_at, buy_qty, buy_value, sell_qty, sell_value, orders,"
        " brokerage, exchange_charge, ipft, sebi_fee, stamp_duty, stt, gst, charges, estimated"
        " FROM contract_notes WHERE run_id = %s AND account = %s AND trade_date = %s"
        " ORDER BY token",
        (run_id, account, day),
    ).fetchall()
    if not rows:
        return None
    lines = tuple(
        NoteLine(
            token=r[0],
            symbol=r[1],
            buy_qty=r[3],
            buy_value=_paise(r[4]),
            sell_qty=r[5],
            sell_value=_paise(r[6]),
            orders=r[7],
            brokerage=_paise(r[8]),
            exchange=_paise(r[9]),
            ipft=_paise(r[10]),
            sebi=_paise(r[11]),
            stamp=_paise(r[12]),
            stt=_paise(r[13]),
            gst=_paise(r[14]),
            charges=_paise(r[15]),
            estimated=_paise(r[16]),
        )
        for r in rows
    )
    issued = max(r[2] for r in rows)
    return ContractNote(
        ts_event=issued, ts_recv=issued, account=account, trade_date=day, lines=lines,
        run_id=run_id,
    )  # fmt: skip


def ledger_fills(
    conn: psycopg.Connection[Any], run_id: str, account: str, day: date
) -> list[LedgerFill]:
    """The account's fills on ``day`` as the ledger reads them (exact paise)."""
    lo, hi = day_bounds(day)
    rows = conn.execute(
        "SELECT token, order_id, side, qty, price, total_costs FROM fills"
        " WHERE run_id = %s AND account = %s AND ts >= %s AND ts < %s ORDER BY ts, fill_id",
        (run_id, account, lo, hi),
    ).fetchall()
    return [
        LedgerFill(
            account=account,
            day=day,
            token=r[0],
            order_id=r[1],
            side=r[2],
            qty=r[3],
            price=_paise(r[4]),
            estimated=_paise(r[5]),
        )
        for r in rows
    ]


def symbols(conn: psycopg.Connection[Any], tokens: Iterable[str]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT token, symbol FROM instruments WHERE token = ANY(%s)", (list(tokens),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


@dataclass(frozen=True)
class LoadedNote:
    """A note and where it came from: ``provisional`` = computed from fills, day not closed."""

    note: ContractNote
    provisional: bool


def load_note(
    conn: psycopg.Connection[Any],
    run_id: str,
    account: str,
    day: date,
    *,
    schedule: CostSchedule = DEFAULT_SCHEDULE,
) -> LoadedNote | None:
    """The stored note, else one computed from the day's fills; None if nothing traded."""
    note = stored_note(conn, run_id, account, day)
    if note is not None:
        return LoadedNote(note, provisional=False)
    fills = ledger_fills(conn, run_id, account, day)
    if not fills:
        return None
    names = symbols(conn, {f.token for f in fills})
    computed = note_from_fills(
        account, day, fills, session_close(day), schedule=schedule, symbols=names, run_id=run_id
    )
    return LoadedNote(computed, provisional=True)


@dataclass(frozen=True)
class DailyPnl:
    """A day's P&L from the journal, paise: ``net = gross − estimated − true_up``."""

    gross: int
    estimated: int
    true_up: int

    @property
    def net(self) -> int:
        return self.gross - self.estimated - self.true_up


def daily_pnl(conn: psycopg.Connection[Any], run_id: str, account: str, day: date) -> DailyPnl:
    """Round trips closed on ``day`` (gross and their booked costs) plus the day's true-up."""
    lo, hi = day_bounds(day)
    gross, costs = conn.execute(
        "SELECT coalesce(sum(gross), 0), coalesce(sum(costs), 0) FROM trades"
        " WHERE run_id = %s AND account = %s AND exit_ts >= %s AND exit_ts < %s",
        (run_id, account, lo, hi),
    ).fetchone() or (Decimal(0), Decimal(0))
    (true_up,) = conn.execute(
        "SELECT coalesce(sum(true_up), 0) FROM contract_notes"
        " WHERE run_id = %s AND account = %s AND trade_date = %s",
        (run_id, account, day),
    ).fetchone() or (Decimal(0),)
    return DailyPnl(gross=_paise(gross), estimated=_paise(costs), true_up=_paise(true_up))


def note_days(conn: psycopg.Connection[Any], run_id: str) -> list[tuple[str, date]]:
    """(account, IST trade date) pairs the run traded, newest day first."""
    rows = conn.execute(
        "SELECT DISTINCT account, (ts AT TIME ZONE 'Asia/Kolkata')::date AS day FROM fills"
        " WHERE run_id = %s ORDER BY day DESC, account",
        (run_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]
