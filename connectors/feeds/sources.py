"""Bytewax sources other than Kafka's own: the in-process synthetic market.

Every source yields ``KafkaSourceMessage`` objects, so the flow treats a synthetic session, a
live topic and a replay identically (key, raw value bytes, topic/partition/offset for the DLQ).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

RawMessage = tuple[bytes | None, bytes]
Message = KafkaSourceMessage[bytes | None, bytes]


class _IteratorPartition(StatefulSourcePartition[Message, int]):
    def __init__(
        self, make: Callable[[], Iterator[RawMessage]], topic: str, resume: int | None, batch: int
    ) -> None:
        self._offset = resume or 0
        self._it = islice(make(), self._offset, None)
        self._topic = topic
        self._batch = batch

    def next_batch(self) -> list[Message]:
        out = []
        for key, value in islice(self._it, self._batch):
            out.append(
                Message(key=key, value=value, topic=self._topic, partition=0, offset=self._offset)
            )
            self._offset += 1
        if not out:
            raise StopIteration
        return out

    def snapshot(self) -> int:
        return self._offset

    def next_awake(self) -> datetime | None:
        return None


class IteratorSource(FixedPartitionedSource[Message, int]):
    """A single-partition source over a re-creatable iterator of (key, value) messages.

    Resuming skips the first ``offset`` messages of a fresh iterator, so the iterator must be
    deterministic (the synthetic market is, for a given seed).
    """

    def __init__(
        self,
        make: Callable[[], Iterator[RawMessage]],
        topic: str = "synthetic",
        batch_size: int = 1000,
    ) -> None:
        self._make = make
        self._topic = topic
        self._batch = batch_size

    def list_parts(self) -> list[str]:
        return [self._topic]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _IteratorPartition:
        return _IteratorPartition(self._make, self._topic, resume_state, self._batch)
