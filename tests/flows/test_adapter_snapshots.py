"""``run_keyed`` snapshots: pickled once into immutable bytes (issue 19: ``copy.deepcopy`` of
every touched key's state at each epoch end held a live flow's thread for seconds), detached
from the live state, and resumable by Bytewax after a crash, also from a store written
before (the state object itself)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.adapters import _Adapter, _resumed, _Snapshot, run_keyed


class RunningSum:
    """Keyed logic whose state is a mutable list: the running sums so far."""

    def new_state(self) -> list[int]:
        return []

    def on_item(self, state: list[int], item: int) -> Iterable[int]:
        state.append((state[-1] if state else 0) + item)
        return [state[-1]]

    def on_eof(self, state: list[int]) -> Iterable[int]:
        return []


def test_a_snapshot_is_detached_from_the_live_state() -> None:
    logic = RunningSum()
    adapter: _Adapter[list[int], int, int] = _Adapter(logic, logic.new_state())
    adapter.on_batch([1, 2])
    snap = adapter.snapshot()
    adapter.on_batch([10])  # the live state moves on after the epoch end
    assert isinstance(snap, _Snapshot)
    assert _resumed(snap) == [1, 3]
    assert adapter.state == [1, 3, 13]


def test_a_legacy_snapshot_resumes_as_it_is() -> None:
    """A store written before snapshots were bytes holds the state object itself."""
    assert _resumed([1, 3]) == [1, 3]
    assert _resumed(b"raw") == b"raw"  # plain bytes are a state, not a _Snapshot


def _flow(items: list[Any], out: list[Any]) -> Dataflow:
    flow = Dataflow("adapters_recovery")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(items)), lambda _: "k")
    sums = run_keyed("sum", keyed, RunningSum)
    op.output("out", op.map("value", sums, lambda kv: kv[1]), TestingSink(out))
    return flow


def test_bytewax_resumes_a_keyed_step_from_its_pickled_snapshot(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    items: list[Any] = [1, 2, TestingSource.EOF(), 10, TestingSource.ABORT(), 100]
    out: list[int] = []
    run_main(_flow(items, out), epoch_interval=timedelta(0), recovery_config=recovery)
    assert out == [1, 3]  # stopped at the EOF: the epoch of 1 and 2 is snapshotted
    run_main(_flow(items, out), epoch_interval=timedelta(0), recovery_config=recovery)
    assert out == [1, 3, 13]  # resumed from the sum 3, then a crash (ABORT)
    out.clear()
    run_main(_flow(items, out), epoch_interval=timedelta(0), recovery_config=recovery)
    assert out == [113]  # resumed from the snapshot that holds the sums 1, 3, 13
