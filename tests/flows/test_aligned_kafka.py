"""Alignment of Kafka partitions in event time: a record stamped far beyond the wall clock (a
tick dated 2100) must not hold its partition back while tailing (issue 12)."""

from __future__ import annotations

import time
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import StatefulSourcePartition

from flows.sources.aligned_kafka import _AlignedPartition, _Clock, _offset

YEAR_2100_MS = 4_102_444_800_000


class _Fixed(StatefulSourcePartition[Any, Any]):
    def __init__(self, batches: list[list[Any]]) -> None:
        self.batches = batches

    def next_batch(self) -> list[Any]:
        return self.batches.pop(0) if self.batches else []

    def snapshot(self) -> Any:
        return None


def _msg(ts_ms: int, offset: int) -> KafkaSourceMessage[bytes, bytes]:
    return KafkaSourceMessage(b"k", b"v", offset=offset, timestamp=(1, ts_ms))


def _partitions(future_ms: int | None) -> tuple[_AlignedPartition, _AlignedPartition]:
    now = int(time.time() * 1000)
    clock = _Clock()
    poisoned = _Fixed([[_msg(YEAR_2100_MS, 0), _msg(now + 10, 1)]])
    other = _Fixed([[_msg(now, 0)], [_msg(now + 20, 1)]])
    a = _AlignedPartition(poisoned, "a", clock, 1000, None, future_ms)
    b = _AlignedPartition(other, "b", clock, 1000, None, future_ms)
    b.next_batch()  # b has handed out a record stamped now
    return a, b


def test_tailing_a_record_from_2100_does_not_hold_its_partition() -> None:
    a, _b = _partitions(future_ms=300_000)
    assert [_offset(m) for m in a.next_batch()] == [0, 1]


def test_replaying_alignment_still_uses_record_times_only() -> None:
    a, _b = _partitions(future_ms=None)
    assert a.next_batch() == []  # held until the other partition catches up (or ends)
