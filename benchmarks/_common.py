"""Shared set-up for benchmarks: a synthetic session produced once into a named topic."""

from __future__ import annotations

import resource
import time
from datetime import date

from connectors.kafka_io import BoundedProducer, ensure_topics, topic_summary
from connectors.synthetic import SyntheticConfig, SyntheticMarket


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def market_for(minutes: int, seed: int = 3) -> SyntheticMarket:
    return SyntheticMarket(
        SyntheticConfig(seed=seed, date=date(2026, 7, 7), duration_minutes=minutes)
    )


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
