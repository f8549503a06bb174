"""A ``--no-tail`` run ends at the end its partitions had when it started, even while a
producer keeps writing to them (issue 13: the outage test's reference run never ended).

librdkafka reports ``_PARTITION_EOF`` only for an empty fetch at the high watermark, and a
partition that receives a record every 0.1 s never answers a fetch empty: Bytewax's
``KafkaSource(tail=False)`` then never ends. ``flows.sources.bounded_kafka`` ends each partition at
the high watermark it had when built, and keeps that end in its snapshot.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.kafka.admin import client_config, ensure_topics
from flows.sources.aligned_kafka import AlignedKafkaSource
from flows.sources.bounded_kafka import BoundedKafkaSource, BoundedPartition
from tests.conftest import REPO
from tests.topics import topic_name

pytestmark = pytest.mark.kafka

BACKLOG = 300  # records per partition before the run starts
PARTITIONS = 2


def _high(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-high"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1])
    finally:
        consumer.close()


def _eventually_above(bootstrap: str, topic: str, partition: int, count: int) -> bool:
    deadline = time.monotonic() + 15
    while _high(bootstrap, topic, partition) <= count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def written(kafka_bootstrap: str) -> Iterator[str]:
    """A topic with ``BACKLOG`` records per partition, and a producer that goes on writing a
    record to every partition each 0.1 s for as long as the test runs."""
    topic = topic_name("no-tail")
    ensure_topics(kafka_bootstrap, {topic: PARTITIONS})
    producer = Producer(client_config(kafka_bootstrap, **{"linger.ms": 0}))

    def write(n: int) -> None:
        for p in range(PARTITIONS):
            producer.produce(topic, b"x%d" % n, partition=p, timestamp=1_000 + n)

    for n in range(BACKLOG):
        write(n)
    producer.flush()
    stop = threading.Event()

    def keep_writing() -> None:
        n = BACKLOG
        while not stop.wait(0.1):
            write(n)
            producer.flush()
            n += 1

    thread = threading.Thread(target=keep_writing, daemon=True)
    thread.start()
    try:
        yield topic
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_no_tail_run_ends_while_a_producer_keeps_writing(
    kafka_bootstrap: str, written: str, tmp_path: Path
) -> None:
    control = topic_name("no-tail-ctl")
    ensure_topics(kafka_bootstrap, {control: 1})  # empty: ends at once
    out = tmp_path / "seen.json"
    cmd = [sys.executable, "-m", "tests.integration.no_tail_probe", kafka_bootstrap, written,
           control, str(out)]  # fmt: skip
    # the bound only keeps a hang from stalling the suite: the flow ends in seconds
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(out.read_text())
    assert all(t == written for t, _, _ in seen), "the control topic is empty"
    for p in range(PARTITIONS):
        offsets = [o for _, part, o in seen if part == p]
        # every record up to some end at or after the backlog, each once, in order; the
        # producer went on writing past it
        assert offsets == list(range(len(offsets))), p
        assert len(offsets) >= BACKLOG
        # the producer goes on past the run's end (a write in flight may land a moment later)
        assert _eventually_above(kafka_bootstrap, written, p, len(offsets))


def test_a_resumed_partition_ends_where_its_first_run_would_have(
    kafka_bootstrap: str, written: str
) -> None:
    source = AlignedKafkaSource(BoundedKafkaSource(kafka_bootstrap, written), tail=False)
    fresh = source.build_part("ticks", f"0-{written}", None)
    inner = fresh._inner
    assert isinstance(inner, BoundedPartition)
    assert inner.end >= BACKLOG  # the end is read at the first start ...
    assert fresh.snapshot() == (0, inner.end)  # ... and kept in the snapshot
    fresh.close()

    part = source.build_part("ticks", f"0-{written}", (100, 250))  # as snapshotted
    offsets: list[int] = []
    ended = False
    deadline = time.monotonic() + 60  # only a guard against a hang
    while not ended and time.monotonic() < deadline:
        try:
            offsets.extend(getattr(m, "offset", -1) for m in part.next_batch())
        except StopIteration:
            ended = True
    assert ended, f"still reading after offset {offsets[-1] if offsets else None}"
    assert offsets == list(range(100, 250))
    assert part.snapshot() == (250, 250)  # resumed again, it ends at once
    part.close()
