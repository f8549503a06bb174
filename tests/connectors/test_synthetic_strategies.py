"""A full synthetic day trades every built-in strategy, through the real pure operators.

The day runs as the pipeline runs it: the market stage (``MarketLogic``) turns the index ticks
into 1-minute bars, and the strategy stage (``UnderlyingLogic``: event-time reordering, chain
analytics, regime rules, strategies with their default — the user's — thresholds) gets every
tick and every index bar. Only the index's 1-minute bars are built: the strategy stage ignores
option bars and 1-second bars. The option chain is thinned (``tick_rate_scale``) to keep this
quick; the index keeps its ~1 print a second so bars close as promptly as live.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from connectors.feeds.synthetic import SyntheticMarket
from operators.events import Bar, SignalGenerated
from operators.market.candles import CandleConfig
from operators.market.sessions import session_open
from operators.stages.market import MarketLogic, MarketState
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic, UnderlyingOutput
from tests.markets import synthetic_market

STRATEGIES = ("momentum_breakout", "vwap_reversal", "gamma_scalp")
# Non-expiry Wednesdays for three seeds, and an expiry Tuesday (0 days to expiry all day).
CASES = [
    (7, date(2026, 7, 8)),
    (11, date(2026, 7, 8)),
    (23, date(2026, 7, 8)),
    (7, date(2026, 7, 7)),
]


def run_day(market: SyntheticMarket) -> list[UnderlyingOutput]:
    """Every output of the strategy stage for the day, as the pipeline would produce them."""
    instruments = {i.token: i for i in market.instruments()}
    index = market.instruments()[0].token
    bars, bar_state = MarketLogic(CandleConfig(intervals=("1m",))), MarketState()
    stage = UnderlyingLogic(instruments, UnderlyingConfig())
    rt = stage.new_runtime(market.config.underlying)
    out: list[UnderlyingOutput] = []
    last = None
    for tick in market.ticks():
        out += stage.on_item(rt, tick)
        if tick.token == index:
            for bar in bars.on_tick(bar_state, tick):
                if isinstance(bar, Bar) and stage.wants(bar):
                    out += stage.on_item(rt, bar)
        last = tick
    assert last is not None
    for bar in bars.on_eof(bar_state, last.ts_recv):
        if stage.wants(bar):
            out += stage.on_item(rt, bar)
    return out + stage.on_eof(rt)


@pytest.fixture(scope="module", params=CASES, ids=[f"seed{s}-{d}" for s, d in CASES])
def day(request: pytest.FixtureRequest) -> tuple[SyntheticMarket, list[SignalGenerated]]:
    seed, when = request.param
    market = synthetic_market(seed, day=when, strikes=10, rate=0.1, index_rate=1.0)
    signals = [e for e in run_day(market) if isinstance(e, SignalGenerated)]
    return market, signals


def entries(signals: list[SignalGenerated]) -> dict[str, list[SignalGenerated]]:
    """ENTRY signals per strategy, one per trade (a straddle emits one per leg)."""
    out: dict[str, list[SignalGenerated]] = {name: [] for name in STRATEGIES}
    for s in signals:
        if s.action == "ENTRY" and all(e.ts_event != s.ts_event for e in out[s.strategy]):
            out[s.strategy].append(s)
    return out


@pytest.mark.slow
def test_every_strategy_enters(day: tuple[SyntheticMarket, list[SignalGenerated]]) -> None:
    _, signals = day
    found = entries(signals)
    counts = Counter({name: len(found[name]) for name in STRATEGIES})
    assert min(counts.values()) >= 1, counts
    for name, trades in found.items():
        assert all(t.reason.startswith(name.upper() + ":") for t in trades), name
    legs = Counter(s.strategy for s in signals if s.action == "ENTRY")
    exits = Counter(s.strategy for s in signals if s.action == "EXIT")
    assert all(exits[name] <= legs[name] for name in STRATEGIES), (legs, exits)


@pytest.mark.slow
def test_entries_come_from_the_planted_conditions(
    day: tuple[SyntheticMarket, list[SignalGenerated]],
) -> None:
    market, signals = day
    found = entries(signals)
    scenario = market.scenario()
    (breakout,) = scenario.breakouts
    bar_end = breakout + timedelta(minutes=1)
    assert any(
        abs(t.ts_event - bar_end) <= timedelta(minutes=2) for t in found["momentum_breakout"]
    ), (breakout, [t.ts_event for t in found["momentum_breakout"]])
    opened = session_open(market.config.date)
    assert opened + timedelta(minutes=7) <= scenario.iv_spikes[0] <= opened + timedelta(minutes=21)
    gamma = found["gamma_scalp"]
    assert all(t.ts_event <= opened + timedelta(minutes=31) for t in gamma)
    # Each straddle is bought within minutes of an IV rise: the planted spike or a price jump.
    rises = [*scenario.iv_spikes, *scenario.jumps]
    for t in gamma:
        assert any(r <= t.ts_event <= r + timedelta(minutes=6) for r in rises), t.ts_event
    for t in found["vwap_reversal"]:
        assert "< vwap*" in t.reason
