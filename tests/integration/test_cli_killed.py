"""A `scalpflow run` killed outright (``kill -9`` of the CLI, its supervisor) leaves no Bytewax
worker behind: each worker stops when its parent dies (``flows.runtime.supervisor``:
``PR_SET_PDEATHSIG`` and a parent watcher)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.instruments import save_instruments
from tests.integration.helpers import cli_env, create_topics, produce_market, unique_topics
from tests.processes import children, gone

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_workers_die_with_a_killed_cli(kafka_bootstrap: str, pg_dsn: str, tmp_path: Path) -> None:
    market = SyntheticMarket(
        SyntheticConfig(seed=5, date=date(2026, 7, 7), duration_minutes=3, strikes_each_side=1)
    )
    save_instruments(pg_dsn, market.instruments())
    topics = unique_topics("it-cli-killed")
    create_topics(kafka_bootstrap, topics)
    produce_market(kafka_bootstrap, topics.ticks, market)
    run_id = f"killed-{uuid.uuid4().hex[:8]}"
    env = {**cli_env(pg_dsn, kafka_bootstrap, topics), "SCALPFLOW_DATA_DIR": str(tmp_path)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.app", "run", "--tail", "--processes", "2",
         "--run-id", run_id],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180  # bounds only: the run is up within seconds
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            written = 0
            while written == 0 and time.monotonic() < deadline:
                assert cli.poll() is None, "the run ended by itself"
                time.sleep(0.5)
                row = conn.execute("SELECT count(*) FROM candles WHERE run_id = %s", (run_id,))
                written = (row.fetchone() or (0,))[0]
        assert written, "the run wrote no candle"  # both workers are running the flow
        workers = children(cli.pid)
        assert len(workers) == 2, workers
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        while not all(gone(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [w for w in workers if not gone(w)] == [], "workers outlived the killed CLI"
    finally:
        if cli.poll() is None:
            cli.kill()
        for w in workers:
            if not gone(w):
                os.kill(w, signal.SIGKILL)
