"""The ``runs`` table: one row per live session, demo or backtest, with its config hash."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from connectors.postgres.db import connect


def config_hash(config: dict[str, Any]) -> str:
    """Stable sha256 of a JSON-able config (keys sorted), so equal configs hash equal."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def record_run(dsn: str, run_id: str, kind: str, config: dict[str, Any], note: str = "") -> str:
    """Insert or refresh the run row; returns the config hash. ``started_at`` is bookkeeping
    only (wall clock), never an input to a decision."""
    digest = config_hash(config)
    with connect(dsn) as conn:
        conn.execute(
            "INSERT INTO runs (run_id, kind, started_at, config_hash, config, note)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id) DO UPDATE SET kind = EXCLUDED.kind,"
            " config_hash = EXCLUDED.config_hash, config = EXCLUDED.config, note = EXCLUDED.note",
            (run_id, kind, datetime.now(UTC), digest, json.dumps(config, default=str), note),
        )
    return digest


def record_accounts(dsn: str, run_id: str, accounts: list[dict[str, Any]]) -> None:
    """Upsert the run's accounts (``flows.config.accounts.accounts_config`` rows): what the monitor
    shows as each account's capital, limits and strategies."""
    with connect(dsn) as conn:
        for a in accounts:
            conn.execute(
                "INSERT INTO accounts (run_id, account, owner, capital, limits, strategies, config)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id, account) DO UPDATE SET owner = EXCLUDED.owner,"
                " capital = EXCLUDED.capital, limits = EXCLUDED.limits,"
                " strategies = EXCLUDED.strategies, config = EXCLUDED.config",
                (
                    run_id,
                    a["id"],
                    a.get("owner", ""),
                    a["capital_rupees"],
                    json.dumps(a.get("limits", {})),
                    json.dumps(a.get("strategies", [])),
                    json.dumps(a, default=str),
                ),
            )
