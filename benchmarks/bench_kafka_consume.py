"""Raw confluent-kafka consume rate of a ticks topic: the physical limit of the input.

.venv/bin/python benchmarks/bench_kafka_consume.py --minutes 120 --partitions 3
"""

from __future__ import annotations

import argparse
import time
import uuid

from confluent_kafka import Consumer

from benchmarks._common import ensure_ticks_topic, market_for, peak_rss_mb


def consume_all(bootstrap: str, topic: str, total: int) -> tuple[int, int, float]:
    """Read ``topic`` from the start with a fresh group: (messages, value bytes, seconds from
    the first batch to the last), stopping at ``total`` messages or 5 s without one."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    consumer.subscribe([topic])
    n = 0
    nbytes = 0
    t0 = None
    while n < total:
        batch = consumer.consume(10_000, timeout=5)
        if not batch and t0 is not None:
            break
        if t0 is None and batch:
            t0 = time.perf_counter()
        for m in batch:
            if m.error() is None:
                n += 1
                nbytes += len(m.value() or b"")
    dt = time.perf_counter() - (t0 or time.perf_counter())
    consumer.close()
    return n, nbytes, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--minutes", type=int, default=120)
    ap.add_argument("--partitions", type=int, default=3)
    args = ap.parse_args()
    topic = f"bench.ticks.m{args.minutes}.p{args.partitions}"
    total = ensure_ticks_topic(args.bootstrap, topic, market_for(args.minutes), args.partitions)
    n, nbytes, dt = consume_all(args.bootstrap, topic, total)
    print(
        f"consumed {n:,} messages ({nbytes / 1e6:.0f} MB) in {dt:.2f}s: {n / dt:,.0f} msg/s, "
        f"{nbytes / 1e6 / dt:.0f} MB/s; peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
