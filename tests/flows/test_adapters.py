"""``flows.adapters`` in real Bytewax flows (``TestingSource``, one and two workers): per-key
state, the after-batch hook, the end-of-input flush, recovery from a snapshot after an abort,
the graceful stop that keeps state, the live heartbeat, and the batch-wise plumbing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from flows import adapters
from flows.adapters import key_by, of_type, run_keyed, values
from flows.runtime import stopping


@dataclass
class Sums:
    total: int = 0
    seen: list[int] = field(default_factory=list)


class RunningSum:
    """A keyed logic: the running sum per key, a marker after each batch, the total at EOF."""

    def new_state(self) -> Sums:
        return Sums()

    def on_item(self, state: Sums, item: tuple[str, int]) -> Iterable[Any]:
        state.total += item[1]
        state.seen.append(item[1])
        return [("sum", item[0], state.total)]

    def after_batch(self, state: Sums) -> Iterable[Any]:
        return [("batch", state.total)]

    def on_eof(self, state: Sums) -> Iterable[Any]:
        return [("eof", state.total, len(state.seen))]


def _flow(
    inp: list[Any],
    out: list[Any],
    batch_size: int = 1,
    logic_for: Callable[[], Any] = RunningSum,
    **kw: Any,
) -> Dataflow:
    """``inp`` keyed by its first field through ``run_keyed`` (``kw``: its options) into ``out``."""
    flow = Dataflow("adapters")
    stream = op.input("in", flow, TestingSource(inp, batch_size=batch_size))
    keyed = key_by("key", stream, lambda kv: kv[0])
    summed = run_keyed("sum", keyed, logic_for, **kw)
    op.output("out", summed, TestingSink(out))
    return flow


def _run(flow: Dataflow, workers: int) -> None:
    """One worker in this thread, or ``workers`` of them in one process."""
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)


ITEMS = [("a", 1), ("b", 10), ("a", 2), ("b", 20), ("a", 3)]


@pytest.mark.parametrize("workers", [1, 2])
def test_state_is_kept_per_key_and_flushed_at_the_end(workers: int) -> None:
    out: list[Any] = []
    _run(_flow(ITEMS, out), workers)
    sums = {k: [v[2] for k2, v in out if k2 == k and v[0] == "sum"] for k in "ab"}
    assert sums == {"a": [1, 3, 6], "b": [10, 30]}
    eofs = sorted((k, v) for k, v in out if v[0] == "eof")
    assert eofs == [("a", ("eof", 6, 3)), ("b", ("eof", 30, 2))]
    # one marker per batch a key received, after its items: one per item on one worker
    # (batch_size=1); items exchanged between two workers may arrive batched together
    marks = {k: [v[1] for k2, v in out if k2 == k and v[0] == "batch"] for k in "ab"}
    assert all(marks[k] and set(marks[k]) <= set(sums[k]) and marks[k][-1] == sums[k][-1]
               for k in "ab")  # fmt: skip
    if workers == 1:
        assert sum(map(len, marks.values())) == len(ITEMS)


def test_a_batch_is_stepped_whole_then_marked_once() -> None:
    out: list[Any] = []
    run_main(_flow([("a", 1), ("a", 2), ("a", 3)], out, batch_size=3))
    assert [v for _, v in out] == [
        ("sum", "a", 1),
        ("sum", "a", 3),
        ("sum", "a", 6),
        ("batch", 6),
        ("eof", 6, 3),
    ]


def test_a_run_aborted_midway_resumes_from_its_snapshot(tmp_path: Path) -> None:
    """The state snapshotted at the last epoch is restored: the resumed run continues the sums
    as if uninterrupted (snapshot is a deep copy, so later items do not leak into it)."""
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    inp: list[Any] = [("a", 1), ("a", 2), TestingSource.ABORT(), ("a", 3), ("a", 4)]
    out: list[Any] = []
    flow = _flow(inp, out)
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)  # stops at the abort
    first = [v for _, v in out]
    assert ("sum", "a", 3) in first
    assert not any(v[0] == "eof" for v in first)
    out.clear()
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    sums = [v[2] for _, v in out if v[0] == "sum"]
    assert sums[-2:] == [6, 10]
    assert out[-1][1] == ("eof", 10, 4)


def test_a_requested_stop_keeps_the_state_instead_of_flushing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stopping, "requested", lambda: True)
    out: list[Any] = []
    run_main(_flow(ITEMS, out))
    assert [v for _, v in out if v[0] == "sum"]
    assert not [v for _, v in out if v[0] == "eof"]


class Ticking(RunningSum):
    """``RunningSum`` with a heartbeat hook that records when it was called."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []

    def on_wall_clock(self, state: Sums, now: datetime) -> Iterable[Any]:
        self.calls.append(now)
        return [("heartbeat", state.total)]


def test_the_heartbeat_calls_on_wall_clock_while_the_input_is_quiet() -> None:
    logic = Ticking()
    out: list[Any] = []
    pause = TestingSource.PAUSE(timedelta(milliseconds=300))
    heartbeat = timedelta(milliseconds=20)
    run_main(_flow([("a", 1), pause, ("a", 2)], out, logic_for=lambda: logic, heartbeat=heartbeat))
    beats = [v for _, v in out if v[0] == "heartbeat"]
    assert beats
    assert beats[0] == ("heartbeat", 1)  # during the pause: after item 1, before item 2
    assert logic.calls == sorted(logic.calls)
    assert all(c.tzinfo is not None for c in logic.calls)


def test_without_a_heartbeat_the_output_depends_on_data_only() -> None:
    logic = Ticking()
    out: list[Any] = []
    pause = TestingSource.PAUSE(timedelta(milliseconds=100))
    run_main(_flow([("a", 1), pause, ("a", 2)], out, logic_for=lambda: logic))
    assert logic.calls == []
    assert [v for _, v in out] == [("sum", "a", 1), ("batch", 1), ("sum", "a", 3), ("batch", 3),
                                   ("eof", 3, 2)]  # fmt: skip


def test_the_clock_offset_shifts_the_heartbeats_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "CLOCK_OFFSET", timedelta(hours=5))
    shifted = adapters.wall_now()
    monkeypatch.setattr(adapters, "CLOCK_OFFSET", timedelta(0))
    assert timedelta(hours=4, minutes=59) < shifted - adapters.wall_now() <= timedelta(hours=5)


@pytest.mark.parametrize("workers", [1, 2])
def test_values_and_of_type_keep_order_and_drop_keys(workers: int) -> None:
    out: list[Any] = []
    flow = Dataflow("plumbing")
    stream = op.input("in", flow, TestingSource([1, "x", 2.5, 3, "y", 4], batch_size=4))
    ints = of_type("ints", stream, int)
    keyed = key_by("key", ints, lambda i: "even" if i % 2 == 0 else "odd")
    op.output("out", values("values", keyed), TestingSink(out))
    _run(flow, workers)
    assert out == [1, 3, 4]  # 2.5 is no int; one TestingSource partition: order kept
