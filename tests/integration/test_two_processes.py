"""Issue 19: two Bytewax processes over a backlog trade exactly like one.

Before input watermarks each process aligned only its own Kafka partitions and the strategy
stage dropped the other process's ticks as later than its 5 s lateness (NOTES.md), so two
processes traded nothing. Now the strategy stage releases by the minimum over all source
partitions and the account stage by the minimum over the strategy stages, whichever process
reads them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from datetime import date

import pytest
from pydantic import SecretStr

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.instruments import save_instruments
from flows.config.run_config import build_run_config
from flows.config.settings import Settings, Topics
from flows.pipeline import ENV_CONFIG
from tests.integration.helpers import create_topics, journal_queries, produce, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

JOURNAL = journal_queries("signals", "orders", "fills", "trades", "risk_decisions")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run(pg_dsn: str, bootstrap: str, topics: dict[str, str], run_id: str, processes: int) -> None:
    settings = Settings(pg_dsn=SecretStr(pg_dsn), kafka_bootstrap=bootstrap)
    config = build_run_config(
        settings,
        kind="live",
        run_id=run_id,
        processes=processes,
        kafka_outputs=True,
        pg_dsn=pg_dsn,
        topics=Topics(**topics),
    )
    env = {**os.environ, ENV_CONFIG: config.to_json(), "SCALPFLOW_METRICS_PORT": "0"}
    addresses = ";".join(f"127.0.0.1:{p}" for p in _free_ports(processes))
    procs = []
    for i in range(processes):
        cmd = [sys.executable, "-m", "bytewax.run", "flows.pipeline:flow_from_env()"]
        if processes > 1:
            cmd += ["-i", str(i), "-a", addresses]
        procs.append(subprocess.Popen(cmd, env=env))
    assert [p.wait(timeout=600) for p in procs] == [0] * processes


def _journal(conn, run_id: str) -> dict[str, list[tuple]]:
    """Every journal table of a run with the run id column dropped."""
    out = {}
    for name, sql in JOURNAL.items():
        cur = conn.execute(sql, (run_id,))
        names = [d.name for d in cur.description]
        keep = [i for i, n in enumerate(names) if n != "run_id"]
        out[name] = [tuple(row[i] for i in keep) for row in cur.fetchall()]
    return out


def test_two_processes_over_a_backlog_trade_like_one(kafka_bootstrap, pg_dsn, pg_conn) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, date=date(2026, 7, 7), duration_minutes=30))
    topics = unique_topics("it-2proc")
    create_topics(kafka_bootstrap, topics, tick_partitions=4)
    produce(
        kafka_bootstrap,
        topics.ticks,
        ((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()),
    )
    save_instruments(pg_dsn, market.instruments())
    tag = uuid.uuid4().hex[:6]
    one, two = f"p1-{tag}", f"p2-{tag}"
    _run(pg_dsn, kafka_bootstrap, topics.model_dump(), one, processes=1)
    _run(pg_dsn, kafka_bootstrap, topics.model_dump(), two, processes=2)
    single, double = _journal(pg_conn, one), _journal(pg_conn, two)
    assert single["fills"], "the session filled nothing: the comparison would be empty"
    assert double == single
