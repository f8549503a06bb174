"""Per-tick Python cost of the per-minute quotes step (``flows.quotes.QuoteStage``).

    .venv/bin/python -m benchmarks.bench_quotes [--minutes 60] [--rounds 3] [--batch 50]

The step runs on every valid tick of a flow that writes PostgreSQL (issue 17: bid/ask/LTP/OI
for the option chain), so its cost adds to every replay. Ticks of a synthetic session (seed 3,
2026-07-07) are grouped per token in batches of ``--batch``, as the market stage hands them
on, and fed to one ``QuoteState`` per token; prints ns per tick (best of ``--rounds``) and the
quotes emitted (one per option and minute).
"""

from __future__ import annotations

import argparse
import time
from datetime import date

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from flows.quotes import QuoteStage
from operators.events import Tick


def run_once(batches: list[tuple[str, list[Tick]]]) -> tuple[float, int]:
    stage = QuoteStage()
    states = {token: stage.new_state() for token, _ in batches}
    quotes = 0
    t0 = time.perf_counter()
    for token, ticks in batches:
        quotes += len(stage.on_item(states[token], ticks))
    for state in states.values():
        quotes += len(list(stage.on_eof(state)))
    return time.perf_counter() - t0, quotes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=args.minutes)
    )
    ticks = list(market.ticks())
    by_token: dict[str, list[Tick]] = {}
    for tick in ticks:
        by_token.setdefault(tick.token, []).append(tick)
    batches = [
        (token, series[i : i + args.batch])
        for token, series in by_token.items()
        for i in range(0, len(series), args.batch)
    ]
    best, quotes = min(run_once(batches) for _ in range(args.rounds))
    print(f"ticks: {len(ticks):,} ({len(by_token)} instruments), quotes: {quotes:,}")
    print(f"quotes step: {best / len(ticks) * 1e9:,.0f} ns/tick (best of {args.rounds})")


if __name__ == "__main__":
    main()
