"""Market flow throughput from Kafka to PostgreSQL, 1 vs N Bytewax processes.

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_market_flow \
        --minutes 160 --processes 1 2

Each run reads the whole ticks topic (tail=False) and upserts candles/indicators (and, with
--trading, the trading stage's outputs) into a fresh run id. Wall time includes start-up.
"""

from __future__ import annotations

import argparse
import os
import uuid

from benchmarks._common import (
    check_every_tick,
    ensure_ticks_topic,
    market_for,
    pg_server,
    run_measured,
    worker_commands,
)
from connectors.db import migrate
from connectors.instruments import save_instruments
from connectors.kafka_io import ensure_topics
from flows.cli import FLOW
from flows.pipeline import ENV_CONFIG
from flows.run_config import build_run_config
from flows.settings import Settings, Topics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--minutes", type=int, default=160)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--trading", action="store_true")
    args = ap.parse_args()
    dsn = pg_server()
    migrate(dsn)
    market = market_for(args.minutes)
    save_instruments(dsn, market.instruments())
    topic = f"bench.ticks.m{args.minutes}.p{args.partitions}"
    total = ensure_ticks_topic(args.bootstrap, topic, market, args.partitions)
    for n in args.processes:
        run_id = f"bench-{uuid.uuid4().hex[:6]}"
        topics = Topics(ticks=topic, bars=f"bench.bars.{run_id}", dlq=f"bench.dlq.{run_id}")
        ensure_topics(args.bootstrap, {topics.control: 1})
        spec = build_run_config(
            Settings(kafka_bootstrap=args.bootstrap, source_batch_size=5000),
            kind="live",
            run_id=run_id,
            trading=args.trading,
            processes=n,
            kafka_outputs=True,
            pg_dsn=dsn,
            topics=topics,
        )
        env = {**os.environ, ENV_CONFIG: spec.to_json()}
        dt, rss = run_measured(worker_commands(FLOW, n, 2301), env)
        check_every_tick(dsn, run_id, total)
        print(
            f"processes={n} trading={args.trading}: {total:,} ticks in {dt:.1f}s"
            f" = {total / dt:,.0f} ticks/s;"
            f" peak RSS per process {', '.join(f'{r:.0f}' for r in rss)} MB"
        )


if __name__ == "__main__":
    main()
