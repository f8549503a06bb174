"""A backtest's namespace in PostgreSQL: emptied before a re-run, read back after it.

Every table a backtest writes is keyed by ``run_id``. The journal hash covers the decisions and
their consequences (ordered rows without ``run_id``, canonical text), so "the same backtest gives
the same fills" is a string comparison; market data (candles, indicators, analytics) is left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.errors import ConnectorError
from connectors.postgres.db import connect

JOURNAL_TABLES: tuple[str, ...] = (
    "signals",
    "risk_decisions",
    "orders",
    "fills",
    "trades",
    "positions",
    "risk_events",
    "ai_state",
    "regimes",
    "contract_notes",
)
RUN_TABLES: tuple[str, ...] = (
    *JOURNAL_TABLES,
    "candles",
    "indicators",
    "option_analytics",
    "quotes",
)


class NamespaceError(ConnectorError, RuntimeError):
    """The run id is taken by a run that is not a backtest; the message says what to do."""


def prepare_namespace(dsn: str, run_id: str) -> None:
    """Empty ``run_id``'s rows so a re-run replaces them; refuse a run that is not a backtest
    (``NamespaceError``). A database failure raises ``DatabaseError``."""
    with connect(dsn) as conn:
        row = conn.execute("SELECT kind FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is not None and row[0] != "backtest":
            msg = f"run id {run_id!r} belongs to a {row[0]} run; choose another --run-id"
            raise NamespaceError(msg)
        existing = _existing_tables(conn)
        with conn.transaction():
            for table in RUN_TABLES:
                if table in existing:
                    conn.execute(f"DELETE FROM {table} WHERE run_id = %s", (run_id,))


def fill_count_and_true_up(dsn: str, run_id: str) -> tuple[int, int]:
    """The run's number of fills and its contract notes' total true-up, in paise."""
    with connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM fills WHERE run_id = %s", (run_id,)).fetchone()
        true_up = conn.execute(
            "SELECT coalesce(sum(true_up), 0) FROM contract_notes WHERE run_id = %s",
            (run_id,),
        ).fetchone()
    return (int(row[0]) if row else 0, int(true_up[0] * 100) if true_up else 0)


def _existing_tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return repr(value)


def table_rows(conn: Any, table: str, run_id: str) -> list[tuple[str, ...]]:
    """A run's rows of ``table`` without the run_id column, canonical text, sorted."""
    cur = conn.execute(f"SELECT * FROM {table} WHERE run_id = %s", (run_id,))
    names = [d.name for d in cur.description or ()]
    keep = [i for i, n in enumerate(names) if n != "run_id"]
    rows = [tuple(_canonical(r[i]) for i in keep) for r in cur.fetchall()]
    return sorted(rows)


def rows_hash(rows: Iterable[tuple[str, ...]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def journal_hashes(dsn: str, run_id: str) -> dict[str, str]:
    """sha256 per journal table of the run's ordered rows, run_id excluded."""
    with connect(dsn) as conn:
        existing = _existing_tables(conn)
        return {t: rows_hash(table_rows(conn, t, run_id)) for t in JOURNAL_TABLES if t in existing}


def combined_hash(hashes: Mapping[str, str]) -> str:
    return hashlib.sha256(
        "".join(f"{k}={v};" for k, v in sorted(hashes.items())).encode()
    ).hexdigest()


def trade_rows(dsn: str, run_id: str) -> list[dict[str, Any]]:
    """The run's round trips in exit order, as dicts (the report's trade list)."""
    with connect(dsn) as conn:
        cur = conn.execute(
            """
            SELECT t.trade_id, t.strategy, coalesce(i.symbol, t.token) AS symbol, t.direction,
                   t.qty, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price, t.gross, t.costs,
                   t.net, t.entry_reason, t.exit_reason
              FROM trades t LEFT JOIN instruments i ON i.token = t.token
             WHERE t.run_id = %s
             ORDER BY t.exit_ts, t.entry_ts, t.trade_id""",
            (run_id,),
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
