"""Per-tick cost of the strategy stage (``UnderlyingLogic``) without Kafka or Bytewax.

    .venv/bin/python -m benchmarks.bench_underlying_logic [--minutes 60] [--rounds 3]
    .venv/bin/python -m benchmarks.bench_underlying_logic --compare HEAD

Runs the stage as ``flows/trading.py`` configures it (driver bars built from the ordered
ticks, ticks forwarded; strategies momentum_breakout, vwap_reversal, gamma_scalp) over every
tick of a synthetic session (seed 3, 2026-07-07, index + 42 options) and prints microseconds
per tick (best of ``--rounds``) and a sha256 of the msgspec-encoded outputs.

``--compare REV`` also runs the ``operators`` package of git revision ``REV`` (exported with
``git archive`` into a temporary directory; the working tree is not touched), alternating
old and new in fresh processes so that load from other processes on a shared machine hits
both about equally; outputs must hash the same. Each line says which form of the operators ran
(``benchmarks/_compare.py``); ``SCALPFLOW_NATIVE=0`` compares the Python of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import msgspec

from benchmarks._compare import compare_parser, compare_trees, dispatch, operators_form, report

WORKER = "benchmarks.bench_underlying_logic"


def measure(minutes: int, rounds: int) -> dict[str, float | int | str]:
    """Time the stage over the session (imports here: the caller's path picks the tree)."""
    import operators

    print(f"operators from {Path(operators.__file__).parent}", file=sys.stderr)
    from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
    from operators.market.candles import CandleConfig
    from operators.stages.underlying import StrategySpec, UnderlyingConfig, UnderlyingLogic

    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=minutes)
    )
    ticks = list(market.ticks())
    instruments = {i.token: i for i in market.instruments()}
    config = UnderlyingConfig(
        strategies=(
            StrategySpec("momentum_breakout"),
            StrategySpec("vwap_reversal"),
            StrategySpec("gamma_scalp"),
        ),
        regime_model=None,
        bars_from_ticks=True,
        candle=CandleConfig(intervals=("1m",), allowed_lateness=timedelta(seconds=2)),
        forward_ticks=True,
    )
    best = float("inf")
    digest = ""
    counts: dict[str, int] = {}
    for _ in range(rounds):
        logic = UnderlyingLogic(instruments, config)
        rt = logic.new_runtime(market.config.underlying)
        out: list[object] = []
        start = time.perf_counter()
        for tick in ticks:
            out += logic.on_item(rt, tick)
        out += logic.on_eof(rt)
        best = min(best, time.perf_counter() - start)
        digest = hashlib.sha256(msgspec.msgpack.encode(out)).hexdigest()
        counts = {}
        for item in out:
            counts[type(item).__name__] = counts.get(type(item).__name__, 0) + 1
    return {
        "ticks": len(ticks),
        "us_per_tick": best / len(ticks) * 1e6,
        "sha256": digest,
        "outputs": json.dumps(counts, sort_keys=True),
        "form": operators_form(),
    }


def compare(rev: str, minutes: int, rounds: int, pairs: int) -> None:
    args = ["--minutes", str(minutes), "--rounds", str(rounds)]
    with tempfile.TemporaryDirectory(prefix="bench_underlying_") as tmp:
        results = compare_trees(rev, Path(tmp), pairs, WORKER, args)
    ticks = results[rev][0]["ticks"]
    report(results, "us_per_tick", "µs/tick", f"best of {pairs}×{rounds}; {ticks:,} ticks")


def main(argv: list[str] | None = None) -> None:
    parser = compare_parser(__doc__, pairs=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def alone() -> None:
        r = measure(args.minutes, args.rounds)
        print(
            f"{r['ticks']:,} ticks: {float(r['us_per_tick']):.2f} µs/tick "
            f"(best of {args.rounds}); sha256 {r['sha256']} {r['outputs']}"
        )

    dispatch(args, lambda: measure(args.minutes, args.rounds), compare, alone)


if __name__ == "__main__":
    main()
