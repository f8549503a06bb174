"""Market flow throughput from Kafka to PostgreSQL, 1 vs N Bytewax processes.

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_market_flow \
        --minutes 160 --processes 1 2

Each run reads the whole ticks topic (tail=False) and upserts candles/indicators (and, with
--trading, the trading stage's outputs) into a fresh run id. Wall time includes start-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid

from benchmarks._common import ensure_ticks_topic, market_for
from connectors.db import connect, migrate
from connectors.instruments import save_instruments
from connectors.kafka_io import ensure_topics
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
    dsn = (
        os.environ.get("SCALPFLOW_PG_DSN")
        or subprocess.run(
            ["infra/postgres/pg.sh", "start"], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
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
        addresses = ";".join(f"127.0.0.1:{2301 + i}" for i in range(n))
        cmds = []
        for i in range(n):
            cmd = [sys.executable, "-m", "bytewax.run", "flows.pipeline:flow_from_env()"]
            if n > 1:
                cmd += ["-i", str(i), "-a", addresses]
            cmds.append(["/usr/bin/time", "-f", "%M", *cmd])
        t0 = time.perf_counter()
        procs = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE, text=True) for c in cmds]
        rss = []
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"flow failed: {err[-2000:]}")
            rss.append(int(err.strip().splitlines()[-1]) / 1024)
        dt = time.perf_counter() - t0
        with connect(dsn) as conn:
            row = conn.execute(
                "SELECT sum(ticks) FROM candles WHERE run_id = %s AND interval = '1m'", (run_id,)
            ).fetchone()
        done = int(row[0] or 0) if row else 0
        if done != total:
            raise SystemExit(f"run {run_id} processed {done:,} of {total:,} ticks")
        print(
            f"processes={n} trading={args.trading}: {total:,} ticks in {dt:.1f}s"
            f" = {total / dt:,.0f} ticks/s;"
            f" peak RSS per process {', '.join(f'{r:.0f}' for r in rss)} MB"
        )


if __name__ == "__main__":
    main()
