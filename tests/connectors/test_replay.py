"""Kafka replay against a real broker: time-range bounds, partition independence, resume,
and the Bytewax source."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, cluster_main, run_main
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.kafka.replay import KafkaReplay, KafkaReplaySource, ReplayError, ReplayRecord, to_ms
from tests.topics import topic_name

pytestmark = pytest.mark.kafka

T0 = datetime(2026, 1, 6, 3, 45, tzinfo=UTC)  # 09:15 IST
N_RECORDS = 600
KEYS = [f"tok{i:02d}".encode() for i in range(12)]


def _records() -> list[tuple[bytes, bytes, int]]:
    """(key, value, timestamp_ms) in production order: ties of timestamps across keys are
    frequent (about 3 records per millisecond), keys shuffled within a millisecond."""
    rng = random.Random(7)
    out = []
    for i in range(N_RECORDS):
        key = rng.choice(KEYS)
        ts = to_ms(T0) + i // 3
        out.append((key, f"v{i:04d}".encode(), ts))
    return out


def _make_topic(bootstrap: str, partitions: int, records: list[tuple[bytes, bytes, int]]) -> str:
    topic = topic_name(f"replay.{partitions}p")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    ).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value, ts in records:
        producer.produce(topic, value=value, key=key, timestamp=ts)
    assert producer.flush(30) == 0
    return topic


@pytest.fixture(scope="module")
def records() -> list[tuple[bytes, bytes, int]]:
    return _records()


@pytest.fixture(scope="module")
def topics(
    kafka_bootstrap: str, records: list[tuple[bytes, bytes, int]]
) -> Iterator[dict[int, str]]:
    made = {n: _make_topic(kafka_bootstrap, n, records) for n in (1, 6)}
    yield made
    AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics(list(made.values()))


def _ms(n: int) -> datetime:
    return T0 + timedelta(milliseconds=n)


def _expected(
    records: list[tuple[bytes, bytes, int]], start: datetime, end: datetime
) -> list[tuple[bytes, bytes, int]]:
    """The order the replay promises: by timestamp, then key, then production order."""
    lo, hi = to_ms(start), to_ms(end)
    indexed = [(ts, key, i, value) for i, (key, value, ts) in enumerate(records) if lo <= ts < hi]
    return [(key, value, ts) for ts, key, _, value in sorted(indexed)]


def _view(recs: list[ReplayRecord]) -> list[tuple[bytes | None, bytes, int]]:
    return [(r.key, r.value, r.timestamp_ms) for r in recs]


def test_six_partitions_replay_in_the_same_order_as_one(
    kafka_bootstrap: str, topics: dict[int, str], records: list[tuple[bytes, bytes, int]]
) -> None:
    start, end = _ms(0), _ms(N_RECORDS)
    one_reader = KafkaReplay(kafka_bootstrap, topics[1], start, end, buffer_size=16)
    one = list(one_reader)
    six = list(KafkaReplay(kafka_bootstrap, topics[6], start, end, buffer_size=16))
    # 600 records in one partition, yet never more than a few buffers' worth held at once.
    assert 0 < one_reader.peak_buffered <= 4 * 16
    assert len(one) == N_RECORDS
    assert _view(one) == _view(six)
    assert _view(one) == _expected(records, start, end)
    assert len({r.partition for r in six}) >= 4  # the keys really were spread


def test_time_range_bounds_are_honoured(
    kafka_bootstrap: str, topics: dict[int, str], records: list[tuple[bytes, bytes, int]]
) -> None:
    start, end = _ms(50), _ms(120)  # [start, end): 70 ms = 210 records
    got = list(KafkaReplay(kafka_bootstrap, topics[6], start, end, buffer_size=8))
    assert _view(got) == _expected(records, start, end)
    assert len(got) == 210
    assert min(r.timestamp_ms for r in got) == to_ms(start)
    assert max(r.timestamp_ms for r in got) == to_ms(end) - 1
    assert all(r.ts >= start and r.ts < end for r in got)


def test_range_outside_the_data_is_empty(kafka_bootstrap: str, topics: dict[int, str]) -> None:
    later = _ms(10 * N_RECORDS)
    assert list(KafkaReplay(kafka_bootstrap, topics[6], later, later + timedelta(hours=1))) == []
    reader = KafkaReplay(kafka_bootstrap, topics[6], later, later + timedelta(hours=1))
    assert all(start == end for start, end in reader.plan.values())
    reader.close()


@pytest.mark.parametrize("cut", [1, 7, 100, 299])
def test_resume_from_snapshot_continues_exactly(
    kafka_bootstrap: str, topics: dict[int, str], cut: int
) -> None:
    start, end = _ms(0), _ms(N_RECORDS)
    full = _view(list(KafkaReplay(kafka_bootstrap, topics[6], start, end, buffer_size=16)))
    first = KafkaReplay(kafka_bootstrap, topics[6], start, end, buffer_size=16)
    it = iter(first)
    head = [next(it) for _ in range(cut)]
    snap = first.snapshot()
    first.close()
    rest = list(KafkaReplay(kafka_bootstrap, topics[6], start, end, resume=snap))
    assert _view(head) + _view(rest) == full


@pytest.mark.parametrize(("workers", "prefetch"), [(1, True), (2, True), (1, False)])
def test_bytewax_source_emits_the_replay_order(
    kafka_bootstrap: str,
    topics: dict[int, str],
    records: list[tuple[bytes, bytes, int]],
    workers: int,
    prefetch: bool,
) -> None:
    start, end = _ms(10), _ms(500)
    out: list[tuple[bytes | None, bytes, int]] = []
    flow = Dataflow("replay_test")
    stream = op.input(
        "in",
        flow,
        KafkaReplaySource(kafka_bootstrap, topics[6], start, end, batch_size=50, prefetch=prefetch),
    )
    op.output(
        "out", op.map("view", stream, lambda r: (r.key, r.value, r.timestamp_ms)), TestingSink(out)
    )
    if workers == 1:
        run_main(flow)
    else:  # every worker lists the one partition; exactly one of them must read it
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    assert out == _expected(records, start, end)


@pytest.mark.parametrize("cut_batches", [0, 3])
def test_prefetching_partition_resumes_exactly_from_its_snapshots(
    kafka_bootstrap: str, topics: dict[int, str], cut_batches: int
) -> None:
    start, end = _ms(0), _ms(N_RECORDS)
    full = _view(list(KafkaReplay(kafka_bootstrap, topics[6], start, end)))

    def part(resume: dict[str, Any] | None) -> Any:
        source = KafkaReplaySource(kafka_bootstrap, topics[6], start, end, batch_size=20)
        return source.build_part("in", source.list_parts()[0], resume)

    def drain(p: Any) -> list[ReplayRecord]:
        out: list[ReplayRecord] = []
        while True:
            try:
                out.extend(p.next_batch())
            except StopIteration:
                return out

    first = part(None)
    head = [r for _ in range(cut_batches) for r in first.next_batch()]
    snap = first.snapshot()
    first.close()
    assert len(head) == 20 * cut_batches
    assert _view(head) + _view(drain(part(snap))) == full


def test_prefetching_partition_reports_a_missing_topic_as_a_replay_error(
    kafka_bootstrap: str,
) -> None:
    start, end = _ms(0), _ms(10)
    source = KafkaReplaySource(kafka_bootstrap, f"no.such.{uuid.uuid4().hex[:8]}", start, end)
    p = source.build_part("in", source.list_parts()[0], None)
    with pytest.raises(ReplayError, match=r"no\.such\."):
        p.next_batch()
    p.close()
