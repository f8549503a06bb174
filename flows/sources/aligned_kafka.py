"""Kafka input whose partitions advance together in event time (for live/tail=False runs).

Bytewax's ``KafkaSource`` polls each partition for up to ``batch_size`` records at a time. When
the partitions hold a backlog (``scalpflow run --no-tail``, or a live run that restarts behind),
one partition's 1,000 records can span a minute of market time while another's span ten
seconds, so the partitions drift apart without bound and every downstream stage that merges
keys sees items far later than its bounded lateness: the trades then depend on partition
count and polling. This wrapper holds a partition back while it is more than ``slack`` ahead
of the slowest partition of this process, so the merged stream stays within ``slack`` of
event-time order and a live run trades like the deterministic replay of the same range.

A partition with nothing buffered constrains the others at the time of its last record until
it is exhausted (``tail=False``) or, when tailing, has been silent for ``idle_after``
(wall clock: a caught-up partition must not stall a live feed). Alignment covers the
partitions read by one process; with several Bytewax processes each aligns its own.

When tailing, a record stamped more than ``max_future`` after the wall clock (a tick dated
2100 stamped with its ``ts_event``) does not take part in alignment: otherwise its partition
would wait for the others to catch up with 2100, and a live feed never does. The record itself
flows on (validation dead-letters it). Replays (``tail=False``) use record times only.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.runtime import stopping
from flows.sources.bounded_kafka import BoundedPartition

Item = KafkaSourceMessage[Any, Any] | KafkaError[Any, Any]
NEVER = -(2**62)


def _ts_ms(item: Item) -> int | None:
    msg = item.msg if isinstance(item, KafkaError) else item
    stamp = msg.timestamp
    if stamp is None or stamp[0] == 0:  # TIMESTAMP_NOT_AVAILABLE
        return None
    return int(stamp[1])


def _offset(item: Item) -> int | None:
    msg = item.msg if isinstance(item, KafkaError) else item
    return msg.offset


@dataclass
class _Clock:
    """Progress of the partitions built in this process."""

    heads: dict[str, int | None] = field(default_factory=dict)  # next buffered record time
    last: dict[str, int] = field(default_factory=dict)  # last record time handed out
    done: set[str] = field(default_factory=set)
    idle: set[str] = field(default_factory=set)

    def limit(self, part: str) -> int | None:
        """Latest record time ``part`` may emit now (None: no other partition constrains)."""
        bound: int | None = None
        for other, head in self.heads.items():
            if other == part or other in self.done or other in self.idle:
                continue
            at = head if head is not None else self.last.get(other, NEVER)
            bound = at if bound is None else min(bound, at)
        return bound


class _AlignedPartition(StatefulSourcePartition[Item, Any]):
    def __init__(
        self,
        inner: StatefulSourcePartition[Item, Any],
        name: str,
        clock: _Clock,
        slack_ms: int,
        idle_after_s: float | None,
        future_ms: int | None = None,
    ) -> None:
        self._inner = inner
        self._future_ms = future_ms
        self._name = name
        self._clock = clock
        self._slack = slack_ms
        self._idle_after = idle_after_s
        self._buffer: deque[Item] = deque()
        self._empty_since: float | None = None
        clock.heads[name] = None

    def _refill(self) -> None:
        try:
            batch = self._inner.next_batch()
        except StopIteration:
            self._clock.done.add(self._name)
            self._clock.heads[self._name] = None
            raise
        self._buffer.extend(batch)
        if self._buffer:
            self._empty_since = None
            self._clock.idle.discard(self._name)
        elif self._idle_after is not None:
            now = time.monotonic()
            self._empty_since = self._empty_since or now
            if now - self._empty_since >= self._idle_after:
                self._clock.idle.add(self._name)

    def _stamp(self, item: Item) -> int | None:
        """The record time alignment uses (None: unstamped, or implausibly far in the future
        of the wall clock while tailing)."""
        ts = _ts_ms(item)
        if ts is not None and self._future_ms is not None:
            if ts > time.time() * 1000 + self._future_ms:
                return None
        return ts

    def next_batch(self) -> list[Item]:
        if stopping.requested():  # a graceful stop: end the input here (see flows.runtime.stopping)
            self._clock.done.add(self._name)
            raise StopIteration
        if not self._buffer:
            self._refill()
        out: list[Item] = []
        limit = self._clock.limit(self._name)
        bound = None if limit is None else limit + self._slack
        buffer, stamp, take = self._buffer, self._stamp, out.append  # hot loop: locals
        last = latest = self._clock.last.get(self._name, NEVER)
        while buffer:
            head = buffer[0]
            # a record's own time, inlined for the common case (a message, no future check)
            if type(head) is KafkaSourceMessage and self._future_ms is None:
                ts = head.timestamp[1] if head.timestamp and head.timestamp[0] else None
            else:
                ts = stamp(head)
            if ts is not None:
                if bound is not None and ts > bound:
                    break
                latest = max(latest, ts)
            take(buffer.popleft())
        if latest != last:
            self._clock.last[self._name] = latest
        self._clock.heads[self._name] = stamp(buffer[0]) if buffer else None
        return out

    def snapshot(self) -> Any:
        """The inner partition's resume offset, moved back to the first record not emitted
        (Bytewax stores it in the recovery store: a restart reads on from there); for a
        bounded partition (``--no-tail``) with its end."""
        for item in self._buffer:
            offset = _offset(item)
            if offset is not None:
                if isinstance(self._inner, BoundedPartition):
                    return self._inner.resume_at(offset)
                return offset
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class AlignedKafkaSource(FixedPartitionedSource[Item, Any]):
    """``KafkaSource`` (or ``BoundedKafkaSource``) with its partitions kept within ``slack``
    of each other in event time (record timestamps, which producers set to ``ts_event``)."""

    def __init__(
        self,
        inner: FixedPartitionedSource[Item, Any],
        *,
        tail: bool,
        slack: timedelta = timedelta(seconds=1),
        idle_after: timedelta = timedelta(seconds=1),
        max_future: timedelta = timedelta(minutes=5),
    ) -> None:
        self.inner = inner
        self.slack_ms = slack // timedelta(milliseconds=1)
        self.idle_after_s = idle_after.total_seconds() if tail else None
        self.future_ms = max_future // timedelta(milliseconds=1) if tail else None
        self._clock = _Clock()

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def input_partitions(self) -> list[int]:
        """Kafka partition numbers (parts are named ``"<partition>-<topic>"``): the inputs of
        the trading stage's input watermarks."""
        return [int(part.split("-", 1)[0]) for part in self.list_parts()]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _AlignedPartition:
        inner = self.inner.build_part(step_id, for_part, resume_state)
        return _AlignedPartition(
            inner, for_part, self._clock, self.slack_ms, self.idle_after_s, self.future_ms
        )
