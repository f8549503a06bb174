"""``AlignedKafkaSource`` over in-memory partitions (no broker): partitions advance together in
record time, ended or idle ones stop holding the others back, held records are resumed from,
and a flow over it on two workers delivers every record once, each partition in order."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, cluster_main, run_main

from flows.runtime import stopping
from flows.sources.aligned_kafka import AlignedKafkaSource
from flows.sources.bounded_kafka import BoundedPartition

Msg = KafkaSourceMessage[Any, Any]
T0 = int(datetime(2026, 7, 8, 3, 45, tzinfo=UTC).timestamp() * 1000)
SECOND = 1000


def msg(part: int, offset: int, at_ms: int | None) -> Msg:
    stamp = (1, at_ms) if at_ms is not None else (0, 0)  # (0, _): TIMESTAMP_NOT_AVAILABLE
    return KafkaSourceMessage(
        key=None, value=b"", partition=part, offset=offset, timestamp=stamp, topic="t"
    )


def records(part: int, seconds: range) -> list[Msg]:
    """One record a second of record time, offsets from 0."""
    return [msg(part, i, T0 + s * SECOND) for i, s in enumerate(seconds)]


class _Part(StatefulSourcePartition[Any, int]):
    """Hands out fixed batches (``[]``: nothing this poll), then ends (unless ``endless``)."""

    def __init__(self, batches: list[list[Msg]], endless: bool = False) -> None:
        self._batches: Iterator[list[Msg]] = iter(batches)
        self._endless = endless
        self.next_offset = 0

    def next_batch(self) -> list[Msg]:
        batch = next(self._batches, None)
        if batch is None:
            if self._endless:
                return []
            raise StopIteration
        if batch:
            self.next_offset = batch[-1].offset + 1  # type: ignore[operator]
        return batch

    def snapshot(self) -> int:
        return self.next_offset


class _Memory(FixedPartitionedSource[Any, int]):
    """Kafka-like partitions ``"<n>-t"`` held in memory."""

    def __init__(
        self,
        parts: dict[int, list[list[Msg]]],
        endless: frozenset[int] = frozenset(),
        bounded: bool = False,
    ) -> None:
        self.parts = parts
        self.endless = endless
        self.bounded = bounded  # each partition read through BoundedPartition (--no-tail)

    def list_parts(self) -> list[str]:
        return [f"{n}-t" for n in self.parts]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Any:
        n = int(for_part.split("-", 1)[0])
        part = _Part(self.parts[n], endless=n in self.endless)
        if self.bounded:
            return BoundedPartition(part, 0, sum(len(b) for b in self.parts[n]))
        return part


def _parts(source: AlignedKafkaSource) -> list[Any]:
    return [source.build_part("in", p, None) for p in source.list_parts()]


def _ts(batch: list[Any]) -> list[int]:
    return [(m.timestamp[1] - T0) // SECOND for m in batch]


# ------------------------------------------------------------------- one partition at a time
def test_a_partition_is_held_within_slack_of_the_slowest() -> None:
    """Partition 0 has a minute buffered at once, partition 1 ten seconds a poll: 0 may only
    run ``slack`` ahead of what 1 has handed out."""
    fast = records(0, range(60))
    slow = records(1, range(60))
    source = AlignedKafkaSource(
        _Memory({0: [fast], 1: [slow[i : i + 10] for i in range(0, 60, 10)]}), tail=False
    )
    p0, p1 = _parts(source)
    assert p0.next_batch() == []  # partition 1 has shown nothing yet: 0 waits
    assert _ts(p1.next_batch()) == [0, 1]  # 1 may run 1 s ahead of 0's head (t=0)
    # and 0 up to 1 s past the next record 1 holds (t=2)
    assert _ts(p0.next_batch()) == [0, 1, 2, 3]
    assert _ts(p1.next_batch()) == [2, 3, 4, 5]
    assert _ts(p0.next_batch()) == [4, 5, 6, 7]
    assert source.input_partitions() == [0, 1]


def test_an_ended_partition_no_longer_holds_the_others() -> None:
    source = AlignedKafkaSource(_Memory({0: [records(0, range(30))], 1: []}), tail=False)
    p0, p1 = _parts(source)
    assert p0.next_batch() == []  # 1 has not been polled: it might still hold t=0
    with pytest.raises(StopIteration):
        p1.next_batch()
    assert _ts(p0.next_batch()) == list(range(30))


def test_an_empty_partition_holds_the_others_in_a_replay_but_not_when_idle_in_a_live_run() -> None:
    def poll(tail: bool) -> list[int]:
        src = _Memory({0: [records(0, range(10))], 1: [records(1, range(1))]}, frozenset({1}))
        source = AlignedKafkaSource(src, tail=tail, idle_after=timedelta(0))
        p0, p1 = _parts(source)
        p0.next_batch()
        p1.next_batch()  # its one record (t=0)
        p1.next_batch()  # then nothing: idle at once when tailing (idle_after=0)
        return _ts(p0.next_batch())

    assert poll(tail=False) == [0, 1]  # a replay waits for partition 1's next record
    assert poll(tail=True) == list(range(10))


def test_unstamped_and_far_future_records_flow_on_without_moving_the_alignment() -> None:
    future = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
    batch = [msg(1, 0, T0 + SECOND), msg(1, 1, future), msg(1, 2, None)]
    source = AlignedKafkaSource(
        _Memory({0: [records(0, range(30))], 1: [batch]}, frozenset({1})),
        tail=True,
        idle_after=timedelta(hours=1),
    )
    p0, p1 = _parts(source)
    assert p0.next_batch() == []
    assert p1.next_batch() == batch  # the 2100 record is not held until 0 reaches 2100
    assert _ts(p0.next_batch()) == [0, 1, 2]  # ...nor does it release 0 beyond 1 s + slack


def test_the_snapshot_resumes_at_the_first_record_held_back() -> None:
    for bounded, expected in ((False, 2), (True, (2, 10))):
        src = _Memory(
            {0: [records(0, range(10))], 1: [records(1, range(1))]}, frozenset({1}), bounded
        )
        source = AlignedKafkaSource(src, tail=False)
        p0, p1 = _parts(source)
        p0.next_batch()
        p1.next_batch()
        assert _ts(p0.next_batch()) == [0, 1]
        # offsets 2.. were read from Kafka but not handed on; a bounded one keeps its end
        assert p0.snapshot() == expected


def test_a_requested_stop_ends_every_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    source = AlignedKafkaSource(_Memory({0: [records(0, range(5))]}), tail=True)
    (p0,) = _parts(source)
    monkeypatch.setattr(stopping, "requested", lambda: True)
    with pytest.raises(StopIteration):
        p0.next_batch()


# ------------------------------------------------------------------- in a flow, two workers
class _Logged(FixedPartitionedSource[Any, Any]):
    """Logs each batch as it leaves the aligned partition, atomically with the poll (a lock
    around it), so the log is the order in which the partitions handed records on."""

    def __init__(self, inner: AlignedKafkaSource) -> None:
        self.inner = inner
        self.log: list[Any] = []
        self.lock = threading.Lock()

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        part = self.inner.build_part(step_id, for_part, resume_state)
        outer = self

        class _P(StatefulSourcePartition[Any, Any]):
            def next_batch(self) -> list[Any]:
                with outer.lock:
                    batch = part.next_batch()
                    outer.log.extend(batch)
                    return batch

            def snapshot(self) -> Any:
                return part.snapshot()

        return _P()


def _backlog() -> dict[int, list[list[Msg]]]:
    """Four partitions with a minute each, polled in batches of 1, 5, 20 and 60 records."""
    return {
        n: [recs[i : i + size] for i in range(0, 60, size)]
        for n, size in enumerate((1, 5, 20, 60))
        for recs in [records(n, range(60))]
    }


def _lateness_s(log: list[Msg]) -> float:
    """How far behind the latest record handed on before it a record came, at worst."""
    ts = [m.timestamp[1] for m in log]  # type: ignore[index]
    latest = itertools.accumulate(ts, max)
    return max(prev - t for prev, t in zip(latest, ts, strict=True)) / SECOND


def _flow(source: FixedPartitionedSource[Any, Any], out: list[Any]) -> Dataflow:
    flow = Dataflow("aligned")
    stream = op.input("in", flow, source)
    picked: Stream[Any] = op.map("pick", stream, lambda m: (m.partition, m.offset))
    op.output("out", picked, TestingSink(out))
    return flow


@pytest.mark.parametrize("workers", [1, 2])
def test_a_flow_gets_every_record_once_in_partition_order_and_aligned(workers: int) -> None:
    logged = _Logged(AlignedKafkaSource(_Memory(_backlog()), tail=False))
    out: list[tuple[int, int]] = []
    flow = _flow(logged, out)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    assert sorted(out) == [(n, i) for n in range(4) for i in range(60)]
    for n in range(4):
        assert [o for p, o in out if p == n] == list(range(60))
    assert _lateness_s(logged.log) <= 1.0  # the slack
    # polled in turn without the wrapper, the 60-record partition's minute comes in one go
    raw = [
        _Memory(_backlog(), frozenset(range(4))).build_part("in", f"{n}-t", None) for n in range(4)
    ]
    unaligned: list[Msg] = []
    for _ in range(60):
        for part in raw:
            unaligned.extend(part.next_batch())
    assert len(unaligned) == 240
    assert _lateness_s(unaligned) > 30
