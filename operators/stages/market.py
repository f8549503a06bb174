"""The per-instrument market stage: ticks → candles (1 s, 1 min) → indicator snapshots → bars.

State is one ``MarketState`` per instrument token; the logic is pure and event-time driven,
so the same ticks give the same bars however they are batched or partitioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import Bar, Candle, Interval, Tick
from operators.market.candles import CandleConfig, CandleLogic, CandleState, LateTick
from operators.market.indicators import IndicatorSet

STATE_VERSION = 2  # 2: CandleState v2 (cached spans, watermark, next end)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class MarketState:
    version: int = STATE_VERSION
    candles: CandleState = field(default_factory=CandleState)
    indicators: dict[Interval, IndicatorSet] = field(default_factory=dict)
    bars_emitted: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketLogic:
    """``on_tick`` returns the bars that tick closed and the tick itself if it came too late."""

    def __init__(self, config: CandleConfig | None = None) -> None:
        self.candles = CandleLogic(config)

    def on_tick(self, state: MarketState, tick: Tick) -> list[Bar | LateTick]:
        closed, late = self.candles.on_tick(state.candles, tick)
        out: list[Bar | LateTick] = [self._bar(state, c) for c in closed] if closed else []
        if late:
            out.extend(late)
        return out

    def on_eof(self, state: MarketState, ts_recv: datetime) -> list[Bar]:
        return [self._bar(state, c) for c in self.candles.flush(state.candles, ts_recv)]

    def close_through(self, state: MarketState, at: datetime) -> list[Bar]:
        """The bars of windows ending at or before ``at`` (``CandleLogic.close_through``)."""
        return [self._bar(state, c) for c in self.candles.close_through(state.candles, at)]

    @staticmethod
    def _bar(state: MarketState, candle: Candle) -> Bar:
        indicators = state.indicators.get(candle.interval)
        if indicators is None:
            indicators = state.indicators[candle.interval] = IndicatorSet()
        state.bars_emitted += 1
        return Bar(
            ts_event=candle.ts_event,
            ts_recv=candle.ts_recv,
            candle=candle,
            indicators=indicators.update(candle),
        )


_native.picklable(MarketState, MarketLogic)
