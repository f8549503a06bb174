"""Per-tick Python cost of the market stage (ticks → 1 s/1 min candles → indicators → bars).

    .venv/bin/python -m benchmarks.bench_market_logic [--minutes 60] [--rounds 3]
        [--impl operators.stages.market]

Runs ``MarketLogic.on_tick`` over a synthetic session (seed 3, 2026-07-07) with one
``MarketState`` per token, as the market flow does, then ``on_eof`` for every state. The ticks
are built before timing, so only the market logic is measured. Prints µs per tick and bars per
second (best of ``--rounds``), plus the cost of the ``operators.market.sessions`` helpers the
pipeline calls per tick. ``--impl`` names another module with ``MarketLogic``/``MarketState``
(e.g. a copy of an older version on PYTHONPATH; ``--sessions`` names its sessions module) to
compare implementations back to back.
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import date
from typing import Any

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from operators.events import Tick


def run_once(module: Any, ticks: list[Tick]) -> tuple[float, int, int]:
    """One pass: seconds spent, bars emitted, late ticks reported."""
    logic = module.MarketLogic()
    states: dict[str, Any] = {}
    new_state = module.MarketState
    bars = late = 0
    t0 = time.perf_counter()
    for tick in ticks:
        state = states.get(tick.token)
        if state is None:
            state = states[tick.token] = new_state()
        out = logic.on_tick(state, tick)
        if out:
            for item in out:
                if hasattr(item, "candle"):
                    bars += 1
                else:
                    late += 1
    for state in states.values():
        bars += len(logic.on_eof(state, ts_recv=ticks[-1].ts_recv))
    return time.perf_counter() - t0, bars, late


def time_sessions(sessions: Any, ticks: list[Tick], expiry: date) -> tuple[float, float, float]:
    """µs per call of ist_date, session_close and years_to_expiry over the tick timestamps."""
    stamps = [t.ts_event for t in ticks[:200_000]]
    t0 = time.perf_counter()
    for ts in stamps:
        sessions.ist_date(ts)
    t1 = time.perf_counter()
    for ts in stamps:
        sessions.session_close(sessions.ist_date(ts))
    t2 = time.perf_counter()
    for ts in stamps:
        sessions.years_to_expiry(ts, expiry)
    t3 = time.perf_counter()
    n = len(stamps) / 1e6
    return (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--impl", default="operators.stages.market")
    ap.add_argument("--sessions", default="operators.market.sessions", help="its sessions module")
    args = ap.parse_args()
    module = importlib.import_module(args.impl)
    sessions = importlib.import_module(args.sessions)
    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=args.minutes)
    )
    ticks = list(market.ticks())
    tokens = len({t.token for t in ticks})
    print(f"impl {args.impl}: {len(ticks):,} ticks, {tokens} tokens, {args.minutes} min")
    best = float("inf")
    bars = late = 0
    for _ in range(args.rounds):
        seconds, bars, late = run_once(module, ticks)
        best = min(best, seconds)
    print(f"market logic     {best / len(ticks) * 1e6:7.2f} µs/tick   {bars / best:,.0f} bars/s")
    print(f"  ({bars:,} bars, {late:,} late ticks, {best:.2f} s best of {args.rounds} rounds)")
    ist_us, close_us, tte_us = time_sessions(sessions, ticks, date(2026, 7, 7))
    print(f"ist_date         {ist_us:7.3f} µs/call")
    print(f"session_close(ist_date(ts)) {close_us:7.3f} µs/call")
    print(f"years_to_expiry  {tte_us:7.3f} µs/call")


if __name__ == "__main__":
    main()
