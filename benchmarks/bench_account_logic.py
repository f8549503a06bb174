"""Per-input cost of the account stage (``AccountLogic``) without Kafka or Bytewax.

    .venv/bin/python -m benchmarks.bench_account_logic [--minutes 60] [--rounds 3]
    .venv/bin/python -m benchmarks.bench_account_logic --compare HEAD

The strategy stage runs first, as ``flows/trading.py`` configures it (driver bars built from
the ordered ticks, ticks forwarded; strategies momentum_breakout, vwap_reversal,
gamma_scalp), over every tick of a synthetic session (seed 3, 2026-07-07, index + 42
options). Its outputs — every tick, option analytics, regimes and signals, in event-time
order — are what the flow hands the account stage; they are then fed, untimed set-up aside,
to ``AccountLogic.on_item`` (settings from ``flows.trading.account_config``) and the script
prints microseconds per input (best of ``--rounds``) and a sha256 of the outputs (type name +
msgpack of each, in order).

``--compare REV`` also runs the ``operators`` package of git revision ``REV`` (exported with
``git archive`` into a temporary directory; the working tree is not touched) on the *same*
inputs (made once by the working tree's strategy stage), alternating old and new in fresh
processes so that load from other processes on a shared machine hits both about equally;
outputs must hash the same. Each line says which form of the operators ran
(``benchmarks/_compare.py``); ``SCALPFLOW_NATIVE=0`` compares the Python of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from benchmarks._compare import compare_trees, operators_form, report, run_worker

WORKER = "benchmarks.bench_account_logic"
STRATEGIES = ("momentum_breakout", "vwap_reversal", "gamma_scalp")


def make_inputs(minutes: int) -> tuple[dict[str, Any], list[Any]]:
    """The instruments and the strategy stage's outputs for the session."""
    from connectors.synthetic import SyntheticConfig, SyntheticMarket
    from operators.candles import CandleConfig
    from operators.underlying_stage import StrategySpec, UnderlyingConfig, UnderlyingLogic

    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=minutes)
    )
    instruments = {i.token: i for i in market.instruments()}
    stage = UnderlyingLogic(
        instruments,
        UnderlyingConfig(
            strategies=tuple(StrategySpec(name) for name in STRATEGIES),
            bars_from_ticks=True,
            forward_ticks=True,
            candle=CandleConfig(intervals=("1m",)),
        ),
    )
    return instruments, list(stage.run(market.config.underlying, market.ticks()))


def measure(inputs: Path, rounds: int) -> dict[str, float | int | str]:
    """Time the account stage over the pickled inputs (imports here: the caller's path
    picks the tree)."""
    import operators

    print(f"operators from {Path(operators.__file__).parent}", file=sys.stderr)
    from flows.pipeline import PipelineConfig
    from flows.trading import account_config
    from operators.account_stage import AccountLogic
    from operators.underlying_stage import StrategySpec

    instruments, items = pickle.loads(inputs.read_bytes())
    config = account_config(
        PipelineConfig(run_id="bench", strategies=tuple(StrategySpec(n) for n in STRATEGIES))
    )
    best = float("inf")
    out: list[Any] = []
    for _ in range(rounds):
        logic = AccountLogic(instruments, config)
        rt = logic.new_runtime()
        out = []
        start = time.perf_counter()
        for item in items:
            out += logic.on_item(rt, item)
        out += logic.on_eof(rt)
        best = min(best, time.perf_counter() - start)
    encoder = msgspec.msgpack.Encoder()
    digest = hashlib.sha256()
    for ev in out:
        digest.update(type(ev).__name__.encode())
        digest.update(encoder.encode(ev))
    return {
        "inputs": len(items),
        "us_per_input": best / len(items) * 1e6,
        "sha256": digest.hexdigest(),
        "outputs": json.dumps(Counter(type(ev).__name__ for ev in out), sort_keys=True),
        "kinds": json.dumps(Counter(type(it).__name__ for it in items), sort_keys=True),
        "form": operators_form(),
    }


def _write_inputs(path: Path, minutes: int) -> None:
    start = time.perf_counter()
    path.write_bytes(pickle.dumps(make_inputs(minutes)))
    print(f"strategy stage outputs made in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def compare(rev: str, minutes: int, rounds: int, pairs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_account_") as tmp:
        inputs = Path(tmp) / "inputs.pkl"
        _write_inputs(inputs, minutes)
        args = [str(inputs), "--rounds", str(rounds)]
        results = compare_trees(rev, Path(tmp), pairs, lambda tree: run_worker(WORKER, tree, args))
    first = results[rev][0]
    print(f"inputs: {first['inputs']:,} {first['kinds']}")
    report(results, "us_per_input", "µs/input", f"best of {pairs}×{rounds}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=60, help="session length")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per process")
    parser.add_argument("--compare", metavar="REV", help="also time operators/ of git REV")
    parser.add_argument("--pairs", type=int, default=3, help="old/new process pairs (--compare)")
    parser.add_argument("--worker", metavar="INPUTS", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.rounds)))
    elif args.compare:
        compare(args.compare, args.minutes, args.rounds, args.pairs)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_account_") as tmp:
            inputs = Path(tmp) / "inputs.pkl"
            _write_inputs(inputs, args.minutes)
            r = measure(inputs, args.rounds)
        print(
            f"{r['inputs']:,} inputs {r['kinds']}: {float(r['us_per_input']):.2f} µs/input "
            f"(best of {args.rounds}); sha256 {r['sha256']} {r['outputs']}"
        )


if __name__ == "__main__":
    main()
