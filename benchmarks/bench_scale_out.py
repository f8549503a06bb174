"""1 vs N Bytewax processes on the whole pipeline with an in-memory source and a null sink
(issue 19, item 4): what the dataflow itself costs and gains across processes, without the
broker and the database competing for the same two cores.

    .venv/bin/python -m benchmarks.bench_scale_out --minutes 20 --partitions 4 --processes 1 2 \
        --underlyings 3 --accounts 4

The load is a multi-user deployment's: ``--underlyings`` synthetic chains (NIFTY, BANKNIFTY,
FINNIFTY) and ``--accounts`` paper accounts, each running the default strategies (one
strategy stage per underlying shared by all accounts, one account stage per account).
A synthetic session is generated once (pickled to a temporary file); every process loads it and
reads only its own partitions (keys hashed to partitions as Kafka's producer would), as
``KafkaSourceMessage`` records, so the trading stages use input watermarks as in a live run.
Outputs go to a sink that drops them. Wall time is spawn to exit of all processes (start-up
included, the same for every N).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import pickle
import subprocess
import tempfile
import time
import zlib
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.serde import encode
from flows.config.accounts import AccountSpec, StrategyEntry
from flows.market import market_stage
from flows.pipeline import DEFAULT_STRATEGIES, PipelineConfig, placement_for
from flows.trading import trading_stage

ENV = "SCALPFLOW_BENCH_SCALE"
#: (name, index token, opening level, strike step) of the chains, as bench_live_latency
UNDERLYINGS = (
    ("NIFTY", "26000", 26000.0, 50),
    ("BANKNIFTY", "26009", 56000.0, 100),
    ("FINNIFTY", "26037", 26500.0, 50),
)
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


class _Digest(StatelessSinkPartition[Any]):
    """Drops the outputs, keeping a digest of them that does not depend on their order or
    worker: the sum of the SHA-256 of each encoded event, and their count (written at close)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.total = 0
        self.count = 0

    def write_batch(self, items: list[Any]) -> None:
        for x in items:
            self.total += int.from_bytes(hashlib.sha256(encode(x)).digest(), "big")
        self.count += len(items)

    def close(self) -> None:
        with open(self.path, "w") as f:
            json.dump([self.count, self.total % 2**256], f)


class NullSink(DynamicSink[Any]):
    """The null sink, with an order-free digest per worker in ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Digest:
        return _Digest(str(Path(self.directory) / f"digest-{worker_index}.json"))


def digest(directory: str) -> tuple[int, int]:
    """All workers' outputs: (count, digest), equal for runs with equal outputs."""
    count = total = 0
    for path in Path(directory).glob("digest-*.json"):
        c, t = json.loads(path.read_text())
        count, total = count + c, total + t
        path.unlink()
    return count, total % 2**256


def flow_from_env() -> Dataflow:
    """The pipeline's market and trading stages between the in-memory source and a null sink."""
    spec = json.loads(os.environ[ENV])
    with open(spec["data"], "rb") as f:
        records, instruments = pickle.load(f)
    config = PipelineConfig(
        run_id="bench", trading=True, accounts=accounts(spec["accounts"]), workers=spec["workers"]
    )
    if not spec["place"]:
        config = PipelineConfig(run_id="bench", trading=True, accounts=config.accounts)
    source = MemorySource(records, spec["partitions"])
    placement = placement_for(source, instruments, config)
    flow = Dataflow("scale")
    raw: Any = op.input("in", flow, source)
    market = market_stage(raw, instruments, config.candle, False, placement=placement)
    inputs = tuple(source.input_partitions())
    trading = trading_stage(
        market.sourced, market.bars, instruments, config, inputs=inputs, placement=placement
    )
    op.output("null", op.merge("all", market.bars, *trading.to_db), NullSink(spec["digests"]))
    return flow


def accounts(n: int) -> tuple[AccountSpec, ...]:
    """``n`` users' paper accounts, each with the default strategies (empty for 0: the one
    default account)."""
    entries = tuple(StrategyEntry(name=s.name, params=dict(s.params)) for s in DEFAULT_STRATEGIES)
    return tuple(
        AccountSpec(id=f"user{i}", capital_rupees=500_000.0, strategies=entries) for i in range(n)
    )


def markets(minutes: int, underlyings: int, seed: int, strikes: int) -> list[SyntheticMarket]:
    """One synthetic chain per underlying (seeds ``seed``, ``seed + 1``, ...)."""
    out = []
    for i, (name, token, level, step) in enumerate(UNDERLYINGS[:underlyings]):
        out.append(
            SyntheticMarket(
                SyntheticConfig(
                    seed=seed + i,
                    date=date(2026, 7, 7),
                    start_time=dtime(9, 15),
                    duration_minutes=minutes,
                    strikes_each_side=strikes,
                    underlying=name,
                    index_token=token,
                    opening_level=level,
                    strike_step=step,
                )
            )
        )
    return out


def _run(data: str, args: argparse.Namespace, processes: int) -> tuple[float, list[float]]:
    """Wall seconds of one run, and each process's CPU seconds (user + system): on a shared
    box the wall time also measures the other load, the CPU times only this flow's work."""
    spec = {
        "data": data,
        "partitions": args.partitions,
        "accounts": args.accounts,
        "workers": processes,
        "place": not args.hash_only,
        "digests": str(Path(data).parent),
    }
    env = {**os.environ, ENV: json.dumps(spec)}
    from benchmarks._common import worker_commands  # not in the workers: it imports the CLI

    port = args.port
    t0 = time.perf_counter()
    cmds = worker_commands("benchmarks.bench_scale_out:flow_from_env()", processes, port)
    procs = [subprocess.Popen(cmd, env=env) for cmd in cmds]
    codes, cpus = [], []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
        cpus.append(usage.ru_utime + usage.ru_stime)
        p.returncode = codes[-1]
    if any(codes):
        raise SystemExit(f"flow processes exited with {codes}")
    return time.perf_counter() - t0, cpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=2701)
    ap.add_argument("--underlyings", type=int, default=1, choices=[1, 2, 3])
    ap.add_argument("--strikes", type=int, default=10, help="ATM ± strikes per chain")
    ap.add_argument("--accounts", type=int, default=0, help="0: the one default account")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each process count, interleaved")
    ap.add_argument(
        "--hash-only", action="store_true", help="leave keys to Bytewax's hash (no placement)"
    )
    args = ap.parse_args()
    chains = markets(args.minutes, args.underlyings, args.seed, args.strikes)
    merged = heapq.merge(*(m.raw_messages() for m in chains), key=lambda m: m.timestamp_ms)
    records = [(m.key, m.value, m.timestamp_ms) for m in merged]
    instruments = {i.token: i for m in chains for i in m.instruments()}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "session.pickle")
        with open(data, "wb") as f:
            pickle.dump((records, instruments), f)
        walls: dict[int, list[float]] = {n: [] for n in args.processes}
        digests: set[tuple[int, int]] = set()
        for _ in range(args.repeat):
            for n in args.processes:
                load = os.getloadavg()[0]
                wall, cpus = _run(data, args, n)
                walls[n].append(wall)
                count, total = digest(tmp)
                digests.add((count, total))
                cpu = " + ".join(f"{c:.1f}" for c in cpus)
                print(
                    f"processes={n}: {len(records):,} ticks in {wall:.1f}s ="
                    f" {len(records) / wall:,.0f} ticks/s, CPU s per process {cpu}"
                    f" ({args.partitions} partitions,"
                    f" {args.underlyings} underlyings, {max(args.accounts, 1)} accounts,"
                    f" in-memory source, null sink; load average {load:.2f} before;"
                    f" {count:,} outputs, digest {total % 2**64:016x})",
                    flush=True,
                )
        print(
            "outputs identical in every run" if len(digests) == 1 else f"OUTPUTS DIFFER: {digests}"
        )
        if 1 in walls:
            best = min(walls[1])
            for n, runs in walls.items():
                if n != 1:
                    print(f"speed-up {n} vs 1 process (best runs): {best / min(runs):.2f}x")


if __name__ == "__main__":
    main()
