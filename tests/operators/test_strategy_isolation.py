"""Strategy isolation in the strategy stage (issue 14): a strategy that raises, returns
garbage or mutates its context is disabled with a STRATEGY_FAILED event while the others go
on unchanged; the opt-in time budget flags and then disables a slow strategy."""

from __future__ import annotations

import copy
import itertools
from datetime import timedelta

import pytest

from operators.events import Bar, RegimeClassified, RiskEvent, SignalGenerated
from operators.market.candles import CandleConfig
from operators.stages.underlying import StrategySpec, UnderlyingConfig, UnderlyingLogic
from operators.strategies.base import ContextLike, ContextView, StrategyContext
from operators.strategies.momentum_breakout import MomentumBreakout
from operators.strategies.option_map import OptionChain
from tests.markets import synthetic_market

FAILS = "tests.plugin_strategies:FailsOnNthCall"
MUTATES = "tests.plugin_strategies:MutatesContext"


class ReturnsGarbage(MomentumBreakout):
    name = "returns_garbage"

    def on_bar(self, bar: Bar, ctx: ContextLike) -> list[SignalGenerated]:
        return ["not a signal"]  # type: ignore[list-item]


@pytest.fixture(scope="module")
def day():
    market = synthetic_market(7, minutes=90, strikes=2, rate=0.3)
    return {i.token: i for i in market.instruments()}, list(market.ticks())


def run(day, strategies, **kw):
    instruments, ticks = day
    logic = UnderlyingLogic(
        instruments,
        UnderlyingConfig(
            strategies=tuple(strategies),
            bars_from_ticks=True,
            candle=CandleConfig(intervals=("1m",)),
        ),
        **kw,
    )
    return logic.run("NIFTY", ticks)


def signals_of(outputs, strategy: str) -> list[SignalGenerated]:
    return [o for o in outputs if isinstance(o, SignalGenerated) and o.strategy == strategy]


def failures(outputs) -> list[RiskEvent]:
    return [o for o in outputs if isinstance(o, RiskEvent)]


def test_a_raising_strategy_is_disabled_and_the_others_are_unchanged(day) -> None:
    builtins = [StrategySpec("vwap_reversal"), StrategySpec("gamma_scalp")]
    alone = run(day, builtins)
    mixed = run(day, [StrategySpec(FAILS, {"fail_on_call": 50}), *builtins])
    (failed,) = failures(mixed)
    assert failed.kind == "STRATEGY_FAILED"
    assert failed.strategy.startswith("fails_on_nth_call-")  # the instance key, for routing
    assert "ZeroDivisionError: plug-in bug on call 50 (at plugin_strategies.py:" in failed.detail
    assert all(s.ts_event < failed.ts_event for s in signals_of(mixed, "fails_on_nth_call"))
    for name in ("vwap_reversal", "gamma_scalp"):
        assert signals_of(mixed, name) == signals_of(alone, name)
    # and the stage goes on: regimes every minute to the end
    assert any(isinstance(o, RegimeClassified) and o.ts_event > failed.ts_event for o in mixed)


def test_results_that_are_not_signals_disable_the_strategy(day) -> None:
    spec = StrategySpec(f"{__name__}:ReturnsGarbage")
    (failed,) = failures(run(day, [spec]))
    assert "TypeError: returned str, not a SignalGenerated" in failed.detail


def test_strategies_cannot_mutate_the_shared_context(day) -> None:
    out = run(day, [StrategySpec(MUTATES), StrategySpec("gamma_scalp")])
    (failed,) = failures(out)
    assert "AttributeError: 'mappingproxy' object has no attribute 'clear'" in failed.detail
    assert signals_of(out, "gamma_scalp") == signals_of(
        run(day, [StrategySpec("gamma_scalp")]), "gamma_scalp"
    )


def test_context_view_is_read_only_and_copies_with_its_context() -> None:
    ctx = StrategyContext(chain=OptionChain("NIFTY", "26000", 50, ()))
    view = ContextView(ctx)
    with pytest.raises(TypeError):
        view.analytics["x"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        view.regime = "TRENDING"  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.bars[0] = None  # type: ignore[index]
    ctx.regime = "RANGING"
    assert view.regime == "RANGING"  # a live view, nothing copied
    assert copy.deepcopy(view).underlying == "NIFTY"


def test_time_budget_flags_then_disables_only_when_enabled(day) -> None:
    """A fake clock that says every call of the plug-in took 1 s: the first overrun is
    flagged, the third disables it. Without a budget the timer is never read."""
    clock = itertools.count()
    budget = UnderlyingConfig(strategy_budget=timedelta(milliseconds=50), max_overruns=3)
    instruments, ticks = day
    logic = UnderlyingLogic(
        instruments,
        UnderlyingConfig(
            strategies=(StrategySpec("momentum_breakout"),),
            bars_from_ticks=True,
            candle=CandleConfig(intervals=("1m",)),
            strategy_budget=budget.strategy_budget,
            max_overruns=budget.max_overruns,
        ),
        timer=lambda: float(next(clock)),
    )
    events = failures(logic.run("NIFTY", ticks))
    assert [e.kind for e in events] == ["STRATEGY_SLOW", "STRATEGY_FAILED"]
    assert "budget 50.0 ms (overrun 1 of 3)" in events[0].detail
    assert "TIME_BUDGET" in events[1].detail
    unread = UnderlyingLogic(instruments, UnderlyingConfig(), timer=lambda: 1 / 0)
    assert unread._timer is None  # no budget: no clock in the decisions
