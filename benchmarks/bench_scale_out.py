"""1 vs N Bytewax processes on the whole pipeline with an in-memory source and a null sink
(issue 19, item 4): what the dataflow itself costs and gains across processes, without the
broker and the database competing for the same two cores.

    .venv/bin/python -m benchmarks.bench_scale_out --minutes 30 --partitions 4 --processes 1 2

A synthetic session is generated once (pickled to a temporary file); every process loads it and
reads only its own partitions (keys hashed to partitions as Kafka's producer would), as
``KafkaSourceMessage`` records, so the trading stages use input watermarks as in a live run.
Outputs go to a sink that drops them. Wall time is spawn to exit of all processes (start-up
included, the same for every N).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import tempfile
import time
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from benchmarks._common import worker_commands
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from flows.market import market_stage
from flows.pipeline import PipelineConfig
from flows.trading import trading_stage

ENV = "SCALPFLOW_BENCH_SCALE"
Raw = tuple[bytes, bytes, int]  # key, value, timestamp ms


class _Partition(StatefulSourcePartition[KafkaSourceMessage[bytes, bytes], int]):
    def __init__(self, records: list[Raw], partition: int, resume: int | None, batch: int) -> None:
        self.records = records
        self.partition = partition
        self.at = resume or 0
        self.batch = batch

    def next_batch(self) -> list[KafkaSourceMessage[bytes, bytes]]:
        if self.at >= len(self.records):
            raise StopIteration
        chunk = self.records[self.at : self.at + self.batch]
        start = self.at
        self.at += len(chunk)
        return [
            KafkaSourceMessage(
                key=k, value=v, partition=self.partition, offset=start + i, timestamp=(1, ts)
            )
            for i, (k, v, ts) in enumerate(chunk)
        ]

    def snapshot(self) -> int:
        return self.at


class MemorySource(FixedPartitionedSource[KafkaSourceMessage[bytes, bytes], int]):
    """Records split over ``partitions`` by key hash (one key in one partition, in order)."""

    def __init__(self, records: list[Raw], partitions: int, batch: int = 1000) -> None:
        self.parts: list[list[Raw]] = [[] for _ in range(partitions)]
        for rec in records:
            self.parts[zlib.crc32(rec[0]) % partitions].append(rec)
        self.batch = batch

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(len(self.parts))]

    def input_partitions(self) -> list[int]:
        return list(range(len(self.parts)))

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        i = int(for_part)
        return _Partition(self.parts[i], i, resume_state, self.batch)


class _Drop(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        pass


class NullSink(DynamicSink[Any]):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Drop:
        return _Drop()


def flow_from_env() -> Dataflow:
    """The pipeline's market and trading stages between the in-memory source and a null sink."""
    spec = json.loads(os.environ[ENV])
    with open(spec["data"], "rb") as f:
        records, instruments = pickle.load(f)
    config = PipelineConfig(run_id="bench", trading=True)
    source = MemorySource(records, spec["partitions"])
    flow = Dataflow("scale")
    raw: Any = op.input("in", flow, source)
    market = market_stage(raw, instruments, config.candle, False)
    inputs = tuple(source.input_partitions())
    trading = trading_stage(market.sourced, market.bars, instruments, config, inputs=inputs)
    op.output("null", op.merge("all", market.bars, *trading.to_db), NullSink())
    return flow


def _run(data: str, partitions: int, processes: int, port: int) -> float:
    env = {**os.environ, ENV: json.dumps({"data": data, "partitions": partitions})}
    t0 = time.perf_counter()
    cmds = worker_commands("benchmarks.bench_scale_out:flow_from_env()", processes, port)
    procs = [subprocess.Popen(cmd, env=env) for cmd in cmds]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"flow processes exited with {codes}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=2701)
    args = ap.parse_args()
    market = SyntheticMarket(
        SyntheticConfig(seed=args.seed, date=date(2026, 7, 7), duration_minutes=args.minutes)
    )
    records = [(m.key, m.value, m.timestamp_ms) for m in market.raw_messages()]
    instruments = {i.token: i for i in market.instruments()}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "session.pickle")
        with open(data, "wb") as f:
            pickle.dump((records, instruments), f)
        walls = {}
        for n in args.processes:
            walls[n] = _run(data, args.partitions, n, args.port)
            print(
                f"processes={n}: {len(records):,} ticks in {walls[n]:.1f}s ="
                f" {len(records) / walls[n]:,.0f} ticks/s ({args.partitions} partitions,"
                " in-memory source, null sink; 2-core machine shared with ~6 other sessions)",
                flush=True,
            )
        if 1 in walls:
            for n, wall in walls.items():
                if n != 1:
                    print(f"speed-up {n} vs 1 process: {walls[1] / wall:.2f}x")


if __name__ == "__main__":
    main()
