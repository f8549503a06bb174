"""Momentum breakout: ride a fresh up-trend confirmed by price, volume and RSI.

Enter long (buy the ATM call) on a closed bar when all of:

- the 9-EMA crossed above the 21-EMA on this bar (``cross_lookback_bars`` = 1) or within the
  last ``cross_lookback_bars`` bars while staying above;
- close > VWAP × (1 + ``vwap_premium_pct``/100)            (default VWAP + 0.5 %);
- volume > ``volume_mult`` × its 20-bar average             (default 1.5 ×);
- ``rsi_min`` ≤ RSI(14) ≤ ``rsi_max``                        (default 50–70);
- the regime is in ``regimes``                               (default TRENDING only).

Exits on the underlying's price: take profit at entry × (1 + ``target_pct``/100) (0.5 %);
stop at entry − max(entry × ``stop_pct``/100, ``stop_atr_mult`` × ATR(14)) — the 0.3 % stop
is *ATR-adjusted* by widening it to at least ``stop_atr_mult`` ATRs when the market's current
range is larger than 0.3 %, so ordinary noise does not stop the trade out (set
``stop_atr_mult`` = 0 for a plain 0.3 % stop); time out after ``max_hold_s`` (120 s).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from pydantic import Field, model_validator

from operators.events import Bar, Regime, to_paise
from operators.strategies.base import (
    ContextLike,
    EntryPlan,
    Strategy,
    StrategyParams,
    StrategyState,
    pct_level,
    rupee_level_paise,
    rupees,
)


class MomentumBreakoutParams(StrategyParams):
    regimes: tuple[Regime, ...] | None = ("TRENDING",)
    cross_lookback_bars: int = Field(default=1, ge=1, description="bars since the EMA cross-up")
    vwap_premium_pct: float = Field(
        default=0.5, ge=0, description="close must exceed VWAP by this %"
    )
    volume_mult: float = Field(
        default=1.5, gt=0, description="volume must exceed this × 20-bar avg"
    )
    rsi_min: float = Field(default=50.0, ge=0, le=100)
    rsi_max: float = Field(default=70.0, ge=0, le=100)
    target_pct: float = Field(default=0.5, gt=0, description="take profit, % of entry")
    stop_pct: float = Field(default=0.3, gt=0, description="stop, % of entry (before ATR widening)")
    stop_atr_mult: float = Field(default=1.0, ge=0, description="stop at least this many ATR(14)")
    max_hold_s: float = Field(default=120.0, gt=0, description="time out after this many seconds")

    @model_validator(mode="after")
    def _rsi_band(self) -> MomentumBreakoutParams:
        if self.rsi_min > self.rsi_max:
            msg = f"rsi_min {self.rsi_min} > rsi_max {self.rsi_max}"
            raise ValueError(msg)
        return self


class MomentumBreakoutState(StrategyState, frozen=True, kw_only=True):
    prev_ema9: float | None = None
    prev_ema21: float | None = None
    bars_since_cross: int | None = None


class MomentumBreakout(Strategy[MomentumBreakoutParams, MomentumBreakoutState]):
    name = "momentum_breakout"
    Params = MomentumBreakoutParams
    State = MomentumBreakoutState

    def evaluate_bar(
        self, state: MomentumBreakoutState, bar: Bar, ctx: ContextLike
    ) -> tuple[MomentumBreakoutState, EntryPlan | None]:
        p = self.params
        ind = bar.indicators
        ema9, ema21 = ind.ema9, ind.ema21
        if ema9 is None or ema21 is None:
            return msgspec.structs.replace(
                state, prev_ema9=None, prev_ema21=None, bars_since_cross=None
            ), None
        crossed = (
            state.prev_ema9 is not None
            and state.prev_ema21 is not None
            and state.prev_ema9 <= state.prev_ema21
            and ema9 > ema21
        )
        since: int | None
        if crossed:
            since = 0
        elif ema9 > ema21 and state.bars_since_cross is not None:
            since = state.bars_since_cross + 1
        else:
            since = None
        state = msgspec.structs.replace(
            state, prev_ema9=ema9, prev_ema21=ema21, bars_since_cross=since
        )
        if since is None or since >= p.cross_lookback_bars:
            return state, None
        vwap, rsi, vol_avg = ind.vwap, ind.rsi14, ind.vol_avg20
        if vwap is None or rsi is None or vol_avg is None:
            return state, None
        close = bar.candle.close
        vwap_level = rupee_level_paise(vwap, p.vwap_premium_pct)
        if not close > vwap_level:
            return state, None
        volume = bar.candle.volume
        if not volume > round(p.volume_mult * vol_avg, 9):
            return state, None
        if not p.rsi_min <= rsi <= p.rsi_max:
            return state, None
        atr = ind.atr14 or 0.0
        stop_dist = max(close * p.stop_pct / 100.0, p.stop_atr_mult * to_paise(atr))
        reason = (
            f"MOMENTUM_BREAKOUT: ema9={ema9:.2f} crossed above ema21={ema21:.2f} "
            f"{since} bar(s) ago; close={rupees(close)} > vwap*{1 + p.vwap_premium_pct / 100:g}"
            f"={rupees(vwap_level)}; volume={volume} > {p.volume_mult:g}*avg={vol_avg:.0f}; "
            f"rsi={rsi:.1f} in [{p.rsi_min:g},{p.rsi_max:g}]; regime={ctx.regime}; "
            f"atr={atr:.2f} stop_dist={rupees(stop_dist)}"
        )
        plan = EntryPlan(
            rights=("CE",),
            reason=reason,
            upper=pct_level(close, p.target_pct),
            upper_reason="TARGET",
            lower=round(close - stop_dist),
            lower_reason="STOP",
            max_hold=timedelta(seconds=p.max_hold_s),
        )
        return state, plan
