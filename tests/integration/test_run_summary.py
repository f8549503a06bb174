"""`scalpflow run --no-tail` ends by saying what it wrote, the session P&L and what next."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import date
from decimal import Decimal

import pytest

from connectors.feeds.publish import produce_synthetic
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.instruments import save_instruments
from tests.conftest import REPO
from tests.integration.helpers import cli_env, create_topics, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_run_no_tail_prints_rows_pnl_and_next_steps(kafka_bootstrap, pg_dsn, pg_conn) -> None:
    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 8), duration_minutes=20, strikes_each_side=2)
    )
    save_instruments(pg_dsn, market.instruments())
    topics = unique_topics("it-summary")
    create_topics(kafka_bootstrap, topics)
    produce_synthetic(market, kafka_bootstrap, topics.ticks)
    run_id = f"sum-{uuid.uuid4().hex[:8]}"
    env = cli_env(pg_dsn, kafka_bootstrap, topics)
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli.app", "run", "--no-tail", "--run-id", run_id],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    candles = pg_conn.execute("SELECT count(*) FROM candles WHERE run_id = %s", (run_id,))
    n_candles = candles.fetchone()[0]
    assert n_candles > 0
    assert re.search(rf"candles\s.*\s{n_candles:,}\s", out), out[-3000:]
    pnl = pg_conn.execute(
        "SELECT account, sum(net) FROM positions WHERE run_id = %s GROUP BY account", (run_id,)
    ).fetchall()
    for account, net in pnl:
        assert f"session P&L {account}: ₹{Decimal(net):,.2f}" in out
    if not pnl:
        assert "session P&L: no positions taken" in out
    assert "kill switch: not tripped" in out or "kill switch " in out
    assert re.search(r"data: PostgreSQL scalpflow@127\.0\.0\.1:\d+/\w+ \(run_id=", out), out
    monitor = "next: SCALPFLOW_PG_DSN=... scalpflow monitor  (the monitor on this data; pick run"
    assert f"{monitor} {run_id})" in out, out[-3000:]
