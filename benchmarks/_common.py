"""Shared set-up for benchmarks: a synthetic session produced once into a named topic, the
PostgreSQL server to measure on, and a timed multi-process Bytewax run."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.admin import BoundedProducer, ensure_topics, topic_summary
from connectors.postgres.db import connect
from flows.cli.run import FLOW
from flows.config.run_config import build_run_config
from flows.config.settings import Settings, Topics
from flows.pipeline import ENV_CONFIG

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def market_for(
    minutes: int | None,
    seed: int = 3,
    day: date = date(2026, 7, 7),
    strikes: int = 10,
    rate: float = 1.0,
) -> SyntheticMarket:
    """The synthetic session benchmarks measure on: ``minutes`` from the open, ATM ± ``strikes``,
    ticks at ``rate``× the default rate."""
    return SyntheticMarket(SyntheticConfig.session(seed, day, minutes, strikes, rate))


def ensure_ticks_topic(bootstrap: str, topic: str, market: SyntheticMarket, partitions: int) -> int:
    """Produce the market into ``topic`` unless it already holds exactly that many messages."""
    total = market.raw_count
    ensure_topics(bootstrap, {topic: partitions})
    have = sum(p.end - p.begin for p in topic_summary(bootstrap, [topic])[topic])
    if have == total:
        return total
    if have:
        msg = f"{topic} holds {have} messages, expected 0 or {total}; use another topic name"
        raise SystemExit(msg)
    producer = BoundedProducer(bootstrap)
    t0 = time.perf_counter()
    for m in market.raw_messages():
        producer.produce(topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
    producer.flush()
    dt = time.perf_counter() - t0
    print(f"produced {total:,} messages to {topic} in {dt:.1f}s ({total / dt:,.0f}/s)")
    return total


def pg_server(dsn: str | None = None) -> str:
    """``dsn``, else ``SCALPFLOW_PG_DSN``, else the server ``infra/postgres/pg.sh start`` runs."""
    dsn = dsn or os.environ.get("SCALPFLOW_PG_DSN")
    if dsn:
        return dsn
    out = subprocess.run(
        [str(ROOT / "infra/postgres/pg.sh"), "start"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def worker_commands(flow: str, processes: int, first_port: int) -> list[list[str]]:
    """``python -m bytewax.run <flow>`` for each worker process of one cluster (ports from
    ``first_port`` on 127.0.0.1)."""
    addresses = ";".join(f"127.0.0.1:{first_port + i}" for i in range(processes))
    cmds = []
    for i in range(processes):
        cmd = [sys.executable, "-m", "bytewax.run", flow]
        if processes > 1:
            cmd += ["-i", str(i), "-a", addresses]
        cmds.append(cmd)
    return cmds


def run_measured(cmds: list[list[str]], env: dict[str, str]) -> tuple[float, list[float]]:
    """Run the worker processes to their end under ``/usr/bin/time``: wall seconds and each
    one's peak RSS (MB). One failing stops the others (their own process groups, since
    ``/usr/bin/time`` does not pass a terminate on to the flow)."""
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", *c],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for c in cmds
    ]
    rss = []
    try:
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"flow failed: {err[-2000:]}")
            rss.append(int(err.strip().splitlines()[-1]) / 1024)
    finally:  # interrupted or failed: stop the other flow processes too
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
    return time.perf_counter() - t0, rss


def check_every_tick(dsn: str, run_id: str, total: int) -> None:
    """Exit unless the run's 1-minute candles count all ``total`` ticks (a complete run)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT sum(ticks) FROM candles WHERE run_id = %s AND interval = '1m'", (run_id,)
        ).fetchone()
    done = int(row[0] or 0) if row else 0
    if done != total:
        raise SystemExit(f"run {run_id} processed {done:,} of {total:,} ticks")


def run_pipeline(
    dsn: str,
    bootstrap: str,
    topics: Topics,
    processes: int,
    first_port: int,
    total: int,
    **config: Any,
) -> tuple[float, list[float]]:
    """Run the pipeline (``scalpflow run``'s config, ``config`` added) over the whole ticks
    topic as ``processes`` Bytewax processes: wall seconds and peak RSS per process, once
    the run is checked to have processed all ``total`` ticks."""
    ensure_topics(bootstrap, {topics.control: 1})
    spec = build_run_config(
        Settings(kafka_bootstrap=bootstrap, source_batch_size=5000),
        kind="live",
        processes=processes,
        kafka_outputs=True,
        pg_dsn=dsn,
        topics=topics,
        **config,
    )
    env = {**os.environ, ENV_CONFIG: spec.to_json()}
    result = run_measured(worker_commands(FLOW, processes, first_port), env)
    check_every_tick(dsn, spec.run_id, total)
    return result
