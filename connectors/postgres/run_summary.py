"""What a run wrote, read back for the summary a command prints at its end.

Read-only and small: rows per journal table, net P&L per account (latest position rows, so
open positions count at their last mark) and the kill-switch events, all for one ``run_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from connectors.postgres.db import connect

COUNTED = (
    "candles",
    "indicators",
    "option_analytics",
    "regimes",
    "signals",
    "orders",
    "fills",
    "trades",
    "risk_events",
)


@dataclass(frozen=True)
class KillEvent:
    ts: str
    account: str
    detail: str


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    counts: dict[str, int]
    pnl: dict[str, Decimal] = field(default_factory=dict)  # account -> net rupees
    trades: dict[str, int] = field(default_factory=dict)  # account -> round trips
    kills: tuple[KillEvent, ...] = ()


def count_rows(dsn: str, run_id: str) -> dict[str, int]:
    """Rows of ``run_id`` in each journal table that exists."""
    counts: dict[str, int] = {}
    with connect(dsn) as conn:
        existing = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        for table in COUNTED:
            if table in existing:
                row = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE run_id = %s", (run_id,)
                ).fetchone()
                counts[table] = int(row[0]) if row else 0
    return counts


def summarise(dsn: str, run_id: str) -> RunSummary:
    """Row counts, P&L per account and kill-switch events of one run."""
    counts = count_rows(dsn, run_id)
    with connect(dsn) as conn:
        pnl = {
            str(account): Decimal(net)
            for account, net in conn.execute(
                "SELECT account, sum(net) FROM positions WHERE run_id = %s"
                " GROUP BY account ORDER BY account",
                (run_id,),
            )
        }
        trades = {
            str(account): int(n)
            for account, n in conn.execute(
                "SELECT account, count(*) FROM trades WHERE run_id = %s GROUP BY account",
                (run_id,),
            )
        }
        kills = tuple(
            KillEvent(ts=ts.isoformat(), account=str(account), detail=str(detail))
            for ts, account, detail in conn.execute(
                "SELECT ts, account, detail FROM risk_events"
                " WHERE run_id = %s AND kind = 'KILL_SWITCH' ORDER BY ts, account",
                (run_id,),
            )
        )
    return RunSummary(run_id=run_id, counts=counts, pnl=pnl, trades=trades, kills=kills)
