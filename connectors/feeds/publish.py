"""Producing a synthetic session into Kafka (the feed a live connector would be)."""

from __future__ import annotations

import time
from collections.abc import Callable

from connectors.feeds.synthetic import SyntheticMarket
from connectors.kafka.admin import BoundedProducer, ensure_topics


def produce_synthetic(
    market: SyntheticMarket,
    bootstrap: str,
    topic: str,
    *,
    partitions: int = 3,
    speed: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce every wire message of ``market`` to ``topic``; returns the count.

    Record timestamps are event times (DESIGN invariant 9). ``speed`` 0 sends as fast as the
    broker takes them; ``speed`` N paces the feed at N× market time (wall-clock pacing only:
    the messages themselves never change).
    """
    ensure_topics(bootstrap, {topic: partitions})
    producer = BoundedProducer(bootstrap)
    wall0 = time.monotonic()
    first_ts: int | None = None
    count = 0
    for msg in market.raw_messages():
        if speed > 0:
            first_ts = msg.timestamp_ms if first_ts is None else first_ts
            due = (msg.timestamp_ms - first_ts) / 1000 / speed
            lag = due - (time.monotonic() - wall0)
            if lag > 0:
                time.sleep(lag)
        producer.produce(topic, msg.value, key=msg.key, timestamp_ms=msg.timestamp_ms)
        count += 1
        if progress is not None and count % 5000 == 0:
            progress(5000)
    producer.flush()
    if progress is not None:
        progress(count % 5000)
    return count
