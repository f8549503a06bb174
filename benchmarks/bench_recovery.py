"""Crash recovery: restart-to-first-output after ``kill -9`` vs topic history, snapshot cost on
replay throughput, and the recovery store's size.

.venv/bin/python -m benchmarks.bench_recovery --days 1 5 --minutes 60 --strikes 5

For each history length a ticks topic holds that many synthetic sessions (consecutive dates;
``--minutes`` long, i.e. shorter than a real 375-minute day unless told). ``scalpflow run
--tail`` (with its supervisor and recovery store) catches up with the whole history, is killed
(``kill -9`` of its worker) once caught up, and the next session's first ticks are produced at
once: printed is the time from the kill to the first new bar on ``md.bars`` (including the
supervisor's 1 s restart pause and the worker's start-up). Without recovery that restart
re-reads the whole topic, so it grew with history; with it, it must not.

The snapshot cost: the same one-session replay in this process with and without a recovery
store (same epoch length), alternated, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from benchmarks._common import pg_server
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.admin import BoundedProducer, ensure_topics, topic_summary
from connectors.postgres.db import scratch_database
from connectors.postgres.instruments import load_instruments, save_instruments
from flows.config.settings import Topics
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from flows.runtime.recovery import default_dir, expected_stamp, prepare, store_size
from operators import _native

FIRST_DAY = date(2026, 7, 6)


def _day(i: int, minutes: int, strikes: int) -> SyntheticMarket:
    day = FIRST_DAY + timedelta(days=i)
    return SyntheticMarket(
        SyntheticConfig(seed=3 + i, date=day, duration_minutes=minutes, strikes_each_side=strikes)
    )


def _topics(tag: str, ticks: str) -> Topics:
    names = {k: f"bench.recovery.{tag}.{k}" for k in Topics().model_dump()}
    return Topics(**{**names, "ticks": ticks})


def _end(bootstrap: str, topic: str) -> int:
    return sum(p.end for p in topic_summary(bootstrap, [topic]).get(topic, []))


def _history(
    bootstrap: str, days: int, minutes: int, strikes: int, partitions: int, tag: str = ""
) -> str:
    """A topic holding ``days`` sessions (reused when it already holds exactly them; ``tag``
    makes a new one, for a run that appends to it)."""
    topic = f"bench.recovery.d{days}.m{minutes}.s{strikes}.p{partitions}{tag}.md.ticks"
    markets = [_day(i, minutes, strikes) for i in range(days)]
    total = sum(m.raw_count for m in markets)
    ensure_topics(bootstrap, {topic: partitions})
    have = _end(bootstrap, topic)
    if have == total:
        return topic
    if have:
        raise SystemExit(f"{topic} holds {have} messages, expected 0 or {total}")
    producer = BoundedProducer(bootstrap)
    t0 = time.perf_counter()
    for market in markets:
        for m in market.raw_messages():
            producer.produce(topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
    producer.flush()
    print(f"produced {total:,} ticks ({days} x {minutes} min) in {time.perf_counter() - t0:.0f} s")
    return topic


def _worker(supervisor: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor:
                return int(entry.name)
    raise RuntimeError("no worker process")


def _wait_caught_up(bootstrap: str, topic: str, quiet_s: float) -> float:
    """Seconds until ``topic`` stopped growing for ``quiet_s`` (the history is processed)."""
    t0 = time.monotonic()
    last, since = -1, time.monotonic()
    while True:
        now_end = _end(bootstrap, topic)
        if now_end != last:
            last, since = now_end, time.monotonic()
        elif now_end > 0 and time.monotonic() - since >= quiet_s:
            return since - t0
        time.sleep(0.2)


def restart_time(args: argparse.Namespace, dsn: str, days: int) -> None:
    tag = uuid.uuid4().hex[:8]  # the next session is appended: a topic of this run's own
    history = _history(args.bootstrap, days, args.minutes, args.strikes, args.partitions, tag)
    next_day = _day(days, args.minutes, args.strikes)
    for i in range(days + 1):
        save_instruments(dsn, _day(i, args.minutes, args.strikes).instruments())
    topics = _topics(tag, history)
    ensure_topics(args.bootstrap, {t: 1 for k, t in topics.model_dump().items() if k != "ticks"})
    data = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    env = {
        **os.environ,
        "SCALPFLOW_PG_DSN": dsn,
        "SCALPFLOW_KAFKA_BOOTSTRAP": args.bootstrap,
        "SCALPFLOW_DATA_DIR": str(data),
        **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.model_dump().items()},
    }
    cmd = [sys.executable, "-m", "flows.cli.app", "run", "--tail", "--run-id", f"bench-{tag}",
           "--snapshot-interval", str(args.snapshot_interval)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        catch_up = _wait_caught_up(args.bootstrap, topics.bars, quiet_s=2 * args.snapshot_interval)
        before = _end(args.bootstrap, topics.bars)
        store = default_dir(data, f"bench-{tag}")
        size = store_size(store)
        t_kill = time.monotonic()
        os.kill(_worker(proc.pid), signal.SIGKILL)
        producer = BoundedProducer(args.bootstrap)
        for n, m in enumerate(next_day.raw_messages()):
            producer.produce(history, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
            if n >= 20_000:
                break
        producer.flush()
        while _end(args.bootstrap, topics.bars) <= before:
            time.sleep(0.02)
        first = time.monotonic() - t_kill
        print(
            f"history {days} day(s) of {args.minutes} min ({_end(args.bootstrap, history):,}"
            f" ticks): caught up in {catch_up:.1f} s; kill -9 -> first new bar {first:.2f} s;"
            f" store {size / 1e6:.1f} MB"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _replay(
    bootstrap: str, dsn: str, topic: str, store: Path | None, epoch_s: int
) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads: CPU time is what contention by other
    processes distorts least) of one replay."""
    from bytewax.recovery import RecoveryConfig

    tag = uuid.uuid4().hex[:8]
    topics = _topics(tag, topic)
    ensure_topics(bootstrap, {t: 1 for k, t in topics.model_dump().items() if k != "ticks"})
    instruments = load_instruments(dsn)
    config = PipelineConfig(
        run_id=f"bench-{tag}", pg_dsn=dsn, kafka_bootstrap=bootstrap, topics=topics
    )
    recovery = None
    if store is not None:
        prepare(store, expected_stamp(tag, 1), fresh=True)
        recovery = RecoveryConfig(store)
    flow = build_flow(kafka_source(bootstrap, topic, tail=False), instruments, config, f"b-{tag}")
    t0, c0 = time.perf_counter(), time.process_time()
    run_flow(flow, epoch_interval=timedelta(seconds=epoch_s), recovery=recovery)
    return time.perf_counter() - t0, time.process_time() - c0


def snapshot_cost(args: argparse.Namespace, dsn: str) -> None:
    topic = _history(args.bootstrap, 1, args.replay_minutes, args.strikes, args.partitions)
    save_instruments(dsn, _day(0, args.replay_minutes, args.strikes).instruments())
    ticks = _end(args.bootstrap, topic)
    store = Path(tempfile.mkdtemp(prefix="bench-recovery-replay-")) / "store"
    plain: list[tuple[float, float]] = []
    recovered: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        plain.append(_replay(args.bootstrap, dsn, topic, None, args.snapshot_interval))
        recovered.append(_replay(args.bootstrap, dsn, topic, store, args.snapshot_interval))
    for what, i in (("wall", 0), ("CPU", 1)):
        best_plain, best_rec = min(r[i] for r in plain), min(r[i] for r in recovered)
        print(
            f"replay {ticks:,} ticks ({args.replay_minutes} min), epoch"
            f" {args.snapshot_interval} s, {what} time: without recovery {best_plain:.1f} s"
            f" ({ticks / best_plain:,.0f}/s), with snapshots {best_rec:.1f} s"
            f" ({ticks / best_rec:,.0f}/s): cost {100 * (best_rec / best_plain - 1):+.1f} %"
            f" (runs: {[round(r[i], 1) for r in plain]} vs"
            f" {[round(r[i], 1) for r in recovered]})"
        )
    print(f"store after the replay {store_size(store) / 1e6:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--days", type=int, nargs="*", default=[1, 5])
    ap.add_argument("--minutes", type=int, default=60, help="length of each synthetic day")
    ap.add_argument("--strikes", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--snapshot-interval", type=int, default=5)
    ap.add_argument("--replay-minutes", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-replay", action="store_true")
    args = ap.parse_args()
    server = pg_server()
    forms = _native.compiled_modules()
    print(f"operators: {len(forms)} modules compiled" if forms else "operators: pure Python")
    with scratch_database(server, "scalpflow_bench_recovery") as dsn:
        for days in args.days:
            restart_time(args, dsn, days)
        if not args.skip_replay:
            snapshot_cost(args, dsn)


if __name__ == "__main__":
    main()
