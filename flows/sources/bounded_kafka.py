"""Kafka input that ends at the end each partition had when the run started (``--no-tail``).

Bytewax's ``KafkaSource(tail=False)`` ends a partition only when librdkafka reports
``_PARTITION_EOF``, and librdkafka reports it only when a fetch comes back *empty* at the high
watermark. A partition that a producer keeps writing to (a live feed, a keep-alive quote every
0.2 s) answers every fetch with a record before the broker's fetch wait (500 ms) runs out, so
the EOF never comes and the run never ends, however far it has read. Here each partition reads
up to the high watermark it had when it was first built and ends there (records at or past it
are left for the next run); an empty partition ends at once. The end is part of the
partition's snapshot, so a run resumed from its recovery store ends where it would have
without the crash, not at a later end.
"""

from __future__ import annotations

from typing import Any, cast

from bytewax.connectors.kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaSource,
    KafkaSourceMessage,
)
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, KafkaException, TopicPartition

Item = KafkaSourceMessage[Any, Any] | KafkaError[Any, Any]
# (next offset to read, end offset): the partition reads [next, end)
BoundedState = tuple[int, int]


def _offset(item: Item) -> int | None:
    msg = item.msg if isinstance(item, KafkaError) else item
    offset = msg.offset
    return offset if offset is not None and offset >= 0 else None


def watermarks(
    config: dict[str, Any], topic: str, partition: int, timeout_s: float
) -> tuple[int, int]:
    """(low, high) offsets of one partition; a one-line error if the broker does not answer."""
    consumer = Consumer({**config, "group.id": "scalpflow-watermarks"})
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s
        )
    except KafkaException as exc:
        msg = f"Kafka did not say where {topic}[{partition}] ends: {exc}"
        raise RuntimeError(msg) from exc
    finally:
        consumer.close()
    return int(low), int(high)


class BoundedPartition(StatefulSourcePartition[Item, BoundedState]):
    """One partition read over ``[next, end)``, then ``StopIteration``."""

    def __init__(self, inner: StatefulSourcePartition[Item, Any], next_: int, end: int) -> None:
        self._inner = inner
        self._next = next_
        self.end = end

    def next_batch(self) -> list[Item]:
        if self._next >= self.end:
            raise StopIteration
        got = self._inner.next_batch()  # its EOF (StopIteration) ends us too
        batch = got if type(got) is list else list(got)
        last = batch[-1] if batch else None
        if type(last) is KafkaSourceMessage and last.offset is not None and last.offset >= 0:
            if last.offset < self.end:  # offsets rise: the whole batch is before the end
                self._next = last.offset + 1
                return batch
        out: list[Item] = []
        for item in batch:
            offset = _offset(item)
            if offset is None:  # a transient broker error: passed on, takes no offset
                out.append(item)
                continue
            if offset >= self.end:  # written after the run began: the next run's
                self._next = self.end
                break
            out.append(item)
            self._next = offset + 1
        return out

    def resume_at(self, offset: int) -> BoundedState:
        """The state that resumes at ``offset`` (a wrapper that held records back)."""
        return (offset, self.end)

    def snapshot(self) -> BoundedState:
        return (self._next, self.end)

    def close(self) -> None:
        self._inner.close()


class BoundedKafkaSource(FixedPartitionedSource[Item, BoundedState]):
    """``KafkaSource(tail=False)`` from the beginning, each partition ending at its high
    watermark as of the run's first start (see module doc)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        batch_size: int = 1000,
        add_config: dict[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._add_config = dict(add_config or {})
        self._timeout_s = timeout_s
        self.inner = KafkaSource(
            brokers=[bootstrap],
            topics=[topic],
            tail=False,
            starting_offset=OFFSET_BEGINNING,
            batch_size=batch_size,
            raise_on_errors=False,
            add_config=cast("dict[str, str]", self._add_config),
        )

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: BoundedState | None
    ) -> BoundedPartition:
        if resume_state is None:
            index = int(for_part.split("-", 1)[0])
            config = {"bootstrap.servers": self._bootstrap, **self._add_config}
            next_, end = watermarks(config, self._topic, index, self._timeout_s)
        else:
            next_, end = resume_state
        inner = self.inner.build_part(step_id, for_part, next_)
        return BoundedPartition(inner, next_, end)
