"""Kafka replay: read a time range of a topic and merge its partitions deterministically.

Why one module (~600 lines): offset planning, the deterministic partition merge and the
Bytewax source share one snapshot format and one determinism contract, read here in one place.

Producers set every record's Kafka timestamp to its ``ts_event`` (DESIGN invariant 9), so a
time range ``[start, end)`` becomes, per partition, an offset range found with
``offsets_for_times``: from the first record at or after ``start`` to the first record at or
after ``end`` (or the end of the partition). Records whose timestamp falls outside the range
are dropped, so the range is honoured even when timestamps are slightly out of order.

Merge order. Records leave in order of ``(timestamp, key, partition, offset)``:

- a k-way merge (a heap holding one head per partition) orders partitions by timestamp;
- within one partition a *run* of records with the same millisecond timestamp is sorted by
  ``(key, offset)`` before it is merged.

That refines DESIGN's ``(ts_event, partition, offset)`` so the order does not depend on the
partition count, which the partition-independence test requires: equal timestamps are common
at millisecond resolution, and ``(partition, offset)`` alone would order two such records
one way in a 1-partition topic and another way in a 6-partition one. A key always maps to
one partition, so for equal ``(timestamp, key)`` the offset order is the production order in
any topic. (Keyless records with equal timestamps keep only a per-topic order.)

Memory stays bounded: each partition has its own consumer, read only when the merge needs
that partition's next record, so it buffers at most ``buffer_size`` records plus, at worst,
the longest run of equal timestamps in it; librdkafka's per-consumer prefetch is capped too.
(One consumer per partition, rather than one paused and resumed, because a resumed
partition costs a fetch round trip each time: ten times slower here.)

:class:`KafkaReplaySource` wraps the reader as a single-partition Bytewax
``FixedPartitionedSource`` emitting :class:`ReplayRecord` batches, resumable from snapshots.
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing
import queue
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from connectors.errors import ConnectorError

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SNAPSHOT_VERSION = 1


class ReplayError(ConnectorError, RuntimeError):
    """The replay cannot start or cannot go on (no such topic, broker gone)."""


class ReplayRecord(NamedTuple):
    """One replayed record: ``(key, value, partition, offset, timestamp_ms, topic)``.

    The flow's parser reads it directly (like a live ``KafkaSourceMessage``: ``key``,
    ``value``, ``topic``, ``partition``, ``offset``) so a replay builds no second object per
    record.
    """

    key: bytes | None
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int
    topic: str = ""

    @property
    def ts(self) -> datetime:
        """The Kafka timestamp (= ts_event, to the millisecond) as an aware UTC datetime."""
        return EPOCH + timedelta(milliseconds=self.timestamp_ms)


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    if ts.tzinfo is None:
        msg = f"replay bounds must be timezone-aware, got {ts!r}"
        raise ValueError(msg)
    return (ts - EPOCH) // timedelta(milliseconds=1)


def _sort_key(rec: ReplayRecord) -> tuple[int, bytes, int, int]:
    return (rec.timestamp_ms, rec.key or b"", rec.partition, rec.offset)


# A partition's resume position: (lowest offset not yet emitted, end offset, offsets above
# the lowest that were already emitted). Whole snapshot: {"v": 1, "parts": {p: position}}.
PartPosition = tuple[int, int, tuple[int, ...]]
ReplaySnapshot = dict[str, Any]


@dataclass
class _Part:
    partition: int
    start: int
    end: int
    skip: frozenset[int] = frozenset()
    raw: deque[ReplayRecord] = field(default_factory=deque)
    ready: deque[ReplayRecord] = field(default_factory=deque)
    emitted_in_run: set[int] = field(default_factory=set)
    next_fetch: int = 0
    fetched_all: bool = False

    def __post_init__(self) -> None:
        self.next_fetch = self.start
        self.fetched_all = self.start >= self.end

    @property
    def exhausted(self) -> bool:
        return self.fetched_all and not self.raw and not self.ready

    def form_run(self) -> bool:
        """Move the next complete run of equal timestamps from ``raw`` to ``ready``, sorted.

        Returns True when ``ready`` has a record. A run at the end of the buffer may still
        continue in data not fetched yet, so it is only taken once fetching is finished.
        """
        if self.ready:
            return True
        raw = self.raw
        if not raw:
            return False
        if len(raw) > 1 and raw[1].timestamp_ms != raw[0].timestamp_ms:  # a run of one
            self.ready.append(raw.popleft())
            self.emitted_in_run.clear()
            return True
        t0 = self.raw[0].timestamp_ms
        n = 0
        for rec in self.raw:
            if rec.timestamp_ms != t0:
                break
            n += 1
        else:
            if not self.fetched_all:
                return False
        run = sorted((self.raw.popleft() for _ in range(n)), key=_sort_key)
        self.ready.extend(run)
        self.emitted_in_run.clear()
        return True

    def position(self) -> PartPosition:
        if self.ready:
            low = min(r.offset for r in self.ready)
        elif self.raw:
            low = self.raw[0].offset
        else:
            low = self.end if self.fetched_all else self.next_fetch
        skip = tuple(sorted(o for o in self.emitted_in_run if o > low))
        return (low, self.end, skip)


class KafkaReplay:
    """Iterate the records of ``topic`` with timestamps in ``[start, end)`` in merge order.

    >>> for rec in KafkaReplay("127.0.0.1:9092", "md.ticks", t0, t1):  # doctest: +SKIP
    ...     key, value, partition, offset, ts_ms, topic = rec

    ``resume`` is a :meth:`snapshot` taken from an earlier reader over the same range; the
    new reader continues exactly after the last record the old one emitted.
    """

    def __init__(
        self,
        brokers: str,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        buffer_size: int = 2_000,
        resume: ReplaySnapshot | None = None,
        config: Mapping[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if buffer_size < 1:
            msg = f"buffer_size must be ≥ 1, got {buffer_size}"
            raise ValueError(msg)
        self.brokers = brokers
        self.topic = topic
        self.start_ms = to_ms(start)
        self.end_ms = to_ms(end)
        if self.end_ms < self.start_ms:
            msg = f"replay range ends before it starts: {start} .. {end}"
            raise ValueError(msg)
        self.buffer_size = buffer_size
        self.timeout_s = timeout_s
        conf: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "group.id": "scalpflow-replay",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            # Bound librdkafka's own prefetch so memory stays small whatever the topic size.
            "queued.max.messages.kbytes": 4_096,
            "queued.min.messages": max(buffer_size, 1_000),
            # librdkafka ≥ 2.2 backs a partition off for 1 s once its prefetch queue is full;
            # a replay drains queues quickly, so that default made it 20× slower here.
            "fetch.queue.backoff.ms": 5,
            # History does not grow: do not let the broker hold a fetch open waiting for more.
            "fetch.wait.max.ms": 50,
        }
        conf.update(config or {})
        self._conf = conf
        self._consumers: dict[int, Consumer] = {}
        self._closed = False
        meta = Consumer(conf)
        try:
            self._parts = self._plan(meta, resume)
        finally:
            meta.close()
        self._by_partition = {p.partition: p for p in self._parts}
        self._heap: list[tuple[tuple[int, bytes, int, int], int]] = []
        self._started = False
        self.emitted = 0
        self.peak_buffered = 0  # most records held by one partition at once (memory bound)

    # ----- planning ----------------------------------------------------------------------

    def _partitions(self, meta: Consumer) -> list[int]:
        try:
            listing = meta.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            msg = f"Kafka at {self.brokers} did not answer: {exc}"
            raise ReplayError(msg) from exc
        topic = listing.topics.get(self.topic)
        if topic is None or topic.error is not None:
            msg = f"topic {self.topic!r} does not exist at {self.brokers}"
            raise ReplayError(msg)
        return sorted(topic.partitions)

    def _offsets_at(self, meta: Consumer, partitions: list[int], ts_ms: int) -> dict[int, int]:
        """First offset with timestamp ≥ ts_ms per partition (the high watermark if none)."""
        tps = [TopicPartition(self.topic, p, ts_ms) for p in partitions]
        try:
            found = meta.offsets_for_times(tps, timeout=self.timeout_s)
        except KafkaException as exc:
            msg = f"offsets_for_times failed on {self.topic!r}: {exc}"
            raise ReplayError(msg) from exc
        out: dict[int, int] = {}
        for tp in found:
            if tp.error is not None:
                msg = f"offsets_for_times failed on {self.topic}[{tp.partition}]: {tp.error}"
                raise ReplayError(msg)
            if tp.offset < 0:  # no record at or after ts: the end of the partition
                _, high = meta.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=self.timeout_s
                )
                out[tp.partition] = high
            else:
                out[tp.partition] = tp.offset
        return out

    def _plan(self, meta: Consumer, resume: ReplaySnapshot | None) -> list[_Part]:
        partitions = self._partitions(meta)
        if resume:  # {} = taken before anything was emitted (a prefetching partition's)
            if resume.get("v") != SNAPSHOT_VERSION:
                msg = f"unsupported replay snapshot version {resume.get('v')!r}"
                raise ReplayError(msg)
            saved: Mapping[Any, Any] = resume["parts"]
            parts = []
            for p in partitions:
                low, end, skip = saved[str(p)] if str(p) in saved else saved[p]
                parts.append(_Part(p, int(low), int(end), frozenset(int(o) for o in skip)))
            return parts
        starts = self._offsets_at(meta, partitions, self.start_ms)
        ends = self._offsets_at(meta, partitions, self.end_ms)
        return [_Part(p, starts[p], max(starts[p], ends[p])) for p in partitions]

    @property
    def plan(self) -> dict[int, tuple[int, int]]:
        """Partition → [first offset, end offset) this reader covers."""
        return {p.partition: (p.start, p.end) for p in self._parts}

    # ----- fetching ----------------------------------------------------------------------

    def _assign(self) -> None:
        for part in self._parts:
            if not part.fetched_all:
                consumer = Consumer(self._conf)
                consumer.assign([TopicPartition(self.topic, part.partition, part.start)])
                self._consumers[part.partition] = consumer

    def _fetch(self, part: _Part) -> None:
        """Read the next records of ``part`` (the merge is waiting for them)."""
        consumer = self._consumers[part.partition]
        # Take whatever is queued without waiting; only when nothing is there, wait for the
        # first record (consume() with a timeout would wait for a *full* batch).
        msgs = consumer.consume(num_messages=self.buffer_size, timeout=0)
        if not msgs:
            one = consumer.poll(0.2)
            msgs = [one] if one is not None else []
        # The common record (no error, inside the offset range, not the partition's last)
        # is handled inline; anything else goes through ``_route``.
        p, end, skip, raw = part.partition, part.end, part.skip, part.raw
        lo, hi, topic = self.start_ms, self.end_ms, self.topic
        for msg in msgs:
            offset = msg.offset()
            if (
                offset is None
                or offset + 1 >= end
                or part.fetched_all
                or msg.error() is not None
                or msg.partition() != p
            ):
                self._route(msg)
                continue
            part.next_fetch = offset + 1
            if offset in skip:
                continue
            ts_ms = msg.timestamp()[1]
            if lo <= ts_ms < hi:
                raw.append(ReplayRecord(msg.key(), msg.value() or b"", p, offset, ts_ms, topic))
        self.peak_buffered = max(self.peak_buffered, len(part.raw) + len(part.ready))
        if part.fetched_all:
            self._consumers.pop(part.partition).close()

    def _route(self, msg: Message) -> None:
        part = self._by_partition.get(msg.partition() or 0)
        if part is None or part.fetched_all:
            return
        offset = msg.offset()
        offset = -1 if offset is None else offset
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                if offset >= part.end:
                    self._finish(part)
                return
            text = f"replay of {self.topic}[{part.partition}] failed: {err}"
            raise ReplayError(text)
        if offset >= part.end:
            self._finish(part)
            return
        part.next_fetch = offset + 1
        if offset + 1 >= part.end:
            self._finish(part)
        if offset in part.skip:
            return
        _, ts_ms = msg.timestamp()
        if not self.start_ms <= ts_ms < self.end_ms:
            return
        value = msg.value() or b""
        part.raw.append(ReplayRecord(msg.key(), value, part.partition, offset, ts_ms, self.topic))
        self.peak_buffered = max(self.peak_buffered, len(part.raw) + len(part.ready))

    def _finish(self, part: _Part) -> None:
        if part.fetched_all:
            return
        part.fetched_all = True
        part.next_fetch = part.end

    def _head(self, part: _Part) -> None:
        """Make sure ``part`` has its next record on the heap (fetching as needed)."""
        if part.form_run():  # the common case: the record is already buffered
            rec = part.ready[0]
            heapq.heappush(self._heap, (_sort_key(rec), part.partition))
            return
        waited_since = time.monotonic()
        while not part.form_run():
            if part.exhausted:
                return
            before = (part.next_fetch, part.fetched_all)
            self._fetch(part)
            if (part.next_fetch, part.fetched_all) != before:
                waited_since = time.monotonic()
            elif time.monotonic() - waited_since > self.timeout_s:
                msg = (
                    f"replay of {self.topic}[{part.partition}] stalled at offset "
                    f"{part.next_fetch} (end {part.end}) for {self.timeout_s:.0f}s"
                )
                raise ReplayError(msg)
        rec = part.ready[0]
        heapq.heappush(self._heap, (_sort_key(rec), part.partition))

    # ----- iteration ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReplayRecord]:
        if self._started:
            msg = "a KafkaReplay can be iterated once; build a new one (or resume)"
            raise ReplayError(msg)
        self._started = True
        self._assign()
        try:
            for part in self._parts:
                self._head(part)
            heap, by_partition = self._heap, self._by_partition
            while heap:
                p = heap[0][1]
                part = by_partition[p]
                ready = part.ready
                rec = ready.popleft()
                part.emitted_in_run.add(rec.offset)
                self.emitted += 1
                yield rec
                if ready:  # the common case: the partition's next record is at hand
                    heapq.heapreplace(heap, (_sort_key(ready[0]), p))
                else:
                    heapq.heappop(heap)
                    self._head(part)
        finally:
            self.close()

    def snapshot(self) -> ReplaySnapshot:
        """Where to resume so the next record is the one after the last emitted."""
        return {
            "v": SNAPSHOT_VERSION,
            "parts": {str(p.partition): list(p.position()) for p in self._parts},
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for consumer in self._consumers.values():
                consumer.close()
            self._consumers.clear()


def replay(
    brokers: str, topic: str, start: datetime, end: datetime, **kwargs: Any
) -> Iterator[ReplayRecord]:
    """Shorthand: iterate :class:`KafkaReplay` over ``[start, end)``."""
    return iter(KafkaReplay(brokers, topic, start, end, **kwargs))


class _ReplayPartition(StatefulSourcePartition[ReplayRecord, ReplaySnapshot]):
    def __init__(self, reader: KafkaReplay, batch_size: int) -> None:
        self._reader = reader
        self._it = iter(reader)
        self._batch_size = batch_size
        self._snapshot = reader.snapshot()

    def next_batch(self) -> list[ReplayRecord]:
        batch = list(islice(self._it, self._batch_size))
        if not batch:
            raise StopIteration
        self._snapshot = self._reader.snapshot()
        return batch

    def snapshot(self) -> ReplaySnapshot:
        return self._snapshot

    def close(self) -> None:
        self._reader.close()


def _prefetch_worker(
    out: Any,
    reader_args: tuple[str, str, datetime, datetime],
    reader_kwargs: dict[str, Any],
    batch_size: int,
) -> None:
    """Child process of :class:`_PrefetchPartition`: read and merge, queue batches.

    Each message is ``("batch", records, snapshot)``, then ``("end", snapshot)``; a failure
    is ``("error", text)``. The queue is bounded (``PREFETCH_BATCHES``): ``put`` waits while
    the flow is that many batches behind, so memory stays bounded.
    """
    try:
        reader = KafkaReplay(*reader_args, **reader_kwargs)
        records = iter(reader)
        while True:
            batch = list(islice(records, batch_size))
            if not batch:
                out.put(("end", reader.snapshot()))
                break
            out.put(("batch", batch, reader.snapshot()))
    except Exception as exc:  # reported to the parent, which raises it as a ReplayError
        out.put(("error", str(exc) if isinstance(exc, ReplayError) else repr(exc)))
    out.close()
    out.join_thread()


PREFETCH_BATCHES = 8
PIPE_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def _widen_pipe(q: Any) -> None:
    """Let the queue's pipe hold a few whole batches (~300 KB each; a pipe holds 64 KB by
    default), so the flow reads a batch in one go instead of waiting for the child to be
    scheduled again after every 64 KB. Best effort: where it cannot be widened it still works.
    """
    try:
        import fcntl

        fcntl.fcntl(q._reader.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, AttributeError, ImportError):
        log.debug("could not widen the replay prefetch pipe", exc_info=True)


class _PrefetchPartition(StatefulSourcePartition[ReplayRecord, ReplaySnapshot]):
    """Reads and merges in a child process while the flow works on earlier batches.

    The merge is pure Python at ~2 µs a record, about a tenth of a replay's single-core time;
    in another process it overlaps with the flow, which only unpickles batches (~0.5 µs a
    record). The records, their order and the snapshots are those of
    :class:`_ReplayPartition`: the child runs the same :class:`KafkaReplay`.
    """

    def __init__(
        self,
        reader_args: tuple[str, str, datetime, datetime],
        reader_kwargs: dict[str, Any],
        batch_size: int,
    ) -> None:
        resume = reader_kwargs.get("resume")
        self._snapshot: ReplaySnapshot = resume if resume is not None else {}
        self._done = False
        ctx = multiprocessing.get_context("spawn")  # no fork: librdkafka and Bytewax threads
        self._queue = ctx.Queue(maxsize=PREFETCH_BATCHES)
        _widen_pipe(self._queue)
        self._proc = ctx.Process(
            target=_prefetch_worker,
            args=(self._queue, reader_args, reader_kwargs, batch_size),
            name="scalpflow-replay-prefetch",
            daemon=True,
        )
        self._proc.start()

    def next_batch(self) -> list[ReplayRecord]:
        if self._done:
            raise StopIteration
        while True:
            try:
                message = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._proc.is_alive():
                    msg = f"the replay reader process died (exit code {self._proc.exitcode})"
                    raise ReplayError(msg) from None
        kind = message[0]
        if kind == "batch":
            self._snapshot = message[2]
            batch: list[ReplayRecord] = message[1]
            return batch
        self.close()
        if kind == "end":
            self._snapshot = message[1]
            self._done = True
            raise StopIteration
        raise ReplayError(message[1])

    def snapshot(self) -> ReplaySnapshot:
        return self._snapshot

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()  # stopped early: the rest of the reading is not wanted
        self._proc.join()
        self._queue.close()
        self._queue.cancel_join_thread()


@dataclass
class KafkaReplaySource(FixedPartitionedSource[ReplayRecord, ReplaySnapshot]):
    """Bytewax input over :class:`KafkaReplay`: one input partition (the merge is global,
    so a single reader owns it), items are :class:`ReplayRecord`, batches of ``batch_size``.
    With ``prefetch`` (the default) the reader runs in a child process, a batch ahead.

    Decode and key the records downstream exactly as the live Kafka input's are, so the same
    flow runs live and in replay.
    """

    brokers: str
    topic: str
    start: datetime
    end: datetime
    _: KW_ONLY
    batch_size: int = 1_000
    buffer_size: int = 2_000
    config: Mapping[str, Any] = field(default_factory=dict)
    prefetch: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            msg = f"batch_size must be ≥ 1, got {self.batch_size}"
            raise ValueError(msg)
        self.config = dict(self.config)
        to_ms(self.start)  # validate bounds early
        to_ms(self.end)

    def list_parts(self) -> list[str]:
        return [f"replay:{self.topic}"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: ReplaySnapshot | None
    ) -> _ReplayPartition | _PrefetchPartition:
        args = (self.brokers, self.topic, self.start, self.end)
        kwargs: dict[str, Any] = {
            "buffer_size": self.buffer_size,
            "resume": resume_state,
            "config": self.config,
        }
        if self.prefetch:
            return _PrefetchPartition(args, kwargs, self.batch_size)
        return _ReplayPartition(KafkaReplay(*args, **kwargs), self.batch_size)
