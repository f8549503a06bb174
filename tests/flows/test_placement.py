"""``flows.placement`` against a real multi-worker Bytewax flow: the worker a stateful step's
key runs on, and the worker that reads each partition of a partitioned source, are the ones
computed in Python (so an upgrade of Bytewax that changes its routing fails here)."""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, cluster_main

from flows.placement import Placement, key_worker, name_of, route_key


class _Recorder(DynamicSink[Any]):
    """Records (worker index, item): a sink partition writes on the worker it was built on."""

    def __init__(self, out: list[tuple[int, Any]]) -> None:
        self.out = out

    def build(self, step_id: str, worker_index: int, worker_count: int) -> Any:
        out = self.out

        class _Part(StatelessSinkPartition[Any]):
            def write_batch(self, items: list[Any]) -> None:
                out.extend((worker_index, x) for x in items)

        return _Part()


class _Part(StatefulSourcePartition[str, None]):
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False

    def next_batch(self) -> list[str]:
        if self.done:
            raise StopIteration
        self.done = True
        return [self.name]

    def snapshot(self) -> None:
        return None


class _Parts(FixedPartitionedSource[str, None]):
    """Every worker lists every partition, as Kafka's source does."""

    def __init__(self, n: int) -> None:
        self.n = n

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self.n)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Part:
        return _Part(for_part)


KEYS = [f"k{i}" for i in range(40)] + ["NIFTY", "BANKNIFTY", "26000", "0", "1", "paper"]


@pytest.mark.parametrize("workers", [2, 3])
def test_a_key_runs_on_the_worker_computed_for_it(workers: int) -> None:
    placed = [route_key(name, i % workers, workers) for i, name in enumerate(["NIFTY", "a", "b"])]
    keys = KEYS + placed
    out: list[tuple[int, Any]] = []
    flow = Dataflow("probe")
    stream = op.input("in", flow, TestingSource(keys))
    keyed = op.key_on("key", stream, lambda k: k)
    seen = op.stateful_map("seen", keyed, lambda s, k: (s, k))
    op.output("out", seen, _Recorder(out))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    got = {k: w for w, (k, _) in out}
    assert got == {k: key_worker(k, workers) for k in keys}
    assert len(set(got.values())) == workers  # the hash does spread keys
    assert [got[k] for k in placed] == [i % workers for i in range(3)]
    assert [name_of(k) for k in placed] == ["NIFTY", "a", "b"]


@pytest.mark.parametrize(("workers", "parts"), [(2, 4), (2, 12), (3, 4)])
def test_a_source_partition_is_read_on_the_worker_computed_for_it(workers: int, parts: int) -> None:
    out: list[tuple[int, Any]] = []
    flow = Dataflow("probe_parts")
    stream = op.input("in", flow, _Parts(parts))
    op.output("out", stream, _Recorder(out))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    placement = Placement(workers, [str(p) for p in range(parts)])
    want = [(placement.source_worker(int(p)), p) for p in map(str, range(parts))]
    assert sorted(out) == sorted(want)


def test_one_worker_keeps_plain_keys() -> None:
    p = Placement(1, ["0", "1", "2", "3"], ["NIFTY"], ["a"])
    assert (p.partition_key(3), p.token_key("26000", 3)) == ("3", "26000")
    assert (p.underlying_key("NIFTY"), p.account_key("a")) == ("NIFTY", "a")
    two = Placement(2, [f"{i}-ticks" for i in range(4)], ["BANKNIFTY", "NIFTY"], ["a", "b"])
    assert two.workers_of() == {"BANKNIFTY": 0, "NIFTY": 1, "a": 0, "b": 1}
    assert [name_of(two.account_key(a)) for a in "ab"] == ["accounts", "accounts"]
    assert [key_worker(two.account_key(a), 2) for a in "ab"] == [0, 1]
    # three underlyings, four accounts: the worker with one strategy stage takes more accounts
    busy = Placement(2, ["0", "1"], ["BANKNIFTY", "FINNIFTY", "NIFTY"], ["u0", "u1", "u2", "u3"])
    assert busy.workers_of() == {"BANKNIFTY": 0, "FINNIFTY": 1, "NIFTY": 0,
                                 "u0": 1, "u1": 1, "u2": 0, "u3": 1}  # fmt: skip
    assert two.token_key("26000", None) == "26000"  # a replay's tick: partition unknown
    assert [key_worker(two.token_key("26000", p), 2) for p in range(4)] == [0, 1, 0, 1]
    assert [key_worker(two.partition_key(p), 2) for p in range(4)] == [0, 1, 0, 1]


def test_a_tokens_ticks_and_expiry_keep_its_partitions_worker() -> None:
    from datetime import UTC, datetime

    from flows.market import group_parsed_by_token
    from operators.events import Tick
    from operators.market.expiry import InstrumentExpired

    at = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)
    tick = Tick(ts_event=at, ts_recv=at, token="4711", exchange="NFO", ltp=100)
    two = Placement(2, ["0", "1", "2", "3"], ["NIFTY"], ["a"])
    part = two.partition_key(3)
    out = group_parsed_by_token(
        [(part, (3, 0.0, tick)), (part, InstrumentExpired("4711", at))], two
    )
    assert [k for k, _ in out] == [two.token_key("4711", 3)] * 2
    assert key_worker(out[0][0], 2) == key_worker(part, 2) == 1
