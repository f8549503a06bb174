"""Market flow throughput from Kafka to PostgreSQL, 1 vs N Bytewax processes.

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_market_flow \
        --minutes 160 --processes 1 2

Each run reads the whole ticks topic (tail=False) and upserts candles/indicators (and, with
--trading, the trading stage's outputs) into a fresh run id. Wall time includes start-up.
"""

from __future__ import annotations

import argparse
import uuid

from benchmarks._common import (
    ensure_ticks_topic,
    market_for,
    pg_server,
    run_pipeline,
)
from connectors.postgres.db import migrate
from connectors.postgres.instruments import save_instruments
from flows.config.settings import Topics


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
        dt, rss = run_pipeline(
            dsn, args.bootstrap, topics, n, 2301, total, run_id=run_id, trading=args.trading
        )
        print(
            f"processes={n} trading={args.trading}: {total:,} ticks in {dt:.1f}s"
            f" = {total / dt:,.0f} ticks/s;"
            f" peak RSS per process {', '.join(f'{r:.0f}' for r in rss)} MB"
        )


if __name__ == "__main__":
    main()
