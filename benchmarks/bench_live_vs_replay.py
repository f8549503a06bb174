"""Same topic, same run: raw consume vs the replay path vs the live path (issue 19).

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_live_vs_replay \
        --minutes 60 --partitions 3 --rounds 3

One synthetic session is produced once into one ticks topic; each round then measures, one
after the other on that topic: the raw confluent-kafka consume rate, ``scalpflow backtest``
over the session (the replay path, as the CLI runs it) and ``scalpflow run --no-tail`` (the
live path: Bytewax's Kafka source, Kafka outputs, a recovery store), both with the same
``--strategy`` list into the same scratch database. Rounds interleave the three so a change in
the box's load hits all of them. Ticks/s are over each command's wall time (start-up, schema
check and the closing summary included, as a user sees them); the replay's in-flow time is
printed beside it. Each run is checked to have counted every tick in its 1-minute candles.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from benchmarks._common import check_every_tick, ensure_ticks_topic, market_for, pg_server
from benchmarks.bench_kafka_consume import consume_all
from connectors.postgres.db import migrate, scratch_database
from connectors.postgres.instruments import save_instruments
from flows.config.settings import Topics
from flows.pipeline import DEFAULT_STRATEGIES

SCALPFLOW = [sys.executable, "-c", "from flows.cli.app import main; main()"]


def _strategy_args(names: list[str]) -> list[str]:
    return [arg for name in names for arg in ("--strategy", name)]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of ``cmd`` and its stdout; exits with its stderr's tail if it fails."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd[3:6])} failed: {out.stderr[-2000:]}")
    return dt, out.stdout


def _env(dsn: str, bootstrap: str, topic: str, data_dir: str) -> dict[str, str]:
    """The commands' environment: the bench topic as ``md.ticks``, outputs to bench topics."""
    env = {**os.environ, "SCALPFLOW_PG_DSN": dsn, "SCALPFLOW_KAFKA_BOOTSTRAP": bootstrap}
    env["SCALPFLOW_DATA_DIR"] = data_dir
    for field in Topics.model_fields:
        env[f"SCALPFLOW_TOPIC_{field.upper()}"] = f"bench.lvr.{field}"
    env["SCALPFLOW_TOPIC_TICKS"] = topic
    return env


def _fills(stdout: str) -> str:
    """The fill count a command printed (replay: metrics table; live: run summary)."""
    found = re.search(r"│ fills\s+│\s+([\d,]+)", stdout)
    return found.group(1) if found else "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--strategy", action="append", default=None, help="default: every built-in strategy"
    )
    args = ap.parse_args()
    names = args.strategy or [s.name for s in DEFAULT_STRATEGIES]
    market = market_for(args.minutes, seed=args.seed)
    topic = f"bench.lvr.s{args.seed}.m{args.minutes}.p{args.partitions}.md.ticks"
    total = ensure_ticks_topic(args.bootstrap, topic, market, args.partitions)
    start = market.start.isoformat()
    end = (market.end + timedelta(minutes=1)).isoformat()
    print(f"topic {topic}: {total:,} ticks, {args.partitions} partitions; strategies {names}")
    rates: dict[str, list[float]] = {"raw": [], "replay": [], "live": []}
    with (
        scratch_database(pg_server(), "scalpflow_lvr") as dsn,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        migrate(dsn)
        save_instruments(dsn, market.instruments())
        env = _env(dsn, args.bootstrap, topic, data_dir)
        for r in range(1, args.rounds + 1):
            load = os.getloadavg()
            n, _, dt = consume_all(args.bootstrap, topic, total)
            rates["raw"].append(n / dt)
            tag = uuid.uuid4().hex[:6]
            replay_id, live_id = f"lvr-replay-{tag}", f"lvr-live-{tag}"
            replay_cmd = [*SCALPFLOW, "backtest", "--from", start, "--to", end, "--topic", topic,
                          "--run-id", replay_id, *_strategy_args(names)]  # fmt: skip
            t_replay, out_replay = _timed(replay_cmd, env)
            check_every_tick(dsn, replay_id, total)
            flow = re.search(r"wall time\D+([\d.]+) s", out_replay)
            rates["replay"].append(total / t_replay)
            store = str(Path(data_dir) / live_id)
            live_cmd = [*SCALPFLOW, "run", "--no-tail", "--run-id", live_id, "--fresh",
                        "--recovery-dir", store, *_strategy_args(names)]  # fmt: skip
            t_live, out_live = _timed(live_cmd, env)
            check_every_tick(dsn, live_id, total)
            rates["live"].append(total / t_live)
            print(
                f"round {r} (load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}): "
                f"raw {n / dt:,.0f} msg/s; replay {t_replay:.1f}s = {total / t_replay:,.0f} "
                f"ticks/s (flow {flow.group(1) if flow else '?'}s, fills {_fills(out_replay)}); "
                f"live {t_live:.1f}s = {total / t_live:,.0f} ticks/s (fills {_fills(out_live)}); "
                f"live/replay {t_replay / t_live:.2f}, replay/raw {total / t_replay / (n / dt):.3f}"
                f", live/raw {total / t_live / (n / dt):.3f}",
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"median of {args.rounds} rounds: raw {med['raw']:,.0f} msg/s, replay "
        f"{med['replay']:,.0f} ticks/s, live {med['live']:,.0f} ticks/s; live/replay "
        f"{med['live'] / med['replay']:.2f}, replay/raw {med['replay'] / med['raw']:.3f}, "
        f"live/raw {med['live'] / med['raw']:.3f}; load now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
