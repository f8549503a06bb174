"""Per-input cost of the account stage (``AccountLogic``) without Kafka or Bytewax.

    .venv/bin/python -m benchmarks.bench_account_logic [--minutes 60] [--rounds 3]
    .venv/bin/python -m benchmarks.bench_account_logic --compare HEAD
    .venv/bin/python -m benchmarks.bench_account_logic --ledger [--rounds 5]

The strategy stage runs first, as ``flows/trading.py`` configures it (driver bars built from
the ordered ticks, ticks forwarded; strategies momentum_breakout, vwap_reversal,
gamma_scalp), over every tick of a synthetic session (seed 3, 2026-07-07, index + 42
options). Its outputs — every tick, option analytics, regimes and signals, in event-time
order — are what the flow hands the account stage; they are then fed, untimed set-up aside,
to ``AccountLogic.on_item`` (settings from ``flows.trading.account_config``) and the script
prints microseconds per input (best of ``--rounds``) and a sha256 of the outputs (type name +
msgpack of each, in order).

``--ledger`` times the stage with its day-level cost ledger (``operators.trading.cost_ledger``, the
contract note and true-up at session close) off and on, alternating rounds in one process, and
prints the ledger's share of the stage's time. The hash leaves ``ContractNote`` outputs out,
so it is the same with the ledger off or on and for revisions from before the ledger.

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
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from benchmarks._compare import compare_parser, compare_trees, dispatch, operators_form, report

WORKER = "benchmarks.bench_account_logic"
STRATEGIES = ("momentum_breakout", "vwap_reversal", "gamma_scalp")


def make_inputs(minutes: int) -> tuple[dict[str, Any], list[Any]]:
    """The instruments and the strategy stage's outputs for the session."""
    from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
    from operators.market.candles import CandleConfig
    from operators.stages.underlying import StrategySpec, UnderlyingConfig, UnderlyingLogic

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


def _time_once(
    logic_cls: Any, instruments: Any, config: Any, items: list[Any]
) -> tuple[float, list[Any]]:
    logic = logic_cls(instruments, config)
    rt = logic.new_runtime()
    out: list[Any] = []
    start = time.perf_counter()
    for item in items:
        out += logic.on_item(rt, item)
    out += logic.on_eof(rt)
    return time.perf_counter() - start, out


def _digest(out: list[Any]) -> str:
    encoder = msgspec.msgpack.Encoder()
    digest = hashlib.sha256()
    for ev in out:
        name = type(ev).__name__
        if name == "ContractNote":  # see the module doc
            continue
        digest.update(name.encode())
        digest.update(encoder.encode(ev))
    return digest.hexdigest()


def measure(inputs: Path, rounds: int, *, ledger: bool = False) -> dict[str, float | int | str]:
    """Time the account stage over the pickled inputs (imports here: the caller's path
    picks the tree); with ``ledger``, alternate rounds with the cost ledger off and on."""
    import operators

    print(f"operators from {Path(operators.__file__).parent}", file=sys.stderr)
    from flows.pipeline import PipelineConfig
    from flows.trading import account_config
    from operators.stages.account import AccountLogic
    from operators.stages.underlying import StrategySpec

    instruments, items = pickle.loads(inputs.read_bytes())
    config = account_config(
        PipelineConfig(run_id="bench", strategies=tuple(StrategySpec(n) for n in STRATEGIES))
    )
    configs = {"": config}
    if ledger:
        configs = {
            "off": replace(config, contract_notes=False),
            "on": replace(config, contract_notes=True),
        }
    best = dict.fromkeys(configs, float("inf"))
    outs: dict[str, list[Any]] = {}
    for _ in range(rounds):
        for name, cfg in configs.items():
            seconds, outs[name] = _time_once(AccountLogic, instruments, cfg, items)
            best[name] = min(best[name], seconds)
    out = outs[next(iter(configs))]
    result: dict[str, float | int | str] = {
        "inputs": len(items),
        "us_per_input": best[next(iter(configs))] / len(items) * 1e6,
        "sha256": _digest(out),
        "outputs": json.dumps(Counter(type(ev).__name__ for ev in out), sort_keys=True),
        "kinds": json.dumps(Counter(type(it).__name__ for it in items), sort_keys=True),
        "form": operators_form(),
    }
    if ledger:
        on = outs["on"]
        if _digest(on) != result["sha256"]:
            msg = "the cost ledger changed the account stage's other outputs"
            raise SystemExit(msg)
        result["us_per_input_ledger"] = best["on"] / len(items) * 1e6
        result["ledger_share"] = (best["on"] - best["off"]) / best["on"]
        result["notes"] = sum(type(ev).__name__ == "ContractNote" for ev in on)
        result["fills"] = sum("Fill" in type(ev).__name__ for ev in on)
        result["ledger_direct_us"] = _ledger_work(items, on, config, rounds) * 1e6
        result["ledger_direct_share"] = float(result["ledger_direct_us"]) / (best["on"] * 1e6)
    return result


def _ledger_work(items: list[Any], outputs: list[Any], config: Any, rounds: int) -> float:
    """Seconds of the ledger's own work on this session, timed apart (best of ``rounds``):
    booking every fill, closing the day, and the per-tick session-close test (an interpreted
    loop here, so an upper bound for the compiled stage, which already reads the tick time).
    An A/B of the whole stage on a shared machine is noisier than this difference."""
    from operators.market.sessions import ist_date, session_close
    from operators.trading.cost_ledger import CostLedger
    from operators.trading.orders import FillEvent

    assert config.execution.costs is not None
    schedule = config.execution.costs.schedule
    fills = [ev for ev in outputs if isinstance(ev, FillEvent)]
    stamps = [it.ts_event for it in items if type(it).__name__ == "Tick"]
    never = session_close(ist_date(stamps[-1])) if stamps else None
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        ledger = CostLedger(schedule)
        for f in fills:
            ledger.add(
                f.account, ist_date(f.ts_event), f.token, f.order_id, f.side, f.fill_qty,
                f.fill_price, estimated=f.costs.total,
            )  # fmt: skip
        for account, day in ledger.open_days():
            ledger.close(account, day, session_close(day))
        closes = 0
        for ts in stamps:
            if never is not None and ts >= never:
                closes += 1
        best = min(best, time.perf_counter() - start)
    return best


def _write_inputs(path: Path, minutes: int) -> None:
    start = time.perf_counter()
    path.write_bytes(pickle.dumps(make_inputs(minutes)))
    print(f"strategy stage outputs made in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def compare(rev: str, minutes: int, rounds: int, pairs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_account_") as tmp:
        inputs = Path(tmp) / "inputs.pkl"
        _write_inputs(inputs, minutes)
        args = [str(inputs), "--rounds", str(rounds)]
        results = compare_trees(rev, Path(tmp), pairs, WORKER, args)
    first = results[rev][0]
    print(f"inputs: {first['inputs']:,} {first['kinds']}")
    report(results, "us_per_input", "µs/input", f"best of {pairs}×{rounds}")


def main(argv: list[str] | None = None) -> None:
    parser = compare_parser(__doc__, pairs=3)
    parser.add_argument(
        "--ledger", action="store_true", help="time the cost ledger's share (off vs on)"
    )
    parser.add_argument("--worker", metavar="INPUTS", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def alone() -> None:
        with tempfile.TemporaryDirectory(prefix="bench_account_") as tmp:
            inputs = Path(tmp) / "inputs.pkl"
            _write_inputs(inputs, args.minutes)
            r = measure(inputs, args.rounds, ledger=args.ledger)
        print(
            f"{r['inputs']:,} inputs {r['kinds']}: {float(r['us_per_input']):.2f} µs/input "
            f"(best of {args.rounds}); sha256 {r['sha256']} {r['outputs']} [{r['form']}]"
        )
        if args.ledger:
            print(
                f"cost ledger on: {float(r['us_per_input_ledger']):.3f} µs/input vs "
                f"{float(r['us_per_input']):.3f} off ({r['fills']} fills, {r['notes']} notes): "
                f"ledger share of the account stage {float(r['ledger_share']):+.2%} (A/B); "
                f"its own work timed apart {float(r['ledger_direct_us']) / 1000:.2f} ms = "
                f"{float(r['ledger_direct_share']):.2%} of the stage"
            )

    dispatch(args, lambda: measure(args.worker, args.rounds), compare, alone)


if __name__ == "__main__":
    main()
